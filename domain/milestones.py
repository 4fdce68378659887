"""Measures and their dated milestones (整改措施及节点), issue 13.

* Each dated milestone of an open measure is a small deadline: reminded before its date and
  escalated after it (domain/followup.py runs the timers; the ladder is policy data,
  `Policy.followup.milestone_ladder`). A measure marked done (COMPLETE_MEASURE, with its
  evidence, 佐证材料) stops its milestones.
* 验收 (VERIFY_PASS) is refused while any measure is open or was marked done without evidence:
  the seeds check measure by measure ("各项措施落实到位" 000:301, "逐条措施核查" 003:38).

Recurring milestones (QUARTERLY, ANNUAL) are shown but not timed.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from domain.enums import Action
from domain.errors import InvalidTransitionError, MissingInputError
from domain.followup_model import ScheduleItem, TimerKind
from domain.model import ActionRequest, CaseState, Measure

if TYPE_CHECKING:  # pragma: no cover
    from domain.decide import _Builder


def key(measure_seq: int, index: int) -> str:
    """The timer key of the `index`-th (1-based) milestone of a measure."""
    return f"M{measure_seq}.{index}"


def done_with_evidence(state: CaseState, seq: int) -> bool:
    fu = state.followup
    if fu is None:
        return seq in state.measures_done
    return seq in state.measures_done and bool(fu.measure_evidence.get(seq))


def open_measures(state: CaseState) -> list[Measure]:
    """Measures not yet done with evidence, in plan order."""
    return [m for m in state.filing.measures if not done_with_evidence(state, m.seq)]


def wanted(state: CaseState, today: date) -> list[ScheduleItem]:
    """Milestone timers this case should have now (dated milestones of open measures)."""
    fu, pol = state.followup, state.policy.followup
    if fu is None or not pol.milestones_timed or state.stage not in pol.milestone_stages:
        return []
    if state.fanout is not None:
        return []  # a fanned-out parent's measures are carried out (and timed) by its children
    items = []
    for m in open_measures(state):
        for i, ms in enumerate(m.milestones, start=1):
            if ms.due_date is None:
                continue
            floor = today if pol.rebase_overdue and ms.due_date < today else None
            items.append(ScheduleItem(
                key=key(m.seq, i), kind=TimerKind.MILESTONE, measure_seq=m.seq,
                what=ms.what or m.text[:200], due_date=ms.due_date, ladder=pol.milestone_ladder,
                ladder_floor=floor,
            ))
    return items


def active(state: CaseState, measure_seq: int | None) -> bool:
    pol = state.policy.followup
    return (pol.milestones_timed and state.stage in pol.milestone_stages and measure_seq is not None
            and not done_with_evidence(state, measure_seq))


# ---------------------------------------------------------------- actions


def check_action(state: CaseState, req: ActionRequest) -> None:
    """The follow-up rules' checks of an action (only for cases under them).

    Raises:
        MissingInputError: COMPLETE_MEASURE without evidence.
        InvalidTransitionError: 验收 (or, by policy, 申报完成) while measures are open.
    """
    if state.followup is None:
        return
    pol = state.policy.followup
    if req.action is Action.COMPLETE_MEASURE:
        if not [r for r in req.evidence if r.strip()]:
            raise MissingInputError(
                f"COMPLETE_MEASURE of measure {req.measure_seq} needs evidence (佐证材料): at least one "
                "evidence reference (an uploaded file evidence:sha256:… or a document reference)"
            )
    elif state.fanout is not None:
        return  # a parent's measures were checked one by one on each child's own 验收
    elif (req.action is Action.VERIFY_PASS and pol.verify_requires_measures_done) or (
        req.action is Action.SUBMIT_COMPLETION and pol.submit_requires_measures_done
    ):
        if still_open := open_measures(state):
            names = "; ".join(f"{m.seq}. {_short(m.text)}" + _why(state, m.seq) for m in still_open)
            what = "验收 VERIFY_PASS" if req.action is Action.VERIFY_PASS else "申报完成 SUBMIT_COMPLETION"
            raise InvalidTransitionError(
                f"{what} refused: case {state.case_no} has {len(still_open)} open measure(s) "
                f"(措施未落实到位): {names}. Each measure must be marked done (COMPLETE_MEASURE) with its "
                "evidence first (各项措施落实到位 000:301; 逐条措施核查 003:38)"
            )


def already_done(state: CaseState, seq: int | None) -> bool:
    """Whether COMPLETE_MEASURE of `seq` would do nothing (done, with evidence under the new rules)."""
    return seq is not None and done_with_evidence(state, seq)


def on_measure_done(b: _Builder, req: ActionRequest) -> dict:
    """COMPLETE_MEASURE under the follow-up rules: keep the evidence, stop the milestones.

    Returns what the ledger row adds (the milestone timers it stopped).
    """
    s = b.state
    fu = s.followup
    if fu is None or req.measure_seq is None:
        return {}
    fu.measure_evidence[req.measure_seq] = list(req.evidence)
    stopped = []
    for t in fu.timers:
        if t.kind is TimerKind.MILESTONE and t.measure_seq == req.measure_seq and t.stopped is None:
            t.stopped = "MEASURE_DONE"
            stopped.append(t.key)
    return {"milestones_stopped": stopped} if stopped else {}


def measures_view(state: CaseState) -> list[dict]:
    """Measures with their milestones, status and evidence, for the case page and casectl."""
    fu = state.followup
    out = []
    for m in state.filing.measures:
        done = m.seq in state.measures_done
        evidence = list(fu.measure_evidence.get(m.seq, [])) if fu else []
        ms = []
        for i, mi in enumerate(m.milestones, start=1):
            t = fu.timer(key(m.seq, i)) if fu else None
            ms.append({
                "key": key(m.seq, i), "due_date": mi.due_date.isoformat() if mi.due_date else None,
                "recurrence": mi.recurrence, "what": mi.what,
                "remind_date": t.remind_date.isoformat() if t and t.remind_date else None,
                "status": _milestone_status(state, m.seq, t, done),
                "rungs_fired": [r.value for r in t.fired] if t else [],
            })
        out.append({"seq": m.seq, "text": m.text, "done": done, "evidence": evidence,
                    "done_with_evidence": done_with_evidence(state, m.seq), "milestones": ms})
    return out


def _milestone_status(state: CaseState, seq: int, t, done: bool) -> str:
    if done:
        return "DONE"
    if t is None:
        return "NOT_TIMED"
    if t.fired:
        return "ESCALATED"
    if t.reminded:
        return "REMINDED"
    return "SCHEDULED" if active(state, seq) else "PAUSED"


MILESTONE_STATUS_ZH = {
    "DONE": "已完成 Done", "NOT_TIMED": "未计时 Not timed", "ESCALATED": "已逾期督办 Escalated",
    "REMINDED": "已提醒 Reminded", "SCHEDULED": "计时中 Scheduled", "PAUSED": "暂停 Paused",
}


def _short(text: str) -> str:
    one = " ".join(text.split())
    return one if len(one) <= 40 else one[:40] + "…"


def _why(state: CaseState, seq: int) -> str:
    return " (done without evidence 无佐证材料)" if seq in state.measures_done else ""
