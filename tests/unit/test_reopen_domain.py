"""Issue 14: the domain rules of reopening an archived case (domain/reopen.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.calendar import local_date
from domain.decide import on_wakeup
from domain.enums import Action, Stage
from domain.errors import (
    DuplicateRequestError,
    InvalidDeadlineError,
    InvalidTransitionError,
    MissingInputError,
    NotAuthorizedError,
)
from domain.reopen import (
    ArchivedReopen,
    decide_archived_reopen,
    parse_finding,
    reopen_allowed,
    validate_archived_reopen,
)
from tests.unit.factories import AUDITOR, LEAD, OFFICE, RU, drive_to, request


def archived():
    s, _ = drive_to(Stage.CLOSED)
    d = on_wakeup(s, s.archive_at)
    assert d is not None and d.state.stage is Stage.ARCHIVED
    return d.state


def reopen_req(actor=OFFICE, **kw):
    s = archived()
    now = s.archive_at + timedelta(days=400)
    kw.setdefault("new_due_date", local_date(now) + timedelta(days=30))
    return s, now, request(Action.REOPEN, actor, lookback_finding=parse_finding("REBOUND"), reason="问题反弹", **kw)


def test_office_reopens_an_archived_case_into_a_linked_new_cycle():
    s, now, req = reopen_req()
    d = decide_archived_reopen(s, ArchivedReopen(request=req, previous_run_id="run-1"), now)
    assert d.state.stage is Stage.RECTIFYING
    assert (d.state.cycle, d.state.reopen_count) == (s.cycle + 1, s.reopen_count + 1)
    assert d.state.archive_at is None and d.state.closed_at is None
    assert d.deadline_request is not None and d.deadline_request.fixed_date == req.new_due_date
    row = d.entries[0]
    assert (row.event, row.from_stage, row.to_stage, row.seq) == ("REOPEN", Stage.ARCHIVED, Stage.RECTIFYING, s.seq + 1)
    assert row.data["previous_run_id"] == "run-1" and row.data["archived_at"] is not None
    assert d.state.timeline[-1].from_stage is Stage.ARCHIVED
    assert s.stage is Stage.ARCHIVED  # the input state is untouched


@pytest.mark.parametrize("actor", [RU, LEAD, AUDITOR])
def test_only_the_office_may_reopen_an_archived_case(actor):
    s, now, req = reopen_req(actor)
    with pytest.raises(NotAuthorizedError):
        validate_archived_reopen(s, req, now)
    assert not reopen_allowed(s, actor) and reopen_allowed(s, OFFICE)


def test_refusals_name_what_is_wrong():
    s, now, req = reopen_req()
    with pytest.raises(InvalidDeadlineError):
        validate_archived_reopen(s, req.model_copy(update={"new_due_date": local_date(now)}), now)
    with pytest.raises(MissingInputError, match="REBOUND"):
        parse_finding("FOUND_NOTHING")
    with pytest.raises(InvalidTransitionError):
        validate_archived_reopen(s, req.model_copy(update={"action": Action.TRANSFER}), now)
    closed, _ = drive_to(Stage.CLOSED)
    with pytest.raises(InvalidTransitionError, match="not ARCHIVED"):
        validate_archived_reopen(closed, req, now)
    done = decide_archived_reopen(s, ArchivedReopen(request=req, previous_run_id="r"), now).state
    with pytest.raises((DuplicateRequestError, InvalidTransitionError)):
        validate_archived_reopen(done, req, now)
