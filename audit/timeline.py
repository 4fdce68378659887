"""A readable account of a case, derived from its workflow histories (not from the ledger).

Each entry says what happened, when, who did it and why, in Chinese with the
English term beside it: every handler action (Update) with actor and reason and
whether it succeeded, every deadline computed (with its explanation), every
timer that fired, every escalation rung, every notice, every run boundary.
Rendered as text, HTML (document or fragment) and PDF.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from audit.history import RunHistory, clock_record, decode, event_time, local_activity_result
from domain.decide import LedgerEntry
from domain.enums import (
    ACTION_LABELS_ZH,
    ROLE_LABELS_ZH,
    RUNG_LABELS_ZH,
    STAGE_LABELS_ZH,
    Action,
    Role,
    Rung,
    Stage,
    event_label_zh,
)
from domain.model import CRITERIA_LABELS_ZH, ActionRequest, ComputedDeadline, DeadlineRequest
from workflows.contracts import ActionResult, CaseWorkflowInput, CaseWorkflowResult, RecordInput

SHANGHAI = ZoneInfo("Asia/Shanghai")

ENTRY_KIND_LABELS_ZH = {
    "ACTION": "人工操作",
    "SYSTEM": "系统记录",
    "DEADLINE": "期限",
    "TIMER": "定时器",
    "ESCALATION": "督办升级",
    "NOTICE": "通知",
    "RUN": "工作流运行",
}

# Ledger events of the escalation ladder and of referrals (domain/escalation.py).
ESCALATION_EVENTS = frozenset({
    "ESCALATED", "APPLY_RUNG", "ESCALATION_STOPPED", "REFERRAL_OPENED", "ESCALATION_PROPOSED",
    "ESCALATION_RESUMED", "PROPOSE_RUNG", "CONFIRM_ESCALATION", "DISMISS_ESCALATION", "DE_ESCALATE",
    "VERIFY_REFERRAL", "RETURN_REFERRAL",
})


class TimelineEntry(BaseModel):
    """One line of the auditor's account."""

    at: datetime
    kind: str  # ACTION, SYSTEM, DEADLINE, TIMER, ESCALATION, NOTICE, RUN
    label_zh: str
    label_en: str
    actor_user: str = ""
    actor_role: str = ""
    actor_role_zh: str = ""
    actor_unit: str = ""
    reason: str = ""
    detail: str = ""  # readable, Chinese where the domain has Chinese terms
    outcome: str = ""  # for actions: 成功 / the refusal
    seq: int | None = None  # ledger sequence number the history recorded for it
    run_id: str = ""
    event_id: int = 0  # history event that shows it
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def kind_zh(self) -> str:
        return ENTRY_KIND_LABELS_ZH.get(self.kind, self.kind)


def _local(t: datetime | None) -> str:
    if t is None:
        return ""
    return t.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _stage(s: Stage | str | None) -> str:
    if s is None:
        return ""
    try:
        st = Stage(s)
    except ValueError:
        return str(s)
    return f"{STAGE_LABELS_ZH[st]}({st.value})"


def _role_zh(role: Any) -> str:
    try:
        return ROLE_LABELS_ZH[Role(getattr(role, "value", role))]
    except (ValueError, KeyError):
        return str(role)


def _event_label(event: str) -> tuple[str, str]:
    return event_label_zh(event), event


def _rung_zh(rung: Any) -> str:
    try:
        return RUNG_LABELS_ZH[Rung(rung)]
    except ValueError:
        return str(rung)


def _deadline_detail(c: ComputedDeadline, req: DeadlineRequest | None) -> str:
    x = c.explanation
    parts = [f"{_stage(c.stage)} 期限 {c.due_date.isoformat()}(截止 {_local(c.due_at)} 北京时间)",
             f"规则 rule: {x.rule}"]
    if x.days:
        count = "工作日" if (x.count and x.count.value == "WORKING") else "自然日"
        parts.append(f"自 {x.start.isoformat()} 起 {x.days} 个{count}")
    if x.holidays_skipped:
        parts.append("跳过节假日 " + "、".join(d.isoformat() for d in x.holidays_skipped))
    if x.weekend_days_skipped:
        parts.append(f"跳过周末 {x.weekend_days_skipped} 天")
    if x.adjusted_workdays_counted:
        parts.append("计入调休上班日 " + "、".join(d.isoformat() for d in x.adjusted_workdays_counted))
    if x.excluded_days:
        parts.append(f"中止期间顺延 {x.excluded_days} 天")
    if x.ladder_base:
        parts.append(f"督办起算日 {x.ladder_base.isoformat()}")
    if x.calendar_version:
        parts.append(f"日历版本 {x.calendar_version}")
    if c.escalation_schedule:
        parts.append("督办阶梯 " + ";".join(f"{_rung_zh(r.rung)} {r.fire_date.isoformat()}"
                                            for r in c.escalation_schedule))
    if req is not None and req.fixed_date is not None:
        parts.append(f"方案时限 {req.fixed_date.isoformat()}")
    return ";".join(parts)


class _Builder:
    def __init__(self) -> None:
        self.entries: list[TimelineEntry] = []
        self.updates: dict[str, TimelineEntry] = {}  # update id -> action entry
        self.by_request: dict[str, TimelineEntry] = {}  # request id -> action entry (not yet given a seq)
        self.activities: dict[int, tuple[str, Any]] = {}  # scheduled event id -> (type, input)
        self.timers: dict[str, tuple[datetime, timedelta | None, int]] = {}
        self.last_deadline: TimelineEntry | None = None
        self.trigger: str = ""

    def add(self, **kw: Any) -> TimelineEntry:
        e = TimelineEntry(**kw)
        self.entries.append(e)
        return e

    def deadline(self, c: ComputedDeadline, req: DeadlineRequest | None, t: datetime, rid: str, eid: int) -> None:
        """A computed deadline: from a completed compute_deadline activity or its local-activity marker."""
        label = "公示期计算" if c.purpose == "POSTING" else "期限计算"
        self.last_deadline = self.add(
            at=t, kind="DEADLINE", label_zh=label, label_en=f"DEADLINE_COMPUTED({c.purpose})",
            detail=_deadline_detail(c, req), run_id=rid, event_id=eid,
            data={"due_date": c.due_date.isoformat(), "due_at": c.due_at.isoformat(),
                  "stage": c.stage.value, "calendar_version": c.explanation.calendar_version},
        )

    # -------------------------------------------------------------- events

    def run(self, run: RunHistory) -> None:
        for ev in run.history.events:
            self.event(run, ev)

    def event(self, run: RunHistory, ev: HistoryEvent) -> None:
        t, eid, rid = event_time(ev), ev.event_id, run.run_id
        et = ev.event_type
        if et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            a = ev.workflow_execution_started_event_attributes
            inp: CaseWorkflowInput = decode(a.input, CaseWorkflowInput)
            if inp.reopen is not None and inp.state is not None:  # issue 14: an archived case reopened
                r = inp.reopen.request
                self.add(at=t, kind="RUN", label_zh="归档案件重新打开", label_en="REOPENED_FROM_ARCHIVE", run_id=rid,
                         event_id=eid, actor_user=r.actor.user_id, actor_role=r.actor.role.value,
                         actor_role_zh=_role_zh(r.actor.role), actor_unit=r.actor.unit,
                         detail=f"接续已归档运行 {inp.reopen.previous_run_id},案件状态整体带入"
                                f"(阶段 {_stage(inp.state.stage)},台账序号至 {inp.state.seq});回头看 REOPEN 为本运行第一项")
            elif inp.state is not None:
                self.add(at=t, kind="RUN", label_zh="续新运行开始", label_en="RUN_CONTINUED", run_id=rid, event_id=eid,
                         detail=f"接续运行 {a.continued_execution_run_id},案件状态整体带入"
                                f"(阶段 {_stage(inp.state.stage)},台账序号至 {inp.state.seq})")
            else:
                by = inp.filed_by
                self.add(at=t, kind="RUN", label_zh="工作流启动", label_en="WORKFLOW_STARTED", run_id=rid, event_id=eid,
                         actor_user=by.user_id, actor_role=by.role.value, actor_role_zh=_role_zh(by.role),
                         actor_unit=by.unit,
                         detail=f"案件 {inp.filing.case_no}「{inp.filing.title}」;主体责任单位 "
                                f"{'、'.join(inp.filing.responsible_units) or '(未填)'};"
                                f"整改时限 {inp.filing.deadline.raw_zh if inp.filing.deadline else '(未填)'}")
        elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED and (
                ev.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == "act"):
            a = ev.workflow_execution_update_accepted_event_attributes  # (issue 14: not reopen_outcome)
            req: ActionRequest = decode(a.accepted_request.input.args, ActionRequest)
            zh = ACTION_LABELS_ZH.get(req.action, req.action.value)
            detail = []
            if req.rung is not None:
                detail.append(f"措施 {_rung_zh(req.rung)}({req.rung.value})")
            if req.new_due_date is not None:
                detail.append(f"期限 {req.new_due_date.isoformat()}")
            if req.finding is not None:
                detail.append(f"结论 {req.finding.value}")
            if req.lookback_finding is not None:
                detail.append(f"回头看发现 {req.lookback_finding.value}")
            if req.measure_seq is not None:
                detail.append(f"措施序号 {req.measure_seq}")
            refs = list(req.evidence)
            if req.criteria is not None:
                c = req.criteria
                detail.append("验收标准 生态修复 {} / 污染消除 {} / 群众满意 {}".format(
                    *("达到" if x.met else "未达到" for x in (c.eco_restored, c.pollution_eliminated,
                                                           c.public_satisfied))))
                for key, zh in CRITERIA_LABELS_ZH.items():
                    check = getattr(c, key, None)
                    if check is not None and check.evidence:
                        detail.append(f"{zh}证据 " + "、".join(check.evidence))
                        refs += check.evidence
            if req.evidence:
                detail.append("证据 " + "、".join(req.evidence))
            entry = self.add(
                at=t, kind="ESCALATION" if req.action is Action.APPLY_RUNG else "ACTION", label_zh=zh,
                label_en=req.action.value, actor_user=req.actor.user_id, actor_role=req.actor.role.value,
                actor_role_zh=_role_zh(req.actor.role), actor_unit=req.actor.unit, reason=req.reason,
                detail=";".join(detail), run_id=rid, event_id=eid,
                data={"request_id": req.request_id, "update_id": a.accepted_request.meta.update_id}
                | ({"evidence": refs} if refs else {}),
            )
            self.updates[a.protocol_instance_id or a.accepted_request.meta.update_id] = entry
            self.by_request[req.request_id] = entry
            self.trigger = f"由{zh}引起(历史事件 {eid})"
        elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            a = ev.workflow_execution_update_completed_event_attributes
            entry = self.updates.get(a.meta.update_id)
            if entry is not None:
                if a.outcome.HasField("failure"):
                    entry.outcome = f"未完成: {a.outcome.failure.message}"
                else:
                    res: ActionResult | None = decode(a.outcome.success, ActionResult)
                    entry.outcome = "成功" + (f",现阶段 {_stage(res.stage)}" if res else "")
        elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = ev.activity_task_scheduled_event_attributes
            name = a.activity_type.name
            if name == "record_case_events":
                self.record(run, t, eid, decode(a.input, RecordInput))
            elif name == "compute_deadline":
                self.activities[eid] = (name, decode(a.input, DeadlineRequest))
            else:
                self.activities[eid] = (name, None)
        elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            a = ev.activity_task_completed_event_attributes
            name, inp = self.activities.get(a.scheduled_event_id, ("", None))
            if name == "compute_deadline":
                self.deadline(decode(a.result, ComputedDeadline), inp, t, rid, eid)
        elif et == EventType.EVENT_TYPE_MARKER_RECORDED:
            # Issue 15: the deadline computed by a local activity (its request is not in the history;
            # the result and its explanation are). Issue 9: the clock's ledger write, echoed in its result.
            la = local_activity_result(ev)
            if la is not None and la[0] == "compute_deadline":
                self.deadline(decode(la[1], ComputedDeadline), None, t, rid, eid)
            elif (clock := clock_record(ev)) is not None:
                self.record(run, t, eid, clock)
        elif et in (EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT):
            sched = (ev.activity_task_failed_event_attributes.scheduled_event_id
                     if et == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
                     else ev.activity_task_timed_out_event_attributes.scheduled_event_id)
            name, _ = self.activities.get(sched, ("activity", None))
            msg = (ev.activity_task_failed_event_attributes.failure.message
                   if et == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED else "timed out")
            self.add(at=t, kind="SYSTEM", label_zh="活动失败", label_en="ACTIVITY_FAILED", run_id=rid, event_id=eid,
                     detail=f"{name}: {msg}")
        elif et == EventType.EVENT_TYPE_TIMER_STARTED:
            a = ev.timer_started_event_attributes
            dur = a.start_to_fire_timeout.ToTimedelta() if a.HasField("start_to_fire_timeout") else None
            self.timers[a.timer_id] = (t, dur, eid)
        elif et == EventType.EVENT_TYPE_TIMER_FIRED:
            a = ev.timer_fired_event_attributes
            started, dur, sid = self.timers.get(a.timer_id, (None, None, 0))
            detail = f"定时器 {a.timer_id}"
            if started is not None:
                detail += f" 于 {_local(started)} 设定(历史事件 {sid})"
                if dur is not None:
                    detail += f",时长 {timedelta(seconds=round(dur.total_seconds()))},预定到期 {_local(started + dur)}"
            self.add(at=t, kind="TIMER", label_zh="定时器到期", label_en="TIMER_FIRED", detail=detail,
                     run_id=rid, event_id=eid)
            self.trigger = f"由定时器 {a.timer_id} 到期引起(历史事件 {eid})"
        elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            a = ev.workflow_execution_continued_as_new_event_attributes
            self.add(at=t, kind="RUN", label_zh="续新运行", label_en="CONTINUED_AS_NEW", run_id=rid, event_id=eid,
                     detail=f"历史过长,转入新运行 {a.new_execution_run_id}")
        elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            a = ev.workflow_execution_completed_event_attributes
            res: CaseWorkflowResult | None = decode(a.result, CaseWorkflowResult)
            self.add(at=t, kind="RUN", label_zh="工作流结束", label_en="WORKFLOW_COMPLETED", run_id=rid, event_id=eid,
                     detail=f"最终阶段 {_stage(res.stage)},台账序号 {res.seq}" if res else "")
        elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            a = ev.workflow_execution_terminated_event_attributes
            self.add(at=t, kind="RUN", label_zh="工作流被终止", label_en="WORKFLOW_TERMINATED", run_id=rid,
                     event_id=eid, actor_user=a.identity, reason=a.reason)
        elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            a = ev.workflow_execution_failed_event_attributes
            self.add(at=t, kind="RUN", label_zh="工作流失败", label_en="WORKFLOW_FAILED", run_id=rid, event_id=eid,
                     detail=a.failure.message)

    def record(self, run: RunHistory, t: datetime, eid: int, inp: RecordInput) -> None:
        """Entries and notices the workflow handed to the record activity."""
        for e in inp.entries:
            self.entry(run, eid, e)
        for n in inp.notices:
            self.add(at=t, kind="NOTICE", label_zh="发出通知", label_en="NOTICE", seq=n.seq, run_id=run.run_id,
                     event_id=eid, actor_unit=n.recipient_unit, actor_role=n.recipient_role.value,
                     actor_role_zh=_role_zh(n.recipient_role),
                     detail=f"致 {n.recipient_unit or _role_zh(n.recipient_role)}:{n.subject}",
                     data={"notice_key": n.key})

    def entry(self, run: RunHistory, eid: int, e: LedgerEntry) -> None:
        action = self.by_request.get(e.request_id or "")
        if action is not None and action.seq is None and e.event == action.label_en:
            action.seq = e.seq
            action.at = e.at  # the workflow's time of the decision (ledger order)
            if e.from_stage or e.to_stage:
                move = f"{_stage(e.from_stage) or '—'} → {_stage(e.to_stage) or '—'}"
                action.detail = f"{move};{action.detail}" if action.detail else move
            return
        if e.event == "DEADLINE_SET" and self.last_deadline is not None and self.last_deadline.seq is None:
            self.last_deadline.seq = e.seq
            return
        zh, en = _event_label(e.event)
        kind = "ESCALATION" if e.event in ESCALATION_EVENTS \
            else ("ACTION" if e.actor.role is not Role.SYSTEM else "SYSTEM")
        detail = []
        if e.from_stage or e.to_stage:
            detail.append(f"{_stage(e.from_stage) or '—'} → {_stage(e.to_stage) or '—'}")
        if "rung" in e.data:
            detail.append(f"第 {e.data.get('level')} 级 {_rung_zh(e.data['rung'])}({e.data['rung']})"
                          + (f",期限 {e.data['due_date']}" if e.data.get("due_date") else ""))
            zh = f"{zh}:{_rung_zh(e.data['rung'])}"
        if "referral_id" in e.data:
            detail.append(f"问责移交 {e.data['referral_id']}")
        if e.actor.role is Role.SYSTEM and self.trigger:
            detail.append(self.trigger)
        self.add(at=e.at, kind=kind, label_zh=zh, label_en=en, actor_user=e.actor.user_id,
                 actor_role=e.actor.role.value, actor_role_zh=_role_zh(e.actor.role), actor_unit=e.actor.unit,
                 reason=e.reason, detail=";".join(detail), seq=e.seq, run_id=run.run_id, event_id=eid,
                 data=dict(e.data))


def build_timeline_from_runs(runs: Iterable[RunHistory]) -> list[TimelineEntry]:
    """The account of a case over all its runs, in history order."""
    b = _Builder()
    for r in runs:
        b.run(r)
    # Stable: same-instant entries keep history order.
    return sorted(b.entries, key=lambda e: e.at)


def build_timeline(events: Iterable[HistoryEvent] | Iterable[RunHistory] | RunHistory) -> list[TimelineEntry]:
    """The account from one run's history events, a `RunHistory`, or a list of runs."""
    if isinstance(events, RunHistory):
        return build_timeline_from_runs([events])
    items = list(events)
    if items and isinstance(items[0], RunHistory):
        return build_timeline_from_runs(items)  # type: ignore[arg-type]
    from temporalio.client import WorkflowHistory

    from audit.history import from_workflow_history

    run = from_workflow_history(WorkflowHistory("case-?", items), source="events")  # type: ignore[arg-type]
    return build_timeline_from_runs([run])


# ------------------------------------------------------------------ evidence files


class EvidenceRow(BaseModel):
    """One evidence file of the case (from the evidence store, not the history), with the
    history entries whose actions cite it; `stored` False: cited in the history but not found."""

    sha256: str
    original_name: str = ""
    media_type: str = ""
    size: int = 0
    uploader: str = ""
    uploaded_at: datetime | None = None
    stored: bool = True
    cited_by: list[str] = Field(default_factory=list)


def evidence_rows(files: Iterable[Any], entries: Iterable[TimelineEntry]) -> list[EvidenceRow]:
    """The case's evidence files (objects with sha256, original_name, media_type, size,
    uploader_user, uploader_unit, uploaded_at) with the actions citing each, plus any file the
    history cites that the store does not list."""
    from domain.evidence import EvidenceError, parse_reference

    cited: dict[str, list[str]] = {}
    for e in entries:
        for ref in e.data.get("evidence") or []:
            try:
                sha = parse_reference(str(ref))
            except EvidenceError:
                continue
            if sha is not None:
                cited.setdefault(sha, []).append(f"{_local(e.at)} {e.label_zh}({e.label_en},历史事件 {e.event_id})")
    rows = [EvidenceRow(sha256=f.sha256, original_name=f.original_name, media_type=f.media_type, size=f.size,
                        uploader=f"{f.uploader_user} / {f.uploader_unit}", uploaded_at=f.uploaded_at,
                        cited_by=cited.pop(f.sha256, [])) for f in files]
    rows += [EvidenceRow(sha256=sha, stored=False, cited_by=by) for sha, by in cited.items()]
    return rows


def _evidence_html(rows: list[EvidenceRow]) -> str:
    esc = html.escape
    items = "".join(
        f'<tr data-sha256="{esc(r.sha256)}"><td>{esc(r.original_name) if r.stored else "(不在存储中 not in the store)"}</td>'
        f"<td>{esc(r.media_type)}</td><td>{r.size}</td><td><code>{esc(r.sha256)}</code></td>"
        f"<td>{esc(r.uploader)}</td><td>{esc(_local(r.uploaded_at))}</td><td>{'<br>'.join(esc(c) for c in r.cited_by)}</td></tr>"
        for r in rows)
    return ("<h2>佐证材料 <span class=en>evidence files (from the evidence store; the history holds only their "
            "references)</span></h2>"
            '<table class="audit-timeline audit-evidence"><thead><tr><th>文件<br><span class=en>file</span></th>'
            "<th>类型<br><span class=en>type</span></th><th>字节<br><span class=en>bytes</span></th><th>sha256</th>"
            "<th>上传人<br><span class=en>uploaded by</span></th><th>上传时间<br><span class=en>uploaded at</span></th>"
            f"<th>引用<br><span class=en>cited by</span></th></tr></thead><tbody>{items}</tbody></table>")


# ------------------------------------------------------------------ rendering


def _who(e: TimelineEntry) -> str:
    if e.kind == "NOTICE":
        return ""
    parts = [p for p in (e.actor_role_zh, e.actor_unit, e.actor_user) if p]
    return " / ".join(parts)


def render_text(case_no: str, entries: list[TimelineEntry], evidence: list[EvidenceRow] | None = None) -> str:
    lines = [f"案件 {case_no} 审计时间线 (audit timeline) — 来源:工作流历史 (workflow history)", ""]
    for e in entries:
        head = f"{_local(e.at)}  [{e.kind_zh}] {e.label_zh} ({e.label_en})"
        if e.seq is not None:
            head += f"  台账#{e.seq}"
        lines.append(head)
        if who := _who(e):
            lines.append(f"    操作人 actor: {who}")
        if e.reason:
            lines.append(f"    理由 reason: {e.reason}")
        if e.detail:
            lines.append(f"    {e.detail}")
        if e.outcome:
            lines.append(f"    结果 outcome: {e.outcome}")
    if evidence:
        lines += ["", "佐证材料 evidence files (from the evidence store):"]
        for r in evidence:
            lines.append(f"  sha256 {r.sha256}  " + (f"{r.original_name} ({r.media_type}, {r.size} bytes, "
                         f"{r.uploader}, {_local(r.uploaded_at)})" if r.stored else "(不在存储中 not in the store)"))
            lines += [f"    引用 cited by: {c}" for c in r.cited_by]
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:2em;color:#222}
table.audit-timeline{border-collapse:collapse;width:100%;font-size:14px}
.audit-timeline th,.audit-timeline td{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}
.audit-timeline th{background:#f3f3f3}
.audit-timeline tr.k-ESCALATION td{background:#fff3f0}
.audit-timeline tr.k-DEADLINE td{background:#f5f9ff}
.audit-timeline tr.k-TIMER td{background:#f8f8f8}
.audit-timeline .en{color:#777;font-size:12px}
"""


def render_html_fragment(case_no: str, entries: list[TimelineEntry]) -> str:
    """The timeline as an HTML <table> (for embedding in the web console's auditor page)."""
    esc = html.escape
    rows = []
    for e in entries:
        rows.append(
            f'<tr class="k-{esc(e.kind)}" data-event-id="{e.event_id}">'
            f"<td>{esc(_local(e.at))}</td>"
            f'<td>{esc(e.kind_zh)}</td>'
            f'<td>{esc(e.label_zh)}<br><span class="en">{esc(e.label_en)}</span></td>'
            f"<td>{esc(_who(e))}</td>"
            f"<td>{esc(e.reason)}</td>"
            f"<td>{esc(e.detail)}{'<br>' + esc(e.outcome) if e.outcome else ''}</td>"
            f"<td>{'' if e.seq is None else e.seq}</td>"
            f"<td>{e.event_id}</td></tr>"
        )
    head = ("<tr><th>时间(北京时间)<br><span class=en>time</span></th><th>类别<br><span class=en>kind</span></th>"
            "<th>事项<br><span class=en>event</span></th><th>操作人<br><span class=en>actor</span></th>"
            "<th>理由<br><span class=en>reason</span></th><th>说明<br><span class=en>detail</span></th>"
            "<th>台账序号<br><span class=en>ledger seq</span></th><th>历史事件<br><span class=en>event id</span></th></tr>")
    return (f'<table class="audit-timeline" data-case-no="{esc(case_no)}">'
            f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")


def render_html(
    case_no: str, entries: list[TimelineEntry], runs: list[RunHistory] | None = None,
    generated_at: datetime | None = None, fragment: bool = False, evidence: list[EvidenceRow] | None = None,
) -> str:
    """A standalone HTML document (or, with fragment=True, just the table)."""
    if fragment:
        return render_html_fragment(case_no, entries)
    esc = html.escape
    gen = generated_at or datetime.now(UTC)
    sources = ""
    if runs:
        items = "".join(
            f"<li>运行 run {esc(r.run_id)}:{esc(r.status)},{len(r.history.events)} 个事件,来源 {esc(r.source)},"
            f"sha256 <code>{esc(r.sha256)}</code></li>" for r in runs
        )
        sources = f"<h2>历史来源 <span class=en>history sources</span></h2><ul>{items}</ul>"
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>案件 {esc(case_no)} 审计时间线</title><style>{_CSS}</style></head><body>"
        f"<h1>案件 {esc(case_no)} 审计时间线 <span class=en>audit timeline</span></h1>"
        f"<p>依据工作流历史生成(非台账),生成时间 {esc(_local(gen))}(北京时间)。"
        "<span class=en>Derived from the workflow history, not from the ledger.</span></p>"
        f"{sources}{_evidence_html(evidence) if evidence else ''}"
        f"<h2>时间线 <span class=en>timeline</span></h2>{render_html_fragment(case_no, entries)}</body></html>"
    )


_SHORT_REF = re.compile(r"(evidence:sha256:[0-9a-f]{12})[0-9a-f]{52}")
_PDF_CELL_CHARS = 1200


def _pieces(text: str, n: int) -> list[str]:
    return [text[i:i + n] for i in range(0, len(text), n)] or [""]


def render_pdf(case_no: str, entries: list[TimelineEntry], runs: list[RunHistory] | None = None,
               evidence: list[EvidenceRow] | None = None) -> bytes:
    """The timeline as PDF (reportlab, built-in CID font STSong-Light: no font file needed)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    small = ParagraphStyle("small", fontName=font, fontSize=7.5, leading=9.5, wordWrap="CJK")
    title = ParagraphStyle("title", fontName=font, fontSize=14, leading=18)
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12, wordWrap="CJK")

    def p(text: str, style: ParagraphStyle = small) -> Paragraph:
        return Paragraph(html.escape(text).replace("\n", "<br/>"), style)

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=landscape(A4), leftMargin=10 * mm, rightMargin=10 * mm,
                            topMargin=10 * mm, bottomMargin=10 * mm,
                            title=f"案件 {case_no} 审计时间线", author="case-engine audit")
    story: list[Any] = [p(f"案件 {case_no} 审计时间线 (audit timeline)", title),
                        p("依据工作流历史生成(非台账) / derived from the workflow history, not from the ledger", body)]
    for r in runs or []:
        story.append(p(f"运行 run {r.run_id}:{r.status},{len(r.history.events)} 个事件,来源 {r.source},"
                       f"sha256 {r.sha256}", small))
    if evidence:
        story.append(Spacer(1, 3 * mm))
        story.append(p("佐证材料 evidence files (from the evidence store; the history holds only their references)",
                       body))
        ev = [[p(h) for h in ("文件 file", "类型 type", "字节 bytes", "sha256", "上传人 uploaded by",
                              "上传时间 uploaded at", "引用 cited by")]]
        for r in evidence:
            cites = _pieces("\n".join(r.cited_by), _PDF_CELL_CHARS // 2)
            ev.append([p(r.original_name if r.stored else "(不在存储中 not in the store)"), p(r.media_type),
                       p(str(r.size)), p(r.sha256), p(r.uploader), p(_local(r.uploaded_at)), p(cites[0])])
            ev += [[p(""), p(""), p(""), p("(续 cont.)"), p(""), p(""), p(c)] for c in cites[1:]]
        et = LongTable(ev, colWidths=[40 * mm, 22 * mm, 16 * mm, 62 * mm, 36 * mm, 28 * mm, 73 * mm], repeatRows=1)
        et.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                                ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        story.append(et)
    story.append(Spacer(1, 4 * mm))
    data = [[p(h) for h in ("时间 time", "类别 kind", "事项 event", "操作人 actor", "理由 reason",
                            "说明 detail", "台账 seq", "事件 id")]]
    for e in entries:
        # Evidence references shortened (the table above has the full hashes); a long text goes
        # on continuation rows, since a table row cannot be taller than a page.
        text = _SHORT_REF.sub(lambda m: m[1] + "…", e.detail + (f"\n{e.outcome}" if e.outcome else ""))
        details, reasons = _pieces(text, _PDF_CELL_CHARS), _pieces(e.reason, _PDF_CELL_CHARS // 3)
        data.append([p(_local(e.at)), p(e.kind_zh), p(f"{e.label_zh}\n{e.label_en}"), p(_who(e)),
                     p(reasons[0]), p(details[0]), p("" if e.seq is None else str(e.seq)), p(str(e.event_id))])
        for i in range(1, max(len(details), len(reasons))):
            data.append([p(""), p(""), p("(续 cont.)"), p(""), p(reasons[i] if i < len(reasons) else ""),
                         p(details[i] if i < len(details) else ""), p(""), p("")])
    widths = [28 * mm, 16 * mm, 34 * mm, 40 * mm, 35 * mm, 100 * mm, 12 * mm, 12 * mm]
    table = LongTable(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    story.append(table)
    doc.build(story)
    return buf.getvalue()
