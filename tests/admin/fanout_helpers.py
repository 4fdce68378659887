"""Filing a fan-out item in the console tests (issue 13): a policy with fan-out on, passed at
filing (the console's worker keeps the built-in policy, where fan-out is off), and a county list
naming the two demo counties (the worker runs in the test process and reads COUNTIES_FILE)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from domain.calendar import local_date
from domain.fanout_types import FanoutPolicy, SpotCheckPolicy
from domain.policy import Policy
from tests.admin.conftest import Console, wait_projection
from tests.harness import OTHER_RU, RU, CaseDriver, make_filing

CITY_UNIT = "市城管执法局"
MARKER = "各县市区党委、政府"
FANOUT_POLICY = Policy(fanout=FanoutPolicy(enabled=True, spot_check=SpotCheckPolicy(rate=0.5, minimum=1)))


@contextmanager
def county_list(tmp: Path) -> Iterator[Path]:
    p = tmp / "counties.json"
    p.write_text(json.dumps({"locality": "永州市", "counties": [RU.unit, OTHER_RU.unit]}, ensure_ascii=False),
                 encoding="utf-8")
    old = os.environ.get("COUNTIES_FILE")
    os.environ["COUNTIES_FILE"] = str(p)
    try:
        yield p
    finally:
        if old is None:
            os.environ.pop("COUNTIES_FILE", None)
        else:
            os.environ["COUNTIES_FILE"] = old


async def file_fanout_item(c: Console, prefix: str = "FO") -> str:
    """File (not yet transfer) an item assigned to 市城管执法局 and 各县市区党委、政府."""
    due = local_date(datetime.now(UTC)) + timedelta(days=120)
    filing = make_filing(case_no=f"{prefix}-{uuid.uuid4().hex[:6]}", due=due).model_copy(
        update={"responsible_units": [CITY_UNIT, MARKER]})
    driver = CaseDriver(c.env.client, c.pool, c.task_queue, filing)
    assert (await driver.file(policy=FANOUT_POLICY)).filed
    await wait_projection(c, filing.case_no, "REGISTERED")
    return filing.case_no


async def children_of(c: Console, parent: str, n: int = 3) -> dict[str, str]:
    """unit -> child case number, once the parent's n children are in the projection."""
    import asyncio

    for _ in range(300):
        rows = await c.pool.fetch("SELECT case_no, responsible_units FROM case_projection "
                                  "WHERE filing->>'parent_case_no' = $1", parent)
        if len(rows) >= n:
            return {u: r["case_no"] for r in rows for u in r["responsible_units"]}
        await asyncio.sleep(0.1)
    raise AssertionError(f"{parent} has {len(rows)} child cases, expected {n}")
