"""Pure rules of issue 9's runtime half: who may UNBLOCK, clean error text, missed wake-ups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from domain.blocking import BlockedStep, UnblockMode, UnblockRequest, authorize_unblock, clean_message
from domain.decide import next_wakeup
from domain.enums import Action, Stage
from domain.errors import InvalidTransitionError, MissingInputError, NotAuthorizedError
from domain.watchdog import Wakeup, expected_wakeup, missed_wakeup
from tests.unit.factories import NOW, OFFICE, RU, act, drive_to

BLOCKED = BlockedStep(at=NOW, activity="record_case_events", error_type="PermanentDataError",
                      message="invalid byte sequence", origin="TRANSFER by office-1")


def _req(actor=OFFICE, reason="DBA fixed the column", mode=UnblockMode.RETRY) -> UnblockRequest:  # type: ignore[no-untyped-def]
    return UnblockRequest(actor=actor, request_id="u-1", reason=reason, mode=mode)


def test_only_the_office_unblocks_a_blocked_case_with_a_reason() -> None:
    authorize_unblock(BLOCKED, _req())
    with pytest.raises(NotAuthorizedError):
        authorize_unblock(BLOCKED, _req(actor=RU))
    with pytest.raises(MissingInputError):
        authorize_unblock(BLOCKED, _req(reason="  "))
    with pytest.raises(InvalidTransitionError):
        authorize_unblock(None, _req())


@pytest.mark.parametrize(("field", "value"), [
    ("reason", "fixed\x00"), ("reason", "fixed\x1b[2J"), ("reason", "x" * 5000), ("request_id", "u-1\x00"),
    ("request_id", "u" * 129)])
def test_an_unblock_request_with_text_the_ledger_refuses_is_refused_naming_the_field(field: str, value: str) -> None:
    """The UNBLOCK's reason goes into the ledger: a NUL there would block the case again."""
    fields = {"actor": OFFICE, "request_id": "u-1", "reason": "DBA fixed the column", field: value}
    with pytest.raises(ValidationError) as e:
        UnblockRequest(**fields)
    assert e.value.errors()[0]["loc"] == (field,)


def test_clean_message_escapes_control_characters_and_bounds_length() -> None:
    assert clean_message("a\x00b\x1fc\nd") == "a\\x00b\\x1fc\nd"
    assert len(clean_message("x" * 5000, limit=100)) == 100


def test_the_watchdog_expects_the_same_wake_up_as_the_workflow() -> None:
    state, now = drive_to(Stage.TRANSFERRED)
    wake = expected_wakeup(state.stage, state.deadline, state.escalation.level, state.suspension is not None,
                           state.model_dump(mode="json", include={"posting", "archive_at"}))
    assert wake is not None and wake.at == next_wakeup(state) and wake.what.startswith("RUNG ")
    grace = timedelta(minutes=5)
    assert missed_wakeup(wake, state.timeline[-1].at, wake.at + grace / 2, grace) is None  # within grace
    late = missed_wakeup(wake, state.timeline[-1].at, wake.at + grace * 2, grace)
    assert late == grace * 2
    assert missed_wakeup(wake, wake.at + timedelta(seconds=1), wake.at + grace * 2, grace) is None  # it happened


def test_a_suspended_or_archived_case_expects_no_wake_up() -> None:
    state, _ = drive_to(Stage.RECTIFYING)
    suspended = act(state, Action.SUSPEND, OFFICE, reason="汛期")
    assert expected_wakeup(suspended.stage, suspended.deadline, 0, True, {}) is None
    assert expected_wakeup(Stage.ARCHIVED, None, 0, False, {}) is None
    assert missed_wakeup(None, None, NOW, timedelta(0)) is None
    assert Wakeup(NOW, "ARCHIVE") == expected_wakeup(Stage.CLOSED, None, 0, False, {"archive_at": NOW.isoformat()})
