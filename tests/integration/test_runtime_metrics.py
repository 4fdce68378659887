"""Issue 9's runtime gauges read from a real PostgreSQL (ops/metrics.py `read_figures`).

Blocked cases, the escalation watchdog's findings and pending escalation proposals are what an
operator alerts on; the worker's Prometheus endpoint publishes them (tests/deploy/
test_observability.py scrapes the names). The database is shared by the session's tests, so the
figures are compared before and after this test's own rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.testing import ActivityEnvironment

from activities.case_activities import CaseActivities
from domain import decide as d
from domain.enums import Rung, Stage
from ops.metrics import read_figures
from tests.unit.factories import drive_to, make_filing, wake
from workflows.contracts import RecordInput


def _case_no(tag: str) -> str:
    return f"M-{tag}-{uuid.uuid4().hex[:8]}"


def _with_pending_proposal(case_no: str):
    """A case walked up its ladder until the first PROPOSED rung (约谈) is pending."""
    s, _ = drive_to(Stage.RECTIFYING, filing=make_filing(case_no=case_no))
    for _ in range(10):
        if s.escalation.pending():
            return s
        at = d.next_wakeup(s)
        assert at is not None, "the ladder stopped before a proposal"
        s = wake(s, at)
    raise AssertionError("no proposal came due")


async def test_blocked_cases_watchdog_findings_and_pending_proposals_are_counted(pool: asyncpg.Pool) -> None:
    before = await read_figures(pool)
    now = datetime.now(UTC)

    # A pending proposal, as the record activity writes the case's projection.
    proposing = _with_pending_proposal(_case_no("proposal"))
    [p] = proposing.escalation.pending()
    assert p.rung is Rung.SUMMONS
    await ActivityEnvironment().run(CaseActivities(pool).record_case_events, RecordInput(
        entries=[], notices=[], projection=d.projection(proposing), workflow_run_id=f"run-{uuid.uuid4().hex[:8]}"))

    # Two blocks of one case (counted once), one resolved block of another case (not counted).
    blocked, resolved = _case_no("blocked"), _case_no("resolved")
    for case_no, n, resolved_at in ((blocked, 1, None), (blocked, 2, None), (resolved, 1, now)):
        await pool.execute(
            """INSERT INTO case_block (case_no, workflow_run_id, block_no, blocked_at, activity, error_type,
                   message, origin, resolved_at) VALUES ($1, $2, $3, $4, 'record_case_events',
                   'DataError', 'invalid byte sequence for encoding "UTF8": 0x00', 'CLOCK', $5)""",
            case_no, f"run-{case_no}", n, now, resolved_at)

    # One finding the watchdog made two minutes ago and has not seen heal, one healed.
    unhealed, healed = _case_no("late"), _case_no("healed")
    await pool.execute(
        """INSERT INTO watchdog_nudge (case_no, wake_at, what, detected_at, late_seconds, healed_at)
           VALUES ($1, $3, 'deadline', $4, 300, NULL), ($2, $3, 'deadline', $4, 300, $5)""",
        unhealed, healed, now - timedelta(minutes=7), now - timedelta(minutes=2), now)

    after = await read_figures(pool)
    assert after.blocked_cases - before.blocked_cases == 1
    assert after.nudges_unhealed - before.nudges_unhealed == 1
    assert after.nudges_healed - before.nudges_healed == 1
    assert after.oldest_unhealed_seconds >= 120
    assert after.proposals_pending - before.proposals_pending == 1
    # The proposal was made on the factories' clock (2025), so it is the oldest and over a year old.
    assert after.oldest_proposal_seconds >= (now - p.proposed_at).total_seconds() - 5
    assert after.oldest_proposal_seconds > 365 * 86400

    # Decided, blocks resolved and findings healed, they leave the gauges.
    await pool.execute("UPDATE case_block SET resolved_at = clock_timestamp() WHERE case_no = $1", blocked)
    await pool.execute("UPDATE watchdog_nudge SET healed_at = clock_timestamp() WHERE case_no = $1", unhealed)
    await pool.execute("DELETE FROM case_projection WHERE case_no = $1", proposing.case_no)
    last = await read_figures(pool)
    assert (last.blocked_cases, last.nudges_unhealed, last.proposals_pending) == (
        before.blocked_cases, before.nudges_unhealed, before.proposals_pending)
    assert last.nudges_healed - before.nudges_healed == 2
