"""Checks only the Update validator makes, on top of `decide.validate`: abuse limits.

These run in the workflow's validator and never in the handler, so that a history
recorded before a limit existed (or under a different policy) replays unchanged: the
SDK does not run validators on replay. The one gap this leaves: two Updates delivered
in the same workflow task are both validated before either is applied, so a burst can
exceed a limit by the size of the burst; the next request is refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.enums import Action
from domain.errors import RateLimitedError
from domain.model import ActionRequest, CaseState


def screen(state: CaseState, req: ActionRequest, now: datetime) -> None:
    """Refuse what the abuse limits forbid.

    Raises:
        RateLimitedError: saying which limit and when the person may try again.
    """
    if req.action is Action.OBJECT:
        _objection_limits(state, req, now)


def _objection_limits(state: CaseState, req: ActionRequest, now: datetime) -> None:
    if state.posting is None:
        return
    policy = state.policy
    mine = [o for o in state.posting.objections if o.by == req.actor.user_id]
    open_mine = [o for o in mine if o.ruling is None]
    if len(open_mine) >= policy.max_open_objections_per_person:
        ids = ", ".join(o.objection_id for o in open_mine)
        raise RateLimitedError(
            f"{req.actor.user_id} already has {len(open_mine)} open objection(s) on this posting ({ids}); "
            f"at most {policy.max_open_objections_per_person} per person until the office rules on them"
        )
    day_ago = now - timedelta(days=1)
    recent = sorted(o.at for o in mine if o.at > day_ago)
    if len(recent) >= policy.max_objections_per_person_per_day:
        again = recent[-policy.max_objections_per_person_per_day] + timedelta(days=1)
        raise RateLimitedError(
            f"{req.actor.user_id} lodged {len(recent)} objections on this posting in the last 24 hours; "
            f"at most {policy.max_objections_per_person_per_day} a day (next possible at {again.isoformat()})"
        )
