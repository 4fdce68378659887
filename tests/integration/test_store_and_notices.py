"""Activities against a real PostgreSQL: idempotent ledger writes and once-only notice delivery."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime
from email import message_from_bytes as _parse
from email.policy import default as _default_policy

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from temporalio.testing import ActivityEnvironment

from activities.case_activities import CaseActivities
from activities.migrate import MigrationError, migrate
from activities.notices import NoticeSender, SmtpConfig, message_id
from domain import decide as d
from domain.enums import Action, Stage
from domain.model import ActionRequest
from domain.policy import Policy
from embedded import find_free_port
from tests.harness import OFFICE, make_filing
from workflows.contracts import RecordInput


def message_from_bytes(raw: bytes):
    return _parse(raw, policy=_default_policy)  # decodes the UTF-8 X-Notice-Key header


def _record_input(case_no: str | None = None) -> RecordInput:
    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    filed = d.new_case(make_filing(case_no, due=date(2027, 3, 31)), Policy(), now, OFFICE)
    req = ActionRequest(action=Action.TRANSFER, actor=OFFICE, request_id="r-1")
    transferred = d.decide(filed.state, req, now)
    return RecordInput(
        entries=filed.entries + transferred.entries,
        notices=transferred.notices,
        projection=d.projection(transferred.state),
        workflow_run_id="run-1",
    )


class _Inbox:
    """aiosmtpd handler that keeps what it received."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp_server():
    handler = _Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=find_free_port())
    controller.start()
    yield controller, handler
    controller.stop()


async def test_a_retried_record_activity_writes_each_row_once(pool: asyncpg.Pool) -> None:
    """Running record_case_events twice (a retry after a crash) leaves one ledger row per seq."""
    acts = CaseActivities(pool)
    inp = _record_input()
    env = ActivityEnvironment()
    first = await env.run(acts.record_case_events, inp)
    second = await env.run(acts.record_case_events, inp)
    case_no = inp.projection.case_no
    assert first == len(inp.entries) and second == 0
    assert await pool.fetchval("SELECT count(*) FROM ledger WHERE case_no = $1", case_no) == len(inp.entries)
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE case_no = $1", case_no) == len(inp.notices)
    assert await pool.fetchval("SELECT count(*) FROM case_projection WHERE case_no = $1", case_no) == 1


async def test_an_older_projection_never_overwrites_a_newer_one(pool: asyncpg.Pool) -> None:
    """A late retry of an earlier write does not roll the projection back."""
    acts = CaseActivities(pool)
    inp = _record_input()
    await ActivityEnvironment().run(acts.record_case_events, inp)
    stale = inp.model_copy(update={"projection": inp.projection.model_copy(update={"last_seq": 1, "stage": Stage.REGISTERED})})
    await ActivityEnvironment().run(acts.record_case_events, stale)
    row = await pool.fetchrow("SELECT stage, last_seq FROM case_projection WHERE case_no = $1", inp.projection.case_no)
    assert (row["stage"], row["last_seq"]) == ("TRANSFERRED", inp.projection.last_seq)


async def test_the_ledger_refuses_updates_and_deletes(pool: asyncpg.Pool) -> None:
    """The ledger is append-only at the database level."""
    inp = _record_input()
    await ActivityEnvironment().run(CaseActivities(pool).record_case_events, inp)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE ledger SET reason = 'edited' WHERE case_no = $1", inp.projection.case_no)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM ledger WHERE case_no = $1", inp.projection.case_no)


async def test_notices_are_delivered_once_by_email_and_inbox(pool: asyncpg.Pool, smtp_server) -> None:
    """Each outbox notice reaches the inbox and the SMTP server once, with its key as Message-ID."""
    controller, received = smtp_server
    inp = _record_input()
    await ActivityEnvironment().run(CaseActivities(pool).record_case_events, inp)
    for n in inp.notices:
        await pool.execute(
            "INSERT INTO unit_directory (unit, email) VALUES ($1, $2) ON CONFLICT (unit) DO UPDATE SET email = $2",
            n.recipient_unit, f"unit-{uuid.uuid4().hex[:6]}@example.org",
        )
    sender = NoticeSender(pool, SmtpConfig(host="127.0.0.1", port=controller.port, domain="test.local"))
    await sender.drain()
    await sender.drain()  # nothing left: a second pass sends nothing
    keys = {n.key for n in inp.notices}
    mine = [m for m in (message_from_bytes(b) for b in received.messages) if m["X-Notice-Key"] in keys]
    assert sorted(m["X-Notice-Key"] for m in mine) == sorted(keys)
    assert {m["Message-ID"] for m in mine} == {message_id(k, "test.local") for k in keys}
    rows = await pool.fetch("SELECT * FROM outbox WHERE notice_key = ANY($1::text[])", list(keys))
    assert all(r["status"] == "DELIVERED" and r["email_sent_at"] and r["inbox_at"] for r in rows)
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE notice_key = ANY($1::text[])", list(keys)) == len(keys)


async def test_a_failing_smtp_server_delays_but_never_loses_a_notice(pool: asyncpg.Pool, smtp_server) -> None:
    """With SMTP down the notice stays pending (inbox written); once SMTP is back it goes out once."""
    controller, received = smtp_server
    inp = _record_input()
    await ActivityEnvironment().run(CaseActivities(pool).record_case_events, inp)
    notice = inp.notices[0]
    await pool.execute(
        "INSERT INTO unit_directory (unit, email) VALUES ($1, 'x@example.org') ON CONFLICT (unit) DO UPDATE SET email = 'x@example.org'",
        notice.recipient_unit,
    )
    dead = NoticeSender(pool, SmtpConfig(host="127.0.0.1", port=find_free_port()))
    while await dead.deliver_one():
        pass
    row = await pool.fetchrow("SELECT * FROM outbox WHERE notice_key = $1", notice.key)
    assert row["status"] == "PENDING" and row["attempts"] == 1 and row["last_error"]
    assert row["inbox_at"] is not None
    await pool.execute("UPDATE outbox SET next_attempt_at = clock_timestamp() WHERE notice_key = $1", notice.key)
    live = NoticeSender(pool, SmtpConfig(host="127.0.0.1", port=controller.port))
    await live.drain()
    await live.drain()
    sent = [m for m in (message_from_bytes(b) for b in received.messages) if m["X-Notice-Key"] == notice.key]
    assert len(sent) == 1
    assert await pool.fetchval("SELECT status FROM outbox WHERE notice_key = $1", notice.key) == "DELIVERED"


async def test_two_senders_never_deliver_the_same_notice_twice(pool: asyncpg.Pool, smtp_server) -> None:
    """Concurrent senders claim rows with SKIP LOCKED: each notice is e-mailed once."""
    controller, received = smtp_server
    inputs = [_record_input() for _ in range(5)]
    acts = CaseActivities(pool)
    keys = set()
    for inp in inputs:
        await ActivityEnvironment().run(acts.record_case_events, inp)
        for n in inp.notices:
            keys.add(n.key)
            await pool.execute(
                "INSERT INTO unit_directory (unit, email) VALUES ($1, 'y@example.org') ON CONFLICT (unit) DO UPDATE SET email = 'y@example.org'",
                n.recipient_unit,
            )
    cfg = SmtpConfig(host="127.0.0.1", port=controller.port)
    await asyncio.gather(NoticeSender(pool, cfg).drain(), NoticeSender(pool, cfg).drain())
    sent = [message_from_bytes(b)["X-Notice-Key"] for b in received.messages]
    mine = [k for k in sent if k in keys]
    assert sorted(mine) == sorted(keys)


async def test_migrations_are_recorded_and_an_edited_migration_is_refused(
    database_url: str, tmp_path
) -> None:
    """Re-running migrations applies nothing; a changed, already-applied file is refused by name."""
    conn = await asyncpg.connect(database_url)
    try:
        assert await migrate(conn) == []
        versions = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert versions[0]["name"] == "001_init.sql"
        edited = tmp_path / "sql"
        edited.mkdir()
        (edited / "001_init.sql").write_text("SELECT 1;")
        with pytest.raises(MigrationError, match="001_init.sql was edited"):
            await migrate(conn, edited)
    finally:
        await conn.close()


async def test_a_projection_without_the_filing_keeps_the_stored_one(pool: asyncpg.Pool) -> None:
    """Later writes omit the unchanged filing (smaller histories); the stored filing stays."""
    inp = _record_input()
    await ActivityEnvironment().run(CaseActivities(pool).record_case_events, inp)
    later = inp.model_copy(update={
        "entries": [],
        "projection": inp.projection.model_copy(update={"filing": None, "last_seq": inp.projection.last_seq + 1}),
    })
    await ActivityEnvironment().run(CaseActivities(pool).record_case_events, later)
    row = await pool.fetchrow("SELECT filing, last_seq FROM case_projection WHERE case_no = $1", inp.projection.case_no)
    assert json.loads(row["filing"])["case_no"] == inp.projection.case_no
    assert row["last_seq"] == inp.projection.last_seq + 1
