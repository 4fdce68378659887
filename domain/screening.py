"""Checks only the Update validator makes, on top of `decide.validate`: abuse limits.

These run in the workflow's validator and never in the handler, so that a history
recorded before a limit existed (or under a different policy) replays unchanged: the
SDK does not run validators on replay.

Updates delivered in the same workflow task are all validated before the first is
applied. So the validator also passes `pending`: the requests already accepted and not
yet applied (the workflow notes each one as its handler starts). They count against the
limits as if applied, and their request ids are taken: a burst of twenty objections, or
two users racing with one request id, gets exactly one through.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from domain.enums import Action
from domain.errors import DuplicateRequestError, RateLimitedError
from domain.model import ActionRequest, CaseState


def screen(state: CaseState, req: ActionRequest, now: datetime, pending: Sequence[ActionRequest] = ()) -> None:
    """Refuse what the abuse limits forbid, counting `pending` (accepted, not yet applied) requests.

    Raises:
        DuplicateRequestError: a pending request has this request id.
        RateLimitedError: saying which limit and when the person may try again.
    """
    if any(p.request_id == req.request_id for p in pending):
        raise DuplicateRequestError(f"request {req.request_id} is already being processed")
    if req.action is Action.OBJECT:
        _objection_limits(state, req, now, [p for p in pending if p.action is Action.OBJECT])


def _objection_limits(state: CaseState, req: ActionRequest, now: datetime, pending: list[ActionRequest]) -> None:
    if state.posting is None:
        return
    policy = state.policy
    me = req.actor.user_id
    mine = [(o.objection_id, o.at, o.ruling) for o in state.posting.objections if o.by == me]
    mine += [("(pending)", now, None) for p in pending if p.actor.user_id == me]
    open_mine = [m for m in mine if m[2] is None]
    if len(open_mine) >= policy.max_open_objections_per_person:
        ids = ", ".join(m[0] for m in open_mine)
        raise RateLimitedError(
            f"{req.actor.user_id} already has {len(open_mine)} open objection(s) on this posting ({ids}); "
            f"at most {policy.max_open_objections_per_person} per person until the office rules on them"
        )
    day_ago = now - timedelta(days=1)
    recent = sorted(at for _, at, _ in mine if at > day_ago)
    if len(recent) >= policy.max_objections_per_person_per_day:
        again = recent[-policy.max_objections_per_person_per_day] + timedelta(days=1)
        raise RateLimitedError(
            f"{req.actor.user_id} lodged {len(recent)} objections on this posting in the last 24 hours; "
            f"at most {policy.max_objections_per_person_per_day} a day (next possible at {again.isoformat()})"
        )
