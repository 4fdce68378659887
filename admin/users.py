"""Console users: one unit, one or more roles, an argon2 password hash, a lock-out state."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from domain.enums import Role
from domain.model import Actor

_HASHER = PasswordHasher()
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIN_PASSWORD = 8
# Roles a console user may hold (SYSTEM is the engine itself).
USER_ROLES = tuple(r for r in Role if r is not Role.SYSTEM)


class UserError(ValueError):
    """Bad user data (name, roles, password), with a message naming what is wrong."""


@dataclass(frozen=True)
class User:
    username: str
    unit: str
    roles: tuple[Role, ...]
    display_name: str = ""
    disabled: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def read_only(self) -> bool:
        """Auditors (and users holding no acting role) only read."""
        return all(r in (Role.AUDITOR,) for r in self.roles)

    @property
    def may_audit(self) -> bool:
        """Auditors and the rectification office see the audit pages (histories, chain checks)."""
        return Role.AUDITOR in self.roles or Role.RECTIFICATION_OFFICE in self.roles

    def actor(self, role: Role) -> Actor:
        """The actor for an action: always built here from the authenticated user."""
        if role not in self.roles:
            raise PermissionError(f"user {self.username} does not hold role {role}")
        return Actor(user_id=self.username, role=role, unit=self.unit)

    def actors(self) -> list[Actor]:
        return [Actor(user_id=self.username, role=r, unit=self.unit) for r in self.roles if r is not Role.AUDITOR]

    def to_json(self) -> dict:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "unit": self.unit,
            "roles": [r.value for r in self.roles],
            "disabled": self.disabled,
        }


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password too short: at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A fixed hash to verify against when the user does not exist (same timing either way).
DUMMY_HASH = _HASHER.hash("not-a-real-password-0")


def dummy_verify(password: str) -> None:
    verify_password(DUMMY_HASH, password)


def parse_roles(raw: list[str] | str) -> tuple[Role, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    roles: list[Role] = []
    for item in items:
        name = item.strip().upper()
        if not name:
            continue
        try:
            role = Role(name)
        except ValueError:
            raise UserError(
                f"unknown role {item.strip()!r} (one of: {', '.join(r.value for r in USER_ROLES)})"
            ) from None
        if role is Role.SYSTEM:
            raise UserError("role SYSTEM is the engine itself, not a user")
        if role not in roles:
            roles.append(role)
    if not roles:
        raise UserError("a user needs at least one role")
    return tuple(roles)


def _user(row: asyncpg.Record) -> User:
    return User(
        username=row["username"],
        unit=row["unit"],
        roles=tuple(Role(r) for r in row["roles"]),
        display_name=row["display_name"],
        disabled=row["disabled"],
        extra={"locked_until": row["locked_until"], "failed_logins": row["failed_logins"]},
    )


async def create_user(
    pool: asyncpg.Pool | asyncpg.Connection,
    username: str,
    password: str,
    unit: str,
    roles: list[str] | str | tuple[Role, ...],
    display_name: str = "",
    if_missing: bool = False,
) -> tuple[User, bool]:
    """Create a user; returns (user, created). With `if_missing` an existing user is left as it is."""
    if not USERNAME_RE.match(username or ""):
        raise UserError(f"bad user name {username!r}: letters, digits, '.', '_' or '-', at most 64")
    if not unit.strip():
        raise UserError("a user belongs to one unit: give --unit")
    role_t = parse_roles([r.value if isinstance(r, Role) else r for r in roles] if not isinstance(roles, str) else roles)
    pw_hash = hash_password(password)
    row = await pool.fetchrow(
        """INSERT INTO console_user (username, display_name, unit, roles, password_hash)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING RETURNING *""",
        username, display_name, unit.strip(), [r.value for r in role_t], pw_hash,
    )
    if row is None:
        if not if_missing:
            raise UserError(f"user {username!r} already exists")
        existing = await get_user(pool, username)
        assert existing is not None
        return existing, False
    return _user(row), True


async def get_user(pool: asyncpg.Pool | asyncpg.Connection, username: str) -> User | None:
    row = await pool.fetchrow("SELECT * FROM console_user WHERE username = $1", username)
    return _user(row) if row else None


async def list_users(pool: asyncpg.Pool | asyncpg.Connection) -> list[User]:
    return [_user(r) for r in await pool.fetch("SELECT * FROM console_user ORDER BY unit, username")]


async def unlock_user(pool: asyncpg.Pool | asyncpg.Connection, username: str, by: str = "operator") -> bool:
    done = await pool.fetchval(
        """UPDATE console_user SET failed_logins = 0, locked_until = NULL, updated_at = clock_timestamp()
           WHERE username = $1 RETURNING true""",
        username,
    )
    if done:
        await pool.execute(
            "INSERT INTO login_attempt (username, outcome, detail) VALUES ($1, 'UNLOCK', $2)", username, f"by {by}"
        )
    return bool(done)
