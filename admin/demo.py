"""Demo users for the run command: one per role and one per unit of the filed sample cases.

Only for trying the console out (`make run`): passwords are random, kept in
`<data dir>/demo-logins.json` (mode 600) and printed on every start, flagged as demo.
A real deployment creates users with `casectl admin create-user` instead.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import asyncpg

from admin.users import create_user, get_user

# Short user names for the units of the sample cases (others get unit-N).
UNIT_USERNAMES = {
    "市生态环境局": "sthj",
    "市城管执法局": "cgzf",
    "市发改委": "fgw",
    "市自然资源和规划局": "zrzy",
    "市农业农村局": "nync",
    "市林业局": "linye",
    "市工信局": "gxj",
    "蓝山县委、县政府": "lanshan",
    "市委": "swei",
    "市政府": "szf",
    "市委办": "swb",
    "市政府办": "szfb",
}
FIXED = [
    ("office", "整改办", ["RECTIFICATION_OFFICE"], "整改办工作人员"),
    ("discipline", "纪委监委", ["DISCIPLINE_COMMISSION"], "纪委监委"),
    ("duchashi", "市委督查室", ["SUPERVISION_OFFICE"], "市委督查室"),
    ("auditor", "审计组", ["AUDITOR"], "审计人员(只读)"),
    ("citizen", "公众", ["PUBLIC"], "公众(公示异议)"),
]


async def demo_accounts(
    pool: asyncpg.Pool, filings: list | None = None, max_units: int = 12
) -> list[tuple[str, str, list[str], str]]:
    """(username, unit, roles, display name) for the fixed roles and the busiest units of the cases.

    The units come from `filings` (the sample cases) when given, else from the projection.
    """
    if filings is not None:
        count: dict[str, dict] = {}
        for f in filings:
            for unit, key in [(u, "ru") for u in f.responsible_units] + [(u, "lead") for u in f.lead_supervising_units]:
                c = count.setdefault(unit, {"unit": unit, "ru": False, "lead": False, "n": 0})
                c[key] = True
                c["n"] += 1
        rows = sorted(count.values(), key=lambda c: (c["unit"] not in UNIT_USERNAMES, -c["n"], c["unit"]))[:max_units]
    else:
        rows = await pool.fetch(
        """SELECT unit, bool_or(ru) AS ru, bool_or(lead) AS lead, count(*) AS n FROM (
               SELECT unnest(responsible_units) AS unit, true AS ru, false AS lead FROM case_projection
               UNION ALL
               SELECT unnest(lead_supervising_units), false, true FROM case_projection) x
           GROUP BY unit ORDER BY (unit = ANY($1)) DESC, n DESC, unit LIMIT $2""",
            list(UNIT_USERNAMES), max_units,
        )
    out = list(FIXED)
    for i, r in enumerate(rows, start=1):
        roles = (["RESPONSIBLE_UNIT"] if r["ru"] else []) + (["LEAD_SUPERVISOR"] if r["lead"] else [])
        out.append((UNIT_USERNAMES.get(r["unit"], f"unit-{i}"), r["unit"], roles, r["unit"]))
    return out


async def ensure_demo_users(pool: asyncpg.Pool, data_dir: Path, filings: list | None = None) -> list[dict]:
    """Create the demo users that are missing (idempotent); returns their logins."""
    path = data_dir / "demo-logins.json"
    known: dict[str, str] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    logins = []
    for username, unit, roles, display in await demo_accounts(pool, filings):
        user = await get_user(pool, username)
        if user is None:
            password = f"demo-{secrets.token_urlsafe(6)}"
            user, _ = await create_user(pool, username, password, unit, roles, display_name=display, if_missing=True)
            known[username] = password
        logins.append({"username": username, "password": known.get(username, "(set elsewhere)"), "unit": user.unit,
                       "roles": [r.value for r in user.roles]})
    path.write_text(json.dumps(known, ensure_ascii=False, indent=1), encoding="utf-8")
    os.chmod(path, 0o600)
    return logins


def format_logins(url: str, logins: list[dict]) -> str:
    from domain.enums import ROLE_LABELS_ZH, Role

    lines = [f"  Console:       {url}   (DEMO logins below: for trying it out only, never for real use)"]
    for lg in logins:
        roles = "、".join(ROLE_LABELS_ZH[Role(r)] for r in lg["roles"])
        lines.append(f"    {lg['username']:<11} {lg['password']:<16} {lg['unit']} · {roles}")
    return "\n".join(lines)
