"""Which referrals make a case visible to the discipline commission (Scope.REFERRED): one it has
received (OPEN, ACCEPTED, CONCLUDED), never a path-B draft (DRAFT) nor a draft the office sent
back (RETURNED, RETURN_REFERRAL). The console filters in PostgreSQL (REFERRED_JSONPATH) and
decides per case in Python (ReadModel.facts); both are checked here against the domain's set."""

from __future__ import annotations

import json

import pytest

from admin.readmodel import ReadModel
from domain.enums import REFERRED_JSONPATH, REFERRED_STATUSES, ReferralStatus

CASES = [
    ([], False),
    (["DRAFT"], False),
    (["RETURNED"], False),
    (["RETURNED", "DRAFT"], False),
    (["RETURNED", "OPEN"], True),
    (["ACCEPTED"], True),
    (["CONCLUDED"], True),
]


def _detail(statuses: list[str]) -> dict:
    return {"referrals": [{"referral_id": f"C-R{i}", "status": st} for i, st in enumerate(statuses, 1)]}


def test_the_referred_statuses_are_those_the_commission_has_received() -> None:
    assert REFERRED_STATUSES == set(ReferralStatus) - {ReferralStatus.DRAFT, ReferralStatus.RETURNED}


@pytest.mark.parametrize(("statuses", "referred"), CASES, ids=lambda v: str(v))
async def test_postgres_and_python_agree_on_a_referred_case(pool, statuses: list[str], referred: bool) -> None:
    detail = _detail(statuses)
    in_pg = await pool.fetchval(f"SELECT jsonb_path_exists($1::jsonb, '{REFERRED_JSONPATH}')", json.dumps(detail))
    assert in_pg is referred
    assert ReadModel.facts({"detail": detail}).has_referrals is referred
