"""The monthly progress report of an open case (月度调度报告, 一月一调度一督办 000:427), issue 13.

While a case is in a reporting stage (policy `followup.report_stages`: 整改中 and 长期坚持 by
default) its responsible units report progress (REPORT_PROGRESS) every month. A report covers
the month it is submitted in (Asia/Shanghai) and every earlier month. The report of month M is
due on `report_day_of_month` of M; a missing report is a small deadline (domain/followup.py):
reminded before that day, escalated after it by `followup.report_ladder`. This is also what
keeps 持续推进 / 立行立改 cases, which have no stage deadline, moving.

The timer always runs for the earliest month not yet covered: a unit that stops reporting is
escalated for that month up the ladder, and the next month is timed once it reports.
"""

from __future__ import annotations

import calendar as _stdcal
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from domain.calendar import local_date
from domain.followup_model import ProgressReport, ScheduleItem, TimerKind
from domain.model import ActionRequest, CaseState

if TYPE_CHECKING:  # pragma: no cover
    from domain.decide import _Builder

MAX_REPORTS_KEPT = 24


def period_of(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def next_period(period: str) -> str:
    y, m = (int(x) for x in period.split("-"))
    return f"{y + (m == 12):04d}-{m % 12 + 1:02d}"


def report_day(period: str, day_of_month: int) -> date:
    """The nominal report day of a month (clamped to its length)."""
    y, m = (int(x) for x in period.split("-"))
    return date(y, m, min(day_of_month, _stdcal.monthrange(y, m)[1]))


def key(period: str) -> str:
    return f"R{period}"


def in_reporting_stage(state: CaseState) -> bool:
    pol = state.policy.followup
    return pol.monthly_report and state.stage in pol.report_stages


def first_period(state: CaseState) -> str | None:
    """The first month owed in the current reporting stage: the first report day at least
    `report_grace_days` after the stage was entered (or the case came under these rules)."""
    fu, pol = state.followup, state.policy.followup
    if fu is None:
        return None
    start = local_date(state.stage_entered_at)
    if fu.since is not None and fu.since > start:
        start = fu.since
    p = period_of(start)
    if report_day(p, pol.report_day_of_month) - start < timedelta(days=pol.report_grace_days):
        p = next_period(p)
    return p


def current_period(state: CaseState) -> str | None:
    """The month whose report is awaited: the earliest not covered (None: no reporting)."""
    fu = state.followup
    first = first_period(state)
    if fu is None or first is None:
        return None
    last = fu.last_report
    if last is not None and last.period >= first:
        return next_period(last.period)
    return first


def wanted(state: CaseState, today: date) -> list[ScheduleItem]:
    """The report timer this case should have now (at most one)."""
    fu, pol = state.followup, state.policy.followup
    if fu is None or not in_reporting_stage(state) or state.fanout is not None:
        return []  # a fanned-out parent reports through its children, each owing its own report
    period = current_period(state)
    assert period is not None
    due = report_day(period, pol.report_day_of_month)
    floor = today if pol.rebase_overdue and due < today else None
    return [ScheduleItem(
        key=key(period), kind=TimerKind.REPORT, period=period, what=f"{period} 月度调度报告 monthly progress report",
        due_date=due, roll_to_working_day=True, ladder=pol.report_ladder, ladder_floor=floor,
    )]


def active(state: CaseState, period: str | None) -> bool:
    return in_reporting_stage(state) and period is not None and period == current_period(state)


def on_report(b: _Builder, req: ActionRequest) -> dict[str, Any]:
    """REPORT_PROGRESS under the follow-up rules: the months it covers; stops their timers.

    Returns what the ledger row adds (the period covered, the timers stopped).
    """
    s = b.state
    fu = s.followup
    if fu is None:
        return {}
    period = period_of(local_date(b.now))
    stopped = []
    for t in fu.timers:
        if t.kind is TimerKind.REPORT and t.stopped is None and t.period is not None and t.period <= period:
            t.stopped = "REPORTED"
            stopped.append(t.key)
    fu.reports.append(ProgressReport(period=period, at=b.now, by=req.actor.user_id, unit=req.actor.unit,
                                     seq=s.seq + 1))
    del fu.reports[:-MAX_REPORTS_KEPT]
    return {"report_period": period, "report_timers_stopped": stopped}


def status(state: CaseState, now: datetime) -> dict[str, Any]:
    """The monthly report's status for the case page, casectl and the projection."""
    fu = state.followup
    if fu is None:
        return {"timed": False}
    period = current_period(state) if in_reporting_stage(state) else None
    t = fu.timer(key(period)) if period else None
    last = fu.last_report
    this_month = period_of(local_date(now))
    return {
        "timed": period is not None,
        "period": period,
        "due_date": t.due_date.isoformat() if t else None,
        "remind_date": t.remind_date.isoformat() if t and t.remind_date else None,
        "rungs_fired": [r.value for r in t.fired] if t else [],
        "last_period": last.period if last else None,
        "last_at": last.at.isoformat() if last else None,
        "this_month_in": bool(last and last.period >= this_month),
    }
