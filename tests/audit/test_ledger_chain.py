"""The hash-chained ledger on a real PostgreSQL: written by the record activity, checked by verify."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.case_activities import CaseActivities
from activities.migrate import MIGRATIONS_DIR, migrate
from audit.chain import GENESIS, ChainRow, chain_hashes, row_hash, verify_chain
from audit.verify import verify_case
from domain import decide as d
from domain.enums import Action
from domain.model import ActionRequest
from domain.policy import Policy
from tests.harness import OFFICE, RU, make_filing
from workflows.contracts import RecordInput

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def _inputs(case_no: str) -> list[RecordInput]:
    """Three record-activity inputs of one case, as the workflow would send them."""
    filed = d.new_case(make_filing(case_no, due=date(2027, 3, 31)), Policy(), T0, OFFICE)
    transferred = d.decide(filed.state, ActionRequest(action=Action.TRANSFER, actor=OFFICE, request_id="r-1"),
                           T0 + timedelta(minutes=5))
    acked = d.decide(transferred.state, ActionRequest(action=Action.ACKNOWLEDGE, actor=RU, request_id="r-2",
                                                      reason="已签收,立即整改"), T0 + timedelta(hours=2))
    progress = d.decide(acked.state, ActionRequest(action=Action.REPORT_PROGRESS, actor=RU, request_id="r-3",
                                                   reason="渗滤液收集设施已开工"), T0 + timedelta(days=3))
    return [
        RecordInput(entries=x.entries, notices=x.notices, projection=d.projection(x.state, with_filing=i == 0),
                    workflow_run_id="run-1")
        for i, x in enumerate((filed, transferred, acked, progress))
    ]


async def _write(pool: asyncpg.Pool, inputs: list[RecordInput]) -> None:
    acts = CaseActivities(pool)
    for inp in inputs:
        await ActivityEnvironment().run(acts.record_case_events, inp)


async def _rows(pool: asyncpg.Pool, case_no: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM ledger WHERE case_no = $1 ORDER BY seq", case_no)


async def _as_superuser(pool: asyncpg.Pool, sql: str, *args) -> None:
    """Tamper like a DBA would: bypass the append-only trigger (and FKs) for one statement."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


def test_the_canonical_form_is_the_same_from_an_entry_and_from_a_stored_row() -> None:
    """A LedgerEntry and the row PostgreSQL gives back (jsonb text, UTC time) hash alike."""
    inp = _inputs("CHAIN-UNIT")[1]
    e = inp.entries[0]
    stored = {
        "case_no": e.case_no, "seq": e.seq, "event": e.event, "actor_user": e.actor.user_id,
        "actor_role": e.actor.role.value, "actor_unit": e.actor.unit, "at": e.at.astimezone(UTC),
        "from_stage": e.from_stage.value, "to_stage": e.to_stage.value, "reason": e.reason,
        "request_id": e.request_id, "data": json.dumps(e.data, ensure_ascii=False, indent=1),
        "workflow_run_id": "run-1",
    }
    prev = "a" * 64
    assert row_hash(ChainRow.from_entry(e, "run-1"), prev) == row_hash(ChainRow.from_record(stored), prev)
    changed = dict(stored, reason="改过的理由")
    assert row_hash(ChainRow.from_record(changed), prev) != row_hash(ChainRow.from_record(stored), prev)


async def test_rows_are_chained_and_a_retry_writes_the_same_hashes(pool: asyncpg.Pool) -> None:
    """Each row names its predecessor's hash; re-running the activity (a retry) changes nothing."""
    case_no = f"CH-{uuid.uuid4().hex[:8]}"
    inputs = _inputs(case_no)
    await _write(pool, inputs)
    rows = await _rows(pool, case_no)
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["prev_hash"] == GENESIS
    for a, b in zip(rows, rows[1:], strict=False):
        assert b["prev_hash"] == a["row_hash"]
    expected = chain_hashes([ChainRow.from_entry(e, "run-1") for inp in inputs for e in inp.entries])
    assert [(r["prev_hash"], r["row_hash"]) for r in rows] == expected
    await _write(pool, inputs[1:])  # retried after a crash
    assert [(r["prev_hash"], r["row_hash"]) for r in await _rows(pool, case_no)] == expected
    report = verify_chain(case_no, list(rows))
    assert report.ok and report.rows == len(rows) and report.legacy_rows == 0


async def test_an_edited_row_is_reported_with_its_case_and_seq(pool: asyncpg.Pool) -> None:
    case_no = f"CH-{uuid.uuid4().hex[:8]}"
    await _write(pool, _inputs(case_no))
    await _as_superuser(pool, "UPDATE ledger SET reason = '未签收' WHERE case_no = $1 AND seq = 3", case_no)
    v = await verify_case(pool, None, case_no, with_history=False)
    assert [(f.seq, f.kind) for f in v.findings] == [(3, "CONTENT_CHANGED")]
    assert case_no in str(v.findings[0]) and "seq 3" in str(v.findings[0])


async def test_an_edit_that_also_rewrites_the_row_hash_breaks_the_next_link(pool: asyncpg.Pool) -> None:
    """Recomputing the edited row's own hash is not enough: the next row still names the old one."""
    case_no = f"CH-{uuid.uuid4().hex[:8]}"
    await _write(pool, _inputs(case_no))
    rows = await _rows(pool, case_no)
    forged = dict(rows[1])
    forged["actor_user"] = "someone-else"
    new_hash = row_hash(ChainRow.from_record(forged), rows[1]["prev_hash"])
    await _as_superuser(pool, "UPDATE ledger SET actor_user = 'someone-else', row_hash = $2 "
                              "WHERE case_no = $1 AND seq = 2", case_no, new_hash)
    v = await verify_case(pool, None, case_no, with_history=False)
    assert [(f.seq, f.kind) for f in v.findings] == [(3, "PREV_HASH_MISMATCH")]


async def test_deleted_rows_are_reported_in_the_middle_and_at_the_end(pool: asyncpg.Pool) -> None:
    case_no = f"CH-{uuid.uuid4().hex[:8]}"
    await _write(pool, _inputs(case_no))
    last = len(await _rows(pool, case_no))
    await _as_superuser(pool, "DELETE FROM ledger WHERE case_no = $1 AND seq = 2", case_no)
    await _as_superuser(pool, "DELETE FROM ledger WHERE case_no = $1 AND seq = $2", case_no, last)
    v = await verify_case(pool, None, case_no, with_history=False)
    assert [(f.seq, f.kind) for f in v.findings] == [(2, "MISSING_ROW"), (last, "MISSING_ROW")]
    assert "last row is seq" in v.findings[1].detail


async def test_a_row_inserted_by_hand_without_a_hash_is_refused(pool: asyncpg.Pool) -> None:
    case_no = f"CH-{uuid.uuid4().hex[:8]}"
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "INSERT INTO ledger (case_no, seq, event, actor_user, actor_role, at) "
            "VALUES ($1, 1, 'FILED', 'x', 'RECTIFICATION_OFFICE', now())", case_no)


async def test_rows_written_before_the_chain_are_covered_from_the_first_chained_row(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    """An engine upgraded with ledger rows in place: 002 leaves them unhashed ("legacy"),
    the first row written afterwards chains onto a hash computed over all of them."""
    db = f"legacy_{uuid.uuid4().hex[:8]}"
    await pool.execute(f'CREATE DATABASE "{db}"')
    url = database_url.rsplit("/", 1)[0] + f"/{db}"
    only_001 = tmp_path / "sql"
    only_001.mkdir()
    shutil.copy(MIGRATIONS_DIR / "001_init.sql", only_001)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn, only_001)
        case_no = "LEGACY-1"
        inputs = _inputs(case_no)
        legacy = [e for inp in inputs[:2] for e in inp.entries]
        for e in legacy:  # what the engine wrote before 002
            await conn.execute(
                "INSERT INTO ledger (case_no, seq, event, actor_user, actor_role, actor_unit, at, from_stage, "
                "to_stage, reason, request_id, data, workflow_run_id) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12::jsonb,$13)",
                e.case_no, e.seq, e.event, e.actor.user_id, e.actor.role.value, e.actor.unit, e.at,
                e.from_stage.value if e.from_stage else None, e.to_stage.value if e.to_stage else None,
                e.reason, e.request_id, json.dumps(e.data, ensure_ascii=False), "run-1")
        assert (await migrate(conn))[0] == "002_audit.sql"  # and any later migrations
    finally:
        await conn.close()
    p2 = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        await _write(p2, inputs[2:])
        rows = await _rows(p2, case_no)
        assert [r["row_hash"] is None for r in rows] == [True] * len(legacy) + [False] * (len(rows) - len(legacy))
        first_chained = rows[len(legacy)]
        assert first_chained["prev_hash"] == chain_hashes([ChainRow.from_record(r) for r in rows[:len(legacy)]])[-1][1]
        v = await verify_case(p2, None, case_no, with_history=False)
        assert v.ok and v.legacy_rows == len(legacy)
        # A DBA edits a legacy row (dropping the constraint that refuses unchained rows first).
        await p2.execute("ALTER TABLE ledger DROP CONSTRAINT ledger_row_chained")
        await _as_superuser(p2, "UPDATE ledger SET reason = 'x' WHERE case_no = $1 AND seq = 1", case_no)
        v = await verify_case(p2, None, case_no, with_history=False)
        assert [(f.seq, f.kind) for f in v.findings] == [(len(legacy) + 1, "PREV_HASH_MISMATCH")]
    finally:
        await p2.close()
        await pool.execute(f'DROP DATABASE "{db}" WITH (FORCE)')


async def test_the_auditor_role_reads_and_verifies_but_cannot_write(pool: asyncpg.Pool, database_url: str) -> None:
    """deploy/sql/roles/audit_roles.sql: SELECT only, sessions read-only; verify works under it."""
    sql = (MIGRATIONS_DIR / "roles" / "audit_roles.sql").read_text(encoding="utf-8")
    await pool.execute(sql)
    await pool.execute(sql)  # idempotent
    login = f"auditor_{uuid.uuid4().hex[:8]}"
    await pool.execute(f'CREATE ROLE "{login}" LOGIN IN ROLE case_auditor')
    await pool.execute(f'ALTER ROLE "{login}" SET default_transaction_read_only = on')
    case_no = f"CH-{uuid.uuid4().hex[:8]}"
    await _write(pool, _inputs(case_no))
    conn = await asyncpg.connect(database_url, user=login)
    try:
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
        assert await conn.fetchval("SELECT count(*) FROM ledger WHERE case_no = $1", case_no) == 4
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("INSERT INTO history_archive (run_id) VALUES ('x')")
        await conn.execute("SET default_transaction_read_only = off")  # even then: no privilege
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM ledger WHERE case_no = $1", case_no)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM unit_directory")
    finally:
        await conn.close()
    auditor_pool = await asyncpg.create_pool(database_url, user=login, min_size=1, max_size=2)
    try:
        v = await verify_case(auditor_pool, None, case_no, with_history=False)
        assert v.ok and v.rows == 4
    finally:
        await auditor_pool.close()
