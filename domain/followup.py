"""The follow-up timer engine (issue 13): measure milestones and monthly reports as small deadlines.

Which timers a case wants is decided by domain/milestones.py and domain/reporting.py; this
module dates them (through the calendar activity: `schedule_request` → activity
`compute_followup_schedule` → `compute_schedule` → `apply_schedule`), says when the clock next
needs the case (`wakeups`) and what happens then (`on_wakeup`): a reminder some working days
before the date, then each rung of the policy's follow-up ladder after it. These timers are
notices and ledger rows of their own (MILESTONE_* / REPORT_*); they do not move the case's
stage, nor its stage-deadline escalation level.

A case is under these rules when `CaseState.followup` is set: cases filed by a workflow run
that has the patch `milestones-timers-1`, and older cases from their next continue-as-new on.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from domain import milestones as ms
from domain import reporting as rp
from domain.calendar import WorkingCalendar, add_days, end_of_day, local_date
from domain.enums import RUNG_LABELS_ZH, Role
from domain.followup_model import (
    FollowUpProjection,
    FollowUpState,
    ItemTimer,
    ScheduleRequest,
    ScheduleResult,
    TimerKind,
    TimerRung,
)
from domain.model import SYSTEM_ACTOR, CaseState

if TYPE_CHECKING:  # pragma: no cover
    from domain.decide import _Builder

RULES = 1
MAX_STOPPED_REPORT_TIMERS = 12

def adopt(state: CaseState, patched: bool, now: datetime) -> CaseState:
    """Set whether a workflow run applies the follow-up rules (in place).

    `patched` is the run's `workflow.patched(...)`: False while replaying a run begun before
    them, which keeps no follow-up state (so its history replays unchanged).
    """
    if not patched:
        state.followup = None
    elif state.followup is None:
        state.followup = FollowUpState(rules=RULES, since=local_date(now))
    return state


def _active(state: CaseState, t: ItemTimer) -> bool:
    if t.stopped is not None:
        return False
    if t.kind is TimerKind.MILESTONE:
        return ms.active(state, t.measure_seq)
    return rp.active(state, t.period)


# ---------------------------------------------------------------- dating the timers


def schedule_request(state: CaseState, now: datetime) -> ScheduleRequest | None:
    """The timers the case wants but has not dated yet (None: nothing to ask the calendar)."""
    fu = state.followup
    if fu is None or state.suspension is not None:
        return None
    today = local_date(now)
    items = [i for i in ms.wanted(state, today) + rp.wanted(state, today) if fu.timer(i.key) is None]
    return ScheduleRequest(case_no=state.case_no, today=today, items=items) if items else None


def _working_days_before(cal: WorkingCalendar, d: date, n: int) -> date:
    counted = 0
    while counted < n:
        d -= timedelta(days=1)
        if cal.is_working_day(d):
            counted += 1
    return d


def compute_schedule(req: ScheduleRequest, cal: WorkingCalendar) -> ScheduleResult:
    """Date each item: due date (report days roll to the next working day), reminder, rungs."""
    uncovered: set[int] = set()
    timers = []
    for it in req.items:
        due, notes = it.due_date, []
        if it.roll_to_working_day:
            while not cal.is_working_day(due):
                due += timedelta(days=1)
            if due != it.due_date:
                notes.append(f"report day {it.due_date} is not a working day: due {due}")
        lad = it.ladder
        remind = _working_days_before(cal, due, lad.remind_days_before) if lad.remind_days_before else None
        base = due if it.ladder_floor is None or it.ladder_floor <= due else it.ladder_floor
        if base != due:
            notes.append(f"already past when set: ladder counted from {base}")
        schedule = []
        for r in lad.rungs:
            walk = add_days(cal, base, r.delay_days, lad.count)
            uncovered.update(walk.uncovered_years)
            schedule.append(TimerRung(rung=r.rung, fire_date=walk.end, fire_at=end_of_day(walk.end)))
        for d in (due, remind or due):
            if not cal.covers(d):
                uncovered.add(d.year)
        rungs = ", ".join(f"{RUNG_LABELS_ZH[r.rung]} {r.fire_date}" for r in schedule)
        expl = (f"due {due}; reminder {remind or '—'} ({lad.remind_days_before} {lad.count} days before); "
                f"ladder {rungs or '—'}" + ("; " + "; ".join(notes) if notes else ""))
        timers.append(ItemTimer(
            key=it.key, kind=it.kind, measure_seq=it.measure_seq, period=it.period, what=it.what,
            due_date=due, due_at=end_of_day(due), remind_date=remind,
            remind_at=end_of_day(remind) - timedelta(hours=15) if remind else None,  # 09:00 local
            schedule=schedule, explanation=expl,
        ))
    version = cal.version
    if uncovered:
        version += f" (years {','.join(map(str, sorted(uncovered)))} not covered: weekends only, provisional)"
    for t in timers:
        t.calendar_version = version
    return ScheduleResult(timers=timers, calendar_version=version)


def apply_schedule(b: _Builder, result: ScheduleResult) -> None:
    """Record the dated timers (one FOLLOWUP_SCHEDULED row)."""
    s = b.state
    fu = s.followup
    assert fu is not None
    for t in result.timers:
        fu.timers = [x for x in fu.timers if x.key != t.key] + [t]
    stopped_reports = [t for t in fu.timers if t.kind is TimerKind.REPORT and t.stopped is not None]
    for t in stopped_reports[:-MAX_STOPPED_REPORT_TIMERS]:
        fu.timers.remove(t)
    b.record(
        "FOLLOWUP_SCHEDULED", SYSTEM_ACTOR,
        reason="; ".join(f"{t.key} {t.what[:60]}: {t.explanation}" for t in result.timers)[:4000],
        calendar_version=result.calendar_version,
        timers=[t.model_dump(mode="json", include={"key", "kind", "measure_seq", "period", "due_date",
                                                    "remind_date", "schedule"}) for t in result.timers],
    )


# ---------------------------------------------------------------- the clock


def _next_event(t: ItemTimer) -> datetime | None:
    times = []
    if not t.reminded and t.remind_at is not None and t.step == 0:
        times.append(t.remind_at)
    if t.step < len(t.schedule):
        times.append(t.schedule[t.step].fire_at)
    return min(times) if times else None


def wakeups(state: CaseState) -> list[datetime]:
    """When the follow-up timers next need the case."""
    if state.followup is None:
        return []
    return [at for t in state.followup.timers if _active(state, t) and (at := _next_event(t)) is not None]


def on_wakeup(b: _Builder) -> bool:
    """Fire every follow-up event due at `b.now`; False when none was due."""
    s, now = b.state, b.now
    fu = s.followup
    if fu is None:
        return False
    acted = False
    for t in fu.timers:
        if not _active(s, t) or (at := _next_event(t)) is None or at > now:
            continue
        acted = True
        if not t.reminded and t.remind_at is not None and t.remind_at <= now and t.step == 0:
            t.reminded = True
            if now < t.due_at:
                _remind(b, t)
        due = [i for i in range(t.step, len(t.schedule)) if t.schedule[i].fire_at <= now]
        if due:
            fire = t.schedule[due[-1]]
            skipped = [t.schedule[i].rung.value for i in due[:-1]]
            t.step = due[-1] + 1
            t.fired.append(fire.rung)
            _escalate(b, t, fire, skipped)
    return acted


def _what(t: ItemTimer) -> str:
    if t.kind is TimerKind.MILESTONE:
        return f"措施 {t.measure_seq} 节点 milestone {t.key} ({t.due_date}): {t.what[:100]}"
    return f"{t.period} 月度调度报告 monthly progress report (due {t.due_date})"


def _remind(b: _Builder, t: ItemTimer) -> None:
    event = "MILESTONE_REMINDER" if t.kind is TimerKind.MILESTONE else "REPORT_REMINDER"
    b.record(event, SYSTEM_ACTOR, reason=f"即将到期 due soon: {_what(t)}", notify=(Role.RESPONSIBLE_UNIT,),
             key=t.key, due_date=t.due_date.isoformat())


def _escalate(b: _Builder, t: ItemTimer, fire: TimerRung, skipped: list[str]) -> None:
    s = b.state
    pol = s.policy.followup
    lad = pol.milestone_ladder if t.kind is TimerKind.MILESTONE else pol.report_ladder
    event = "MILESTONE_ESCALATED" if t.kind is TimerKind.MILESTONE else "REPORT_ESCALATED"
    b.record(event, SYSTEM_ACTOR,
             reason=f"已逾期 overdue, {RUNG_LABELS_ZH[fire.rung]} ({fire.rung.value}): {_what(t)}",
             notify=tuple(lad.notify_roles), key=t.key, rung=fire.rung.value,
             due_date=t.due_date.isoformat(), skipped=skipped)


# ---------------------------------------------------------------- read side


def projection_fields(state: CaseState, now: datetime) -> FollowUpProjection | None:
    """What the case projection carries of the follow-up (migration 012)."""
    fu = state.followup
    if fu is None:
        return None
    rep = rp.status(state, now)
    open_ms = [t for t in fu.timers if t.kind is TimerKind.MILESTONE and _active(state, t)]
    return FollowUpProjection(
        report_due_date=date.fromisoformat(rep["due_date"]) if rep.get("due_date") else None,
        report_period=rep.get("period"),
        report_last_period=rep.get("last_period"),
        report_last_at=fu.last_report.at if fu.last_report else None,
        measures_open=len(ms.open_measures(state)),
        milestone_next_due=min((t.due_date for t in open_ms), default=None),
        milestones_overdue=sum(1 for t in open_ms if t.fired),
    )
