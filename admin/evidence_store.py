"""Evidence files in PostgreSQL (deploy/sql/004_evidence.sql), outside the workflow history.

An upload is first spooled (at most 1 MiB in memory, the rest in a temporary file) while
its sha256 is computed and its type is checked from its first bytes and its size against
the limit; only then is it written, in one transaction, as 1 MiB chunks of a
content-addressed blob (once per sha256) plus one `evidence_file` row for the case.
Downloads stream the chunks back one query at a time. Hashing and file I/O run in a
thread, never on the event loop; no step holds the whole file in memory.

Why chunked bytea rather than large objects or a files directory: the chunks commit or
roll back with the metadata row (no orphan files, no half-written blob), they are in the
same backup as the ledger, every console replica sees them without a shared volume, and
the auditors' SELECT-only role reads them like any table (large objects need their own
grants per object and `vacuumlo` for orphans).
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import asyncpg

from domain.evidence import (
    SNIFF_BYTES,
    EvidenceError,
    check_media_type,
    check_size,
    reference,
    referenced_files,
)
from domain.model import ActionRequest, Actor
from domain.visibility import CaseFacts

CHUNK = 1 << 20  # bytes per stored chunk, per hashing step and per download step


class EvidenceTooLarge(EvidenceError):
    """The upload is over the size limit (HTTP 413)."""


@dataclass(frozen=True)
class EvidenceFile:
    id: int
    case_no: str
    sha256: str
    size: int
    media_type: str
    original_name: str
    uploader_user: str
    uploader_role: str
    uploader_unit: str
    uploaded_at: datetime

    @property
    def reference(self) -> str:
        return reference(self.sha256)

    @property
    def short(self) -> str:
        return self.sha256[:12]

    def to_json(self) -> dict[str, Any]:
        return {
            "case_no": self.case_no, "sha256": self.sha256, "reference": self.reference, "size": self.size,
            "media_type": self.media_type, "original_name": self.original_name,
            "uploader_user": self.uploader_user, "uploader_role": self.uploader_role,
            "uploader_unit": self.uploader_unit, "uploaded_at": self.uploaded_at.isoformat(),
        }

    @classmethod
    def from_row(cls, r: asyncpg.Record) -> EvidenceFile:
        return cls(**{k: r[k] for k in cls.__dataclass_fields__})


@dataclass
class Spooled:
    """An upload that passed its checks, ready to store: its bytes sit in `file` (position 0)."""

    name: str
    file: IO[bytes]
    size: int
    sha256: str
    media_type: str

    def close(self) -> None:
        self.file.close()


async def spool_stream(chunks: AsyncIterator[bytes], name: str, limit: int) -> Spooled:
    """Read an upload from the network: type from the first bytes, size against `limit` as it
    arrives, sha256 (in a thread). Raises EvidenceError / EvidenceTooLarge as soon as it knows."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=CHUNK)  # noqa: SIM115 (closed by caller)
    h = hashlib.sha256()
    size = 0
    media = ""
    buf = bytearray()

    def flush(data: bytes) -> None:
        h.update(data)  # hashlib releases the GIL for large buffers
        spool.write(data)

    try:
        async for piece in chunks:
            if not piece:
                continue
            size += len(piece)
            check_size_stream(size, limit, name)
            buf += piece
            if not media and len(buf) >= SNIFF_BYTES:
                media = check_media_type(bytes(buf[:SNIFF_BYTES]), name)
            if len(buf) >= CHUNK:
                await asyncio.to_thread(flush, bytes(buf))
                buf.clear()
        if not media:
            media = check_media_type(bytes(buf), name)
        if buf:
            await asyncio.to_thread(flush, bytes(buf))
        await asyncio.to_thread(spool.seek, 0)
    except BaseException:
        spool.close()
        raise
    return Spooled(name=name, file=spool, size=size, sha256=h.hexdigest(), media_type=media)


def check_size_stream(size: int, limit: int, name: str) -> None:
    try:
        check_size(size, limit, name)
    except EvidenceError as e:
        raise EvidenceTooLarge(str(e)) from None


async def spool_file(f: IO[bytes], name: str, limit: int) -> Spooled:
    """An upload already received into a (spooled) file, e.g. a multipart form part: check
    type and size and compute the sha256 reading it in chunks, in a thread."""

    def scan() -> tuple[int, str, str]:
        f.seek(0)
        head = f.read(SNIFF_BYTES)
        media = check_media_type(head, name)
        h = hashlib.sha256(head)
        size = len(head)
        while piece := f.read(CHUNK):
            size += len(piece)
            check_size_stream(size, limit, name)
            h.update(piece)
        f.seek(0)
        return size, h.hexdigest(), media

    size, sha, media = await asyncio.to_thread(scan)
    return Spooled(name=name, file=f, size=size, sha256=sha, media_type=media)


# ------------------------------------------------------------------ writing

_COLUMNS = ("id, case_no, sha256, size, media_type, original_name, uploader_user, uploader_role, "
            "uploader_unit, uploaded_at")


async def store(pool: asyncpg.Pool, case_no: str, up: Spooled, actor: Actor) -> tuple[EvidenceFile, bool]:
    """Store a spooled upload for a case; (the file's row, whether it is new on this case).

    One transaction: the blob (if its sha256 is not stored yet) with all its chunks, and the
    case's row; a failure leaves nothing. The same file again on the same case returns the
    first row (created False); on another case it gets its own row but no second copy.
    """
    chunks = max(1, -(-up.size // CHUNK))
    async with pool.acquire() as conn, conn.transaction():
        new_blob = await conn.fetchval(
            """INSERT INTO evidence_blob (sha256, size, media_type, chunk_size, chunks)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING RETURNING true""",
            up.sha256, up.size, up.media_type, CHUNK, chunks)
        if new_blob:
            await asyncio.to_thread(up.file.seek, 0)
            for n in range(chunks):
                data = await asyncio.to_thread(up.file.read, CHUNK)
                await conn.execute("INSERT INTO evidence_chunk (sha256, n, data) VALUES ($1, $2, $3)",
                                   up.sha256, n, data)
                del data
        row = await conn.fetchrow(
            f"""INSERT INTO evidence_file (case_no, sha256, size, media_type, original_name, uploader_user,
                                          uploader_role, uploader_unit)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (case_no, sha256) DO NOTHING
                RETURNING {_COLUMNS}""",
            case_no, up.sha256, up.size, up.media_type, up.name, actor.user_id, actor.role.value, actor.unit)
        if row is not None:
            return EvidenceFile.from_row(row), True
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM evidence_file WHERE case_no = $1 AND sha256 = $2",
                                  case_no, up.sha256)
        return EvidenceFile.from_row(row), False


# ------------------------------------------------------------------ reading


async def list_files(pool: asyncpg.Pool | asyncpg.Connection, case_no: str) -> list[EvidenceFile]:
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM evidence_file WHERE case_no = $1 ORDER BY uploaded_at, id",
                            case_no)
    return [EvidenceFile.from_row(r) for r in rows]


async def get_file(pool: asyncpg.Pool, case_no: str, sha256: str) -> EvidenceFile | None:
    """The file `sha256` as registered on this case (a file is served only through a case it
    was uploaded to)."""
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM evidence_file WHERE case_no = $1 AND sha256 = $2",
                              case_no, sha256)
    return EvidenceFile.from_row(row) if row else None


async def missing_references(pool: asyncpg.Pool, case_no: str, shas: list[str]) -> list[str]:
    """Those of `shas` that are not evidence files of this case."""
    if not shas:
        return []
    have = {r[0] for r in await pool.fetch(
        "SELECT sha256 FROM evidence_file WHERE case_no = $1 AND sha256 = ANY($2::text[])", case_no, shas)}
    return [s for s in shas if s not in have]


async def iter_bytes(pool: asyncpg.Pool, sha256: str) -> AsyncIterator[bytes]:
    """The stored bytes, chunk by chunk (one short query each: no connection is held while the
    client reads)."""
    chunks = await pool.fetchval("SELECT chunks FROM evidence_blob WHERE sha256 = $1", sha256)
    for n in range(chunks or 0):
        data = await pool.fetchval("SELECT data FROM evidence_chunk WHERE sha256 = $1 AND n = $2", sha256, n)
        if data is None:
            raise EvidenceError(f"evidence {sha256}: chunk {n} is missing from the store")
        yield data


async def case_facts(pool: asyncpg.Pool, case_no: str) -> CaseFacts | None:
    """What read scoping needs to know of a case (from its projection); None: no such case."""
    from admin.readmodel import ReadModel

    r = await pool.fetchrow(
        """SELECT stage, responsible_units, lead_supervising_units, assisting_units, detail
           FROM case_projection WHERE case_no = $1""", case_no)
    return None if r is None else ReadModel.facts(dict(r))


def action_references(req: ActionRequest) -> list[str]:
    """Every evidence reference of an action: its own and each closure criterion's."""
    refs = list(req.evidence)
    if req.criteria is not None:
        for c in (req.criteria.eco_restored, req.criteria.pollution_eliminated, req.criteria.public_satisfied,
                  req.criteria.measures_all_done):
            refs += c.evidence if c is not None else []
    return refs


async def check_references(pool: asyncpg.Pool, case_no: str, req: ActionRequest) -> None:
    """Every `evidence:sha256:…` reference of an action must name a file uploaded to this case
    (other references, e.g. `doc:…`, are free text). EvidenceError names the bad ones."""
    shas = referenced_files(action_references(req))
    if missing := await missing_references(pool, case_no, shas):
        raise EvidenceError("evidence not uploaded to case " + case_no + ": "
                            + ", ".join(f"evidence:sha256:{m}" for m in missing)
                            + " (upload the file to this case first)")


async def audit_rows(pool: asyncpg.Pool, case_no: str, entries: list[Any]) -> list[Any]:
    """The audit timeline's evidence section: the case's files and the history entries citing them."""
    from audit.timeline import evidence_rows

    return evidence_rows(await list_files(pool, case_no), entries)
