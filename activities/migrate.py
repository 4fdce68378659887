"""Applies the SQL migrations in deploy/sql in order, recording each in schema_migrations.

Usage: python -m activities.migrate [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import sys
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "sql"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_LOCK_ID = 7_233_001  # advisory lock: one migrator at a time


class MigrationError(RuntimeError):
    """A migration is missing, renamed or was edited after it was applied."""


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, str, str]]:
    """(version, file name, sql) for each migration, in order."""
    out = []
    for p in sorted(directory.glob("*.sql")):
        m = _NAME.match(p.name)
        if not m:
            raise MigrationError(f"migration file name {p.name!r} does not match NNN_name.sql")
        out.append((int(m[1]), p.name, p.read_text(encoding="utf-8")))
    versions = [v for v, _, _ in out]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return out


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the names applied. Each runs in its own transaction."""
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"""
    )
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        applied = {r["version"]: r for r in await conn.fetch("SELECT * FROM schema_migrations")}
        done = []
        for version, name, sql in migration_files(directory):
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if version in applied:
                row = applied[version]
                if row["checksum"] != checksum:
                    raise MigrationError(
                        f"migration {name} was edited after it was applied "
                        f"(recorded {row['checksum'][:12]}, file {checksum[:12]}); add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    version, name, checksum,
                )
            done.append(name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)


async def _main(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        done = await migrate(conn)
    finally:
        await conn.close()
    print("applied: " + (", ".join(done) if done else "nothing (schema is current)"))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    if not args.database_url:
        parser.error("set DATABASE_URL or pass --database-url")
    try:
        status = asyncio.run(_main(args.database_url))
    except (MigrationError, OSError, asyncpg.PostgresError) as e:
        print(f"migration failed: {e}", file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
