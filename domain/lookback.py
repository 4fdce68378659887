"""The look-back campaign (回头看, domain.md §4.5, §4.6 path B): decisions. Pure and deterministic.

The office (整改办) defines a campaign (name, basis, unannounced or not — 四不两直/明察暗访 —,
period, optional programme), selects closed and long-term cases (domain/lookback_rules.py), and
inspectors record exactly ONE finding per selected case: in place (整改到位), rebound (问题反弹),
not in place (整改不到位) or fake rectification (虚假整改). A rebound or not-in-place finding
reopens the case with a new deadline and PROPOSES an accountability referral on path A; a fake
rectification reopens it and proposes path B (the lead supervising unit drafts, the office
verifies and refers: VERIFY_REFERRAL). A proposal is listed on the campaign for the office and
the case's units; a person then refers in the case itself. Nothing here ever refers or closes
a case.

The campaign reminds the office and the inspectors of unvisited cases N working days before its
period ends and once after it ended, and ends (CLOSED) by the office or by itself when every
selected case has its finding. The data is in domain/lookback_model.py (re-exported here).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from domain.calendar import SHANGHAI, WorkingCalendar, end_of_day, local_date
from domain.enums import REFERRAL_PATH_LABELS_ZH, ReferralPath, Role
from domain.errors import DuplicateRequestError, InvalidDeadlineError, InvalidTransitionError, MissingInputError
from domain.lookback_model import *  # noqa: F403 - the campaign's data, re-exported
from domain.lookback_model import (
    FINDING_LABELS_ZH,
    PROPOSES,
    REOPENS,
    CampaignFinding,
    CampaignSpec,
    CampaignStage,
    CampaignState,
    Candidate,
    CloseRequest,
    FindingRequest,
    Item,
    LookbackDecision,
    LookbackEntry,
    LookbackNotice,
    LookbackPolicy,
    ReminderStep,
    ReopenOrder,
    ReopenOutcome,
    ReopenStatus,
    Schedule,
    ScheduleRequest,
    SelectRequest,
)
from domain.lookback_rules import authorize_finding, authorize_office, report_figures, require_item, select
from domain.model import Actor

SYSTEM = Actor(user_id="system", role=Role.SYSTEM, unit="engine")


def referral_label(path: ReferralPath) -> str:
    return f"{REFERRAL_PATH_LABELS_ZH[path]} ({path.value})"


class _Builder:
    def __init__(self, state: CampaignState, now: datetime) -> None:
        self.state = state.model_copy(deep=True)
        self.now = now
        self.entries: list[LookbackEntry] = []
        self.notices: list[LookbackNotice] = []
        self.reopen: list[ReopenOrder] = []
        self.schedule: ScheduleRequest | None = None

    def entry(self, event: str, actor: Actor, reason: str = "", request_id: str | None = None,
              case_no: str | None = None, **data: object) -> int:
        self.state.seq += 1
        self.entries.append(LookbackEntry(campaign_id=self.state.campaign_id, seq=self.state.seq, event=event,
                                          actor=actor, at=self.now, reason=reason, request_id=request_id,
                                          case_no=case_no, data=data))
        return self.state.seq

    def notify(self, seq: int, subject: str, body: str, targets: list[tuple[str, Role]]) -> None:
        cid = self.state.campaign_id
        seen: set[str] = set()
        for unit, role in targets:
            if not unit or unit in seen:
                continue
            seen.add(unit)
            self.notices.append(LookbackNotice(key=f"lookback:{cid}:{seq}:{unit}", campaign_id=cid, seq=seq,
                                               recipient_unit=unit, recipient_role=role,
                                               subject=f"[回头看 {self.state.spec.name}] {subject}", body=body))

    def office_and_inspectors(self, items: list[Item]) -> list[tuple[str, Role]]:
        p = self.state.policy
        targets = [(p.office_unit, Role.RECTIFICATION_OFFICE)]
        targets += [(u, Role.SUPERVISION_OFFICE) for u in p.supervision_units]
        for i in items:
            targets += [(u, Role.LEAD_SUPERVISOR) for u in i.lead_supervising_units]
        return targets

    def accept(self, request_id: str) -> None:
        self.state.request_ids = (self.state.request_ids + [request_id])[-200:]

    def done(self) -> LookbackDecision:
        return LookbackDecision(state=self.state, entries=self.entries, notices=self.notices,
                                reopen=self.reopen, schedule=self.schedule)


# ---------------------------------------------------------------- creating


def new_campaign(spec: CampaignSpec, policy: LookbackPolicy, now: datetime, created_by: Actor) -> LookbackDecision:
    """CAMPAIGN_CREATED, and its reminder schedule asked of the calendar activity."""
    authorize_office(created_by, policy, "创建回头看 create a look-back campaign")
    state = CampaignState(spec=spec, policy=policy, created_at=now, created_by=created_by, schedule_pending=True)
    b = _Builder(state, now)
    b.entry("CAMPAIGN_CREATED", created_by, reason=spec.basis, data={
        "name": spec.name, "unannounced": spec.unannounced, "start": spec.start.isoformat(),
        "end": spec.end.isoformat(), "programme_id": spec.programme_id, "policy_version": policy.version})
    b.schedule = ScheduleRequest(campaign_id=spec.campaign_id, end=spec.end,
                                 working_days_before=list(policy.reminder_working_days_before),
                                 overdue_reminder=policy.overdue_reminder)
    return b.done()


def working_days_before(cal: WorkingCalendar, end: date, n: int) -> date:
    """The working day `n` working days before `end` (end itself not counted)."""
    d, counted = end, 0
    while counted < n:
        d -= timedelta(days=1)
        if cal.is_working_day(d):
            counted += 1
    return d


def compute_schedule(req: ScheduleRequest, cal: WorkingCalendar) -> Schedule:
    """Reminder times: 09:00 Asia/Shanghai on each reminder day; after-end at the end of the period's last day."""
    steps = []
    for n in sorted(set(req.working_days_before), reverse=True):
        d = working_days_before(cal, req.end, n)
        steps.append(ReminderStep(key=f"before-{n}", fire_date=d,
                                  fire_at=datetime.combine(d, time(9, 0), tzinfo=SHANGHAI)))
    if req.overdue_reminder:
        steps.append(ReminderStep(key="after-end", fire_date=req.end + timedelta(days=1), fire_at=end_of_day(req.end)))
    return Schedule(steps=steps, calendar_version=cal.version)


def apply_schedule(state: CampaignState, schedule: Schedule, now: datetime) -> LookbackDecision:
    """REMINDERS_SET; a reminder already past is skipped (never sent late), except after-end."""
    b = _Builder(state, now)
    steps = [s.model_copy(update={"done": s.fire_at <= now and s.key != "after-end"}) for s in schedule.steps]
    b.state.reminders, b.state.schedule_pending = steps, False
    b.entry("REMINDERS_SET", SYSTEM, calendar_version=schedule.calendar_version,
            schedule=[{"key": s.key, "fire_date": s.fire_date.isoformat(), "skipped": s.done} for s in steps])
    return b.done()


# ---------------------------------------------------------------- validating requests


def _common(state: CampaignState, request_id: str) -> None:
    if state.stage is CampaignStage.CLOSED:
        raise InvalidTransitionError(f"look-back campaign {state.campaign_id} has ended")
    if request_id in state.request_ids:
        raise DuplicateRequestError(f"request {request_id} was already applied to campaign {state.campaign_id}")


def validate_select(state: CampaignState, req: SelectRequest) -> None:
    authorize_office(req.actor, state.policy, "选取回头看案件 select the cases")
    _common(state, req.request_id)
    if state.stage is not CampaignStage.CREATED:
        raise InvalidTransitionError(
            f"campaign {state.campaign_id} has already selected its {len(state.items)} cases; a selection is made once")


def validate_finding(state: CampaignState, req: FindingRequest, today: date) -> None:
    item = state.item(req.case_no)
    if item is not None:
        authorize_finding(req.actor, item, state.policy)
    _common(state, req.request_id)
    if state.stage is not CampaignStage.VISITING:
        raise InvalidTransitionError(f"campaign {state.campaign_id} has no selection yet: select its cases first")
    item = require_item(state, req.case_no)
    if item.finding is not None:
        raise InvalidTransitionError(
            f"case {req.case_no} already has its finding in campaign {state.campaign_id}: "
            f"{FINDING_LABELS_ZH[item.finding]} {item.finding.value} by {item.inspector.user_id if item.inspector else '?'}"
            f" (seq {item.finding_seq}); a case gets exactly one finding")
    if not req.evidence.strip():
        raise MissingInputError("a finding needs `evidence` (核查情况 what was found on site)")
    if req.new_due_date is not None:
        if req.finding is CampaignFinding.IN_PLACE:
            raise MissingInputError("new_due_date is only for a finding that reopens the case (not IN_PLACE)")
        if req.new_due_date <= today:
            raise InvalidDeadlineError(f"new due date {req.new_due_date} is not after today ({today})")


def validate_close(state: CampaignState, req: CloseRequest) -> None:
    authorize_office(req.actor, state.policy, "结束回头看 close the campaign")
    _common(state, req.request_id)


# ---------------------------------------------------------------- deciding


def decide_select(state: CampaignState, req: SelectRequest, candidates: list[Candidate], seed: int,
                  now: datetime) -> LookbackDecision:
    validate_select(state, req)
    crit = req.criteria.model_copy(update={"seed": req.criteria.seed if req.criteria.seed is not None else seed})
    chosen, population = select(candidates, crit, state.spec.programme_id, crit.seed or 0)
    if len(chosen) > state.policy.max_selection:
        raise MissingInputError(f"the selection holds {len(chosen)} cases, more than the policy's max_selection "
                                f"({state.policy.max_selection}): narrow it or draw a sample")
    b = _Builder(state, now)
    s = b.state
    b.accept(req.request_id)
    s.criteria, s.population, s.stage = crit, population, CampaignStage.VISITING
    s.items = [Item(case_no=c.case_no, title=c.title, stage=c.stage, responsible_units=c.responsible_units,
                    lead_supervising_units=c.lead_supervising_units) for c in chosen]
    sampled = crit.sample_size is not None and crit.sample_size < population
    seq = b.entry("CASES_SELECTED", req.actor, request_id=req.request_id,
                  reason=f"选取 {len(chosen)}/{population} 件" + (f" (随机抽取 seed {crit.seed})" if sampled else ""),
                  criteria=crit.model_dump(mode="json"), population=population, sampled=sampled,
                  case_nos=[c.case_no for c in chosen])
    if not state.spec.unannounced:  # 四不两直: the units visited are not told beforehand
        body = f"回头看 {state.spec.name}: {len(chosen)} 件, {state.spec.start} 至 {state.spec.end}"
        b.notify(seq, "回头看已选定案件 cases selected", body, b.office_and_inspectors(s.items))
    if not s.items:
        _close(b, SYSTEM, "没有符合条件的案件 no case matched the selection")
    return b.done()


def decide_finding(state: CampaignState, req: FindingRequest, now: datetime) -> LookbackDecision:
    validate_finding(state, req, local_date(now))
    b = _Builder(state, now)
    s = b.state
    b.accept(req.request_id)
    item = require_item(s, req.case_no)
    label = FINDING_LABELS_ZH[req.finding]
    seq = b.entry("FINDING_RECORDED", req.actor, reason=req.evidence, request_id=req.request_id,
                  case_no=req.case_no, finding=req.finding.value, evidence_refs=list(req.evidence_refs),
                  new_due_date=req.new_due_date.isoformat() if req.new_due_date else None)
    item.finding, item.evidence, item.evidence_refs = req.finding, req.evidence, list(req.evidence_refs)
    item.inspector, item.found_at, item.finding_seq = req.actor, now, seq
    if req.finding in REOPENS:
        office = req.actor if req.actor.role is Role.RECTIFICATION_OFFICE else state.created_by
        item.reopen = ReopenStatus.PENDING
        b.reopen.append(ReopenOrder(
            campaign_id=s.campaign_id, seq=seq, case_no=item.case_no, actor=office,
            lookback_finding=REOPENS[req.finding], new_due_date=req.new_due_date,
            working_days=s.policy.reopen_working_days, today=local_date(now),
            reason=f"回头看 {s.spec.name}: {label} ({req.actor.user_id} / {req.actor.unit}): {req.evidence}"[:1900]))
        path = PROPOSES[req.finding]
        item.referral_proposed = path
        pseq = b.entry("REFERRAL_PROPOSED", SYSTEM, case_no=item.case_no, referral_path=path.value,
                       reason=f"{label}: 拟移交问责 {referral_label(path)} (待确认 awaiting a person's decision)")
        targets = [(s.policy.office_unit, Role.RECTIFICATION_OFFICE)]
        if path is ReferralPath.FAKE_RECTIFICATION:  # path B: the lead supervising unit drafts
            targets += [(u, Role.LEAD_SUPERVISOR) for u in item.lead_supervising_units]
        else:
            targets += [(u, Role.SUPERVISION_OFFICE) for u in s.policy.supervision_units]
        b.notify(pseq, f"{item.case_no} {label}: 拟移交问责 referral proposed",
                 f"案件 {item.case_no} {item.title}: 回头看发现{label}, 已重新整改; 拟按{referral_label(path)}移交问责,"
                 " 请在案件中确认 (confirm in the case).", targets)
    return b.done()


def apply_reopen(state: CampaignState, outcome: ReopenOutcome, seq: int, now: datetime) -> LookbackDecision:
    """CASE_REOPENED or REOPEN_FAILED (the reason kept; the office can reopen the case by hand)."""
    b = _Builder(state, now)
    item = require_item(b.state, outcome.case_no)
    if outcome.ok:
        item.reopen, item.reopen_due_date = ReopenStatus.REOPENED, outcome.due_date
        b.entry("CASE_REOPENED", SYSTEM, case_no=item.case_no, finding_seq=seq,
                new_due_date=outcome.due_date.isoformat() if outcome.due_date else None)
    else:
        item.reopen, item.reopen_error = ReopenStatus.FAILED, f"{outcome.error_type}: {outcome.message}"[:1000]
        fseq = b.entry("REOPEN_FAILED", SYSTEM, case_no=item.case_no, reason=item.reopen_error, finding_seq=seq)
        b.notify(fseq, f"{item.case_no} 重新整改未成功 reopen failed", item.reopen_error,
                 [(b.state.policy.office_unit, Role.RECTIFICATION_OFFICE)])
    if not b.state.unvisited() and not any(i.reopen is ReopenStatus.PENDING for i in b.state.items):
        _close(b, SYSTEM, "全部案件已核查 every selected case visited")
    return b.done()


def after_finding(state: CampaignState, now: datetime) -> LookbackDecision | None:
    """Every case visited and nothing left to reopen: the campaign ends by itself."""
    if state.stage is CampaignStage.VISITING and not state.unvisited() and not any(
            i.reopen is ReopenStatus.PENDING for i in state.items):
        b = _Builder(state, now)
        _close(b, SYSTEM, "全部案件已核查 every selected case visited")
        return b.done()
    return None


def decide_close(state: CampaignState, req: CloseRequest, now: datetime) -> LookbackDecision:
    validate_close(state, req)
    b = _Builder(state, now)
    b.accept(req.request_id)
    _close(b, req.actor, req.reason or "整改办结束回头看 closed by the office", request_id=req.request_id)
    return b.done()


def _close(b: _Builder, actor: Actor, reason: str, request_id: str | None = None) -> None:
    s = b.state
    s.stage, s.closed_at, s.closed_by, s.close_reason = CampaignStage.CLOSED, b.now, actor, reason
    figures = report_figures(s.items)
    seq = b.entry("CAMPAIGN_CLOSED", actor, reason=reason, request_id=request_id, report=figures,
                  unvisited=[i.case_no for i in s.unvisited()])
    body = (f"回头看 {s.spec.name} 已结束: 选取 {figures['selected']}, 已核查 {figures['visited']}, "
            f"未核查 {figures['unvisited']}, 重新整改 {figures['reopened']}, 拟移交问责 {figures['referrals_proposed']}")
    b.notify(seq, "回头看已结束 campaign closed (report ready)", body,
             [(s.policy.office_unit, Role.RECTIFICATION_OFFICE)])


# ---------------------------------------------------------------- the clock


def next_wakeup(state: CampaignState) -> datetime | None:
    if state.stage is CampaignStage.CLOSED:
        return None
    pending = [s.fire_at for s in state.reminders if not s.done]
    return min(pending) if pending else None


def on_wakeup(state: CampaignState, now: datetime) -> LookbackDecision | None:
    """REMINDER rows for the reminders due now, each a notice to the office and the inspectors
    of the unvisited cases (no notice when nothing is left unvisited)."""
    if state.stage is CampaignStage.CLOSED:
        return None
    due = [s for s in state.reminders if not s.done and s.fire_at <= now]
    if not due:
        return None
    b = _Builder(state, now)
    for step in b.state.reminders:
        if step.done or step.fire_at > now:
            continue
        step.done = True
        left = b.state.unvisited() if b.state.stage is CampaignStage.VISITING else []
        after = step.key == "after-end"
        seq = b.entry("REMINDER", SYSTEM, reminder=step.key, unvisited=[i.case_no for i in left],
                      reason=("回头看期限已过" if after else "回头看即将到期") + f", 未核查 {len(left)} 件")
        if left or b.state.stage is CampaignStage.CREATED:
            what = "已过期 period over" if after else f"{b.state.spec.end} 到期 period ends"
            body = (f"回头看 {b.state.spec.name} {what}; 未核查 unvisited: {len(left)} 件 "
                    + ", ".join(i.case_no for i in left[:50]) + ("…" if len(left) > 50 else ""))
            b.notify(seq, f"未核查案件提醒 unvisited cases ({len(left)})", body, b.office_and_inspectors(left))
    return b.done()
