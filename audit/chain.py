"""The ledger hash chain: one canonical form of a ledger row, and its hash.

Every row of a case carries `prev_hash` (the `row_hash` of the row with seq - 1,
or GENESIS for seq 1) and `row_hash = sha256(canonical(row, prev_hash))`.
The canonical form covers exactly what the workflow decided and the history
holds: case_no, seq, event, actor, at, stages, reason, request_id, data and the
run id. `recorded_at` is the database clock at insert time: no retry of the
activity can reproduce it and no history holds it, so it is NOT covered.

The same function hashes a row written by the activity (a `LedgerEntry`), a
row read back from PostgreSQL and an entry decoded from a workflow history,
so each of the three can be checked against the others. Pure Python, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CHAIN_VERSION = 1
GENESIS = "0" * 64  # prev_hash of a case's first row

# The columns the chain covers, in canonical order (documentation; the JSON keys are sorted).
COVERED = (
    "case_no", "seq", "event", "actor_user", "actor_role", "actor_unit", "at",
    "from_stage", "to_stage", "reason", "request_id", "data", "workflow_run_id",
)


def _ts(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"ledger time {at!r} has no time zone")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_data(data: Any) -> Any:
    """`data` as the JSON PostgreSQL stores: the activity writes json.dumps(data, default=str)."""
    if isinstance(data, str):  # jsonb read back as text
        return json.loads(data)
    return json.loads(json.dumps(data, ensure_ascii=False, default=str))


@dataclass(frozen=True)
class ChainRow:
    """The covered content of one ledger row, whatever it was read from."""

    case_no: str
    seq: int
    event: str
    actor_user: str
    actor_role: str
    actor_unit: str
    at: datetime
    from_stage: str | None
    to_stage: str | None
    reason: str
    request_id: str | None
    data: Any
    workflow_run_id: str

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> ChainRow:
        """From a `ledger` row (asyncpg Record or dict)."""
        return cls(
            case_no=r["case_no"], seq=int(r["seq"]), event=r["event"], actor_user=r["actor_user"],
            actor_role=r["actor_role"], actor_unit=r["actor_unit"] or "", at=r["at"],
            from_stage=r["from_stage"], to_stage=r["to_stage"], reason=r["reason"] or "",
            request_id=r["request_id"], data=_json_data(r["data"]),
            workflow_run_id=r["workflow_run_id"] or "",
        )

    @classmethod
    def from_entry(cls, e: Any, workflow_run_id: str) -> ChainRow:
        """From a `domain.decide.LedgerEntry` (what the workflow hands the record activity)."""

        def val(x: Any) -> Any:
            return None if x is None else getattr(x, "value", x)

        return cls(
            case_no=e.case_no, seq=int(e.seq), event=e.event, actor_user=e.actor.user_id,
            actor_role=val(e.actor.role), actor_unit=e.actor.unit or "", at=e.at,
            from_stage=val(e.from_stage), to_stage=val(e.to_stage), reason=e.reason or "",
            request_id=e.request_id, data=_json_data(e.data), workflow_run_id=workflow_run_id or "",
        )

    def canonical(self, prev_hash: str) -> bytes:
        doc = {
            "v": CHAIN_VERSION,
            "prev_hash": prev_hash,
            "case_no": self.case_no,
            "seq": self.seq,
            "event": self.event,
            "actor_user": self.actor_user,
            "actor_role": self.actor_role,
            "actor_unit": self.actor_unit,
            "at": _ts(self.at),
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "reason": self.reason,
            "request_id": self.request_id,
            "data": self.data,
            "workflow_run_id": self.workflow_run_id,
        }
        return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def content(self) -> dict[str, Any]:
        """The covered fields as comparable values (for field-by-field cross-checks)."""
        return {
            "event": self.event, "actor_user": self.actor_user, "actor_role": self.actor_role,
            "actor_unit": self.actor_unit, "at": _ts(self.at), "from_stage": self.from_stage,
            "to_stage": self.to_stage, "reason": self.reason, "request_id": self.request_id,
            "data": json.dumps(self.data, ensure_ascii=False, sort_keys=True),
            "workflow_run_id": self.workflow_run_id,
        }


def row_hash(row: ChainRow, prev_hash: str) -> str:
    """sha256 (hex) of the row's canonical form, chained onto `prev_hash`."""
    return hashlib.sha256(row.canonical(prev_hash)).hexdigest()


def chain_hashes(rows: Iterable[ChainRow], start_prev: str = GENESIS) -> list[tuple[str, str]]:
    """(prev_hash, row_hash) for consecutive rows, starting from `start_prev`."""
    out = []
    prev = start_prev
    for r in rows:
        h = row_hash(r, prev)
        out.append((prev, h))
        prev = h
    return out


@dataclass(frozen=True)
class ChainBreak:
    """One defect of a case's chain, precise enough to find the row."""

    case_no: str
    seq: int
    kind: str  # MISSING_ROW, CONTENT_CHANGED, PREV_HASH_MISMATCH, UNCHAINED_AFTER_START, NOT_FIRST
    detail: str

    def __str__(self) -> str:
        return f"case {self.case_no} seq {self.seq}: {self.kind}: {self.detail}"


@dataclass
class ChainReport:
    case_no: str
    rows: int
    legacy_rows: int  # rows written before the chain existed (hashes NULL)
    last_hash: str
    breaks: list[ChainBreak]

    @property
    def ok(self) -> bool:
        return not self.breaks


def verify_chain(case_no: str, records: list[Mapping[str, Any]]) -> ChainReport:
    """Check one case's ledger rows (ordered by seq) against the chain rule.

    Detects: an edited row (its content no longer hashes to row_hash), a deleted
    row (a gap in seq, or the next row's prev_hash no longer matching), a
    rewritten hash (prev_hash of the next row disagrees), a row inserted without
    a hash after the chain started. Legacy rows (both hashes NULL, before the
    first chained row) are hashed from their content, so the first chained row
    commits to them.
    """
    breaks: list[ChainBreak] = []
    prev_stored = GENESIS  # hash the next row should name as prev_hash
    expected_seq = 1
    legacy = 0
    chained_started = False
    for r in records:
        seq = int(r["seq"])
        row = ChainRow.from_record(r)
        if seq != expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
            breaks.append(ChainBreak(case_no, expected_seq, "MISSING_ROW",
                                     f"ledger row(s) seq {missing} absent (deleted?); next present row is seq {seq}"))
        stored_prev, stored_hash = r["prev_hash"], r["row_hash"]
        if stored_prev is None and stored_hash is None:
            if chained_started:
                breaks.append(ChainBreak(case_no, seq, "UNCHAINED_AFTER_START",
                                         "row carries no hash although earlier rows are chained (inserted by hand?)"))
            legacy += 1
            prev_stored = row_hash(row, prev_stored)
            expected_seq = seq + 1
            continue
        chained_started = True
        recomputed = row_hash(row, stored_prev or "")
        if stored_prev != prev_stored and seq == expected_seq:
            breaks.append(ChainBreak(case_no, seq, "PREV_HASH_MISMATCH",
                                     f"prev_hash {str(stored_prev)[:12]}… but row seq {seq - 1} hashes to "
                                     f"{prev_stored[:12]}… (row seq {seq - 1} edited, replaced or deleted)"))
        if recomputed != stored_hash:
            breaks.append(ChainBreak(case_no, seq, "CONTENT_CHANGED",
                                     f"content hashes to {recomputed[:12]}… but row_hash is {str(stored_hash)[:12]}… "
                                     "(row edited after it was written)"))
        prev_stored = stored_hash or recomputed
        expected_seq = seq + 1
    return ChainReport(case_no=case_no, rows=len(records), legacy_rows=legacy, last_hash=prev_stored, breaks=breaks)


def side_ledger_hash(prev: str, content: Mapping[str, Any]) -> str:
    """The chain of the side ledgers (programme_ledger, lookback_ledger): sha256 over the previous
    row's hash, a newline and the row's content as canonical JSON (sorted keys, compact)."""
    body = json.dumps(dict(content), ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev + "\n" + body).encode()).hexdigest()
