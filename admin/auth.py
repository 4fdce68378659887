"""Login with lock-out, server-side sessions with CSRF tokens, and API tokens for casectl.

Cookies and API tokens are random 32-byte values; the database keeps only
their sha256, so a copy of the tables does not let anyone log in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from admin.users import User, _user, dummy_verify, verify_password
from config import Settings

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


async def login(pool: asyncpg.Pool, settings: Settings, username: str, password: str, remote: str = "") -> User:
    """Check a password; count failures and lock the user after too many.

    Raises:
        LoginError: wrong credentials, locked or disabled user.
    """
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        async with conn.transaction():  # commit the counting before refusing
            error, row = await _check_login(conn, settings, username, password, remote, now)
    if error:
        raise LoginError(error)
    log.info("login", username=username, remote=remote)
    return _user(row)


async def _check_login(
    conn: asyncpg.Connection, settings: Settings, username: str, password: str, remote: str, now: datetime
) -> tuple[str, asyncpg.Record | None]:
    """(error message or "", user row); records the attempt and updates the failure count."""
    row = await conn.fetchrow("SELECT * FROM console_user WHERE username = $1 FOR UPDATE", username)
    if row is None:
        dummy_verify(password)
        await _attempt(conn, username, "FAILURE", remote, "no such user")
        log.warning("login_failed", username=username, remote=remote, why="no such user")
        return GENERIC_LOGIN_ERROR, None
    if row["locked_until"] is not None and row["locked_until"] > now:
        await _attempt(conn, username, "LOCKED", remote, f"locked until {row['locked_until'].isoformat()}")
        log.warning("login_refused_locked", username=username, remote=remote)
        mins = max(1, int((row["locked_until"] - now).total_seconds() // 60) + 1)
        return f"账户已锁定,请约 {mins} 分钟后再试或联系管理员 (account locked; try again later)", None
    if row["disabled"]:
        await _attempt(conn, username, "FAILURE", remote, "disabled")
        return GENERIC_LOGIN_ERROR, None
    if not verify_password(row["password_hash"], password):
        failures = row["failed_logins"] + 1
        if failures >= settings.console_lockout_failures:
            until = now + timedelta(minutes=settings.console_lockout_minutes)
            await conn.execute(
                "UPDATE console_user SET failed_logins = 0, locked_until = $2 WHERE username = $1", username, until
            )
            await _attempt(conn, username, "LOCKOUT", remote, f"{failures} failures; locked until {until.isoformat()}")
            log.warning("login_lockout", username=username, remote=remote, failures=failures, until=until.isoformat())
            return (f"密码错误次数过多,账户锁定 {settings.console_lockout_minutes} 分钟 "
                    "(too many failed logins: account locked)"), None
        await conn.execute("UPDATE console_user SET failed_logins = $2 WHERE username = $1", username, failures)
        await _attempt(conn, username, "FAILURE", remote, f"wrong password ({failures})")
        log.warning("login_failed", username=username, remote=remote, failures=failures)
        return GENERIC_LOGIN_ERROR, None
    await conn.execute("UPDATE console_user SET failed_logins = 0, locked_until = NULL WHERE username = $1", username)
    await _attempt(conn, username, "SUCCESS", remote, "")
    return "", row


async def _attempt(conn: asyncpg.Connection, username: str, outcome: str, remote: str, detail: str) -> None:
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
