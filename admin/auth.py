"""Login with throttling, server-side sessions with CSRF tokens, and API tokens for casectl.

Cookies and API tokens are random 32-byte values; the database keeps only
their sha256, so a copy of the tables does not let anyone log in.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from admin.users import DUMMY_HASH, USERNAME_RE, User, _user, verify_password
from config import Settings
from domain.text import printable_one_line

log = structlog.get_logger("admin.auth")

SESSION_COOKIE = "case_console_session"
GENERIC_LOGIN_ERROR = "用户名或密码错误 (wrong user name or password)"


class LoginError(Exception):
    """Login refused; the message is safe to show (it never says which part was wrong)."""


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    token_hash: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class ThrottledError(LoginError):
    """Too many recent failures for this account or address: try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


THROTTLED_MESSAGE = "尝试次数过多,请 {s} 秒后再试 (too many attempts: try again in {s} s)"
MAX_USERNAME = 64  # longer names are never looked up, and stored cut to this length


def stored_username(username: str) -> str:
    """The user name as recorded in login_attempt: control characters escaped, bounded."""
    return printable_one_line(username)[:MAX_USERNAME]


def throttle_delay(failures: int, free: int, base_ms: int, max_seconds: int) -> float:
    """Seconds to wait after `failures` recent failures: none for the first `free`, then doubling."""
    if failures < free:
        return 0.0
    return min(float(max_seconds), base_ms / 1000.0 * 2 ** min(failures - free, 30))


async def throttle_wait(pool: asyncpg.Pool | asyncpg.Connection, settings: Settings, username: str, remote: str,
                        now: datetime) -> float:
    """Seconds before this account (by name, existing or not) and this address may try again.

    Failures count over the last CONSOLE_LOCKOUT_MINUTES, for an account since its last success or
    unlock. Nothing is locked: the wait grows with each failure and ends by itself, so nobody can
    lock another user out for long, and an unknown name is throttled exactly like a real one.
    """
    since = now - timedelta(minutes=settings.console_lockout_minutes)
    row = await pool.fetchrow(
        """WITH acct AS (
               SELECT count(*) AS n, max(at) AS last FROM login_attempt
               WHERE username = $1 AND outcome = 'FAILURE' AND at > GREATEST($3, COALESCE(
                   (SELECT max(at) FROM login_attempt WHERE username = $1 AND outcome IN ('SUCCESS', 'UNLOCK')),
                   $3))),
           addr AS (
               SELECT count(*) AS n, max(at) AS last FROM login_attempt
               WHERE remote_addr = $2 AND $2 <> '' AND outcome = 'FAILURE' AND at > $3)
           SELECT acct.n AS acct_n, acct.last AS acct_last, addr.n AS addr_n, addr.last AS addr_last
           FROM acct, addr""",
        username, remote, since,
    )
    wait = 0.0
    for n, last, free in ((row["acct_n"], row["acct_last"], settings.console_lockout_failures),
                          (row["addr_n"], row["addr_last"], settings.console_throttle_address_failures)):
        delay = throttle_delay(n, free, settings.console_throttle_base_ms, settings.console_throttle_max_seconds)
        if delay and last is not None:
            wait = max(wait, (last + timedelta(seconds=delay) - now).total_seconds())
    return wait


async def login(pool: asyncpg.Pool, settings: Settings, username: str, password: str, remote: str = "") -> User:
    """Check a password, with throttling per account and per address.

    The password hash is checked in a worker thread (argon2 would stall every other request
    on the event loop). Unknown, disabled, administratively locked and wrong-password logins
    all get GENERIC_LOGIN_ERROR after one hash check each: the same message, comparable time.

    Raises:
        ThrottledError: too many recent failures; nothing was checked.
        LoginError: wrong credentials (or unknown, locked, disabled user).
    """
    now = datetime.now(UTC)
    name = stored_username(username)
    remote = printable_one_line(remote)[:100]
    wait = await throttle_wait(pool, settings, name, remote, now)
    if wait > 0:
        secs = max(1, math.ceil(wait))
        await _attempt(pool, name, "THROTTLED", remote, f"wait {secs}s")
        log.warning("login_throttled", username=name, remote=remote, wait_s=secs)
        raise ThrottledError(THROTTLED_MESSAGE.format(s=secs), secs)
    valid_name = name == username and USERNAME_RE.match(username) is not None
    row = await pool.fetchrow("SELECT * FROM console_user WHERE username = $1", name) if valid_name else None
    ok = await asyncio.to_thread(verify_password, row["password_hash"] if row else DUMMY_HASH, password)
    why = ("no such user" if row is None else "disabled" if row["disabled"]
           else "locked by an administrator" if row["locked_until"] is not None and row["locked_until"] > now
           else "" if ok else "wrong password")
    if why:
        await _attempt(pool, name, "FAILURE", remote, why)
        log.warning("login_failed", username=name, remote=remote, why=why)
        raise LoginError(GENERIC_LOGIN_ERROR)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE console_user SET failed_logins = 0, locked_until = NULL WHERE username = $1", name)
        await _attempt(conn, name, "SUCCESS", remote, "")
    log.info("login", username=name, remote=remote)
    assert row is not None
    return _user(row)


async def _attempt(conn: asyncpg.Pool | asyncpg.Connection, username: str, outcome: str, remote: str, detail: str) -> None:
    await conn.execute(
        "INSERT INTO login_attempt (username, outcome, remote_addr, detail) VALUES ($1, $2, $3, $4)",
        username, outcome, remote, detail,
    )


async def create_session(pool: asyncpg.Pool, settings: Settings, user: User, remote: str = "") -> tuple[str, str]:
    """A new session; returns (cookie token, csrf token)."""
    token, csrf = new_token(), new_token()
    expires = datetime.now(UTC) + timedelta(hours=settings.console_session_max_hours)
    await pool.execute(
        """INSERT INTO console_session (token_hash, username, csrf_token, expires_at, remote_addr)
           VALUES ($1, $2, $3, $4, $5)""",
        token_hash(token), user.username, csrf, expires, remote,
    )
    return token, csrf


async def load_session(pool: asyncpg.Pool, settings: Settings, token: str | None) -> Session | None:
    """The live session of a cookie (idle and absolute expiry enforced), touching last_seen."""
    if not token:
        return None
    h = token_hash(token)
    idle = timedelta(minutes=settings.console_session_idle_minutes)
    row = await pool.fetchrow(
        """UPDATE console_session s SET last_seen_at = clock_timestamp()
           FROM console_user u
           WHERE s.token_hash = $1 AND u.username = s.username AND NOT u.disabled
             AND s.expires_at > clock_timestamp() AND s.last_seen_at > clock_timestamp() - $2::interval
           RETURNING u.*, s.csrf_token""",
        h, idle,
    )
    if row is None:
        await pool.execute("DELETE FROM console_session WHERE token_hash = $1", h)
        return None
    return Session(user=_user(row), csrf_token=row["csrf_token"], token_hash=h)


async def end_session(pool: asyncpg.Pool, token: str | None) -> None:
    if token:
        await pool.execute("DELETE FROM console_session WHERE token_hash = $1", token_hash(token))


async def issue_api_token(pool: asyncpg.Pool | asyncpg.Connection, username: str, label: str = "") -> str:
    """A new API token for a user; only its hash is stored, the token is returned once."""
    exists = await pool.fetchval("SELECT true FROM console_user WHERE username = $1", username)
    if not exists:
        raise LookupError(f"no user {username!r}")
    token = "cet_" + new_token()
    await pool.execute(
        "INSERT INTO api_token (token_hash, username, label) VALUES ($1, $2, $3)", token_hash(token), username, label
    )
    return token


async def user_for_api_token(pool: asyncpg.Pool, token: str | None) -> User | None:
    if not token:
        return None
    row = await pool.fetchrow(
        """UPDATE api_token t SET last_used_at = clock_timestamp()
           FROM console_user u
           WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.username = t.username AND NOT u.disabled
           RETURNING u.*""",
        token_hash(token),
    )
    return _user(row) if row else None
