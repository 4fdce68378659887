"""County fan-out on the time-skipping test server (issue 13), real activities and PostgreSQL.

An item assigned to "市城管执法局, 各县市区党委、政府" is split into three child cases; the counties
close at different times, one fails its self-check (县级自查) and is sent back; the parent waits
for every child, then city verification (市级核查) with the provincial spot-check sample recorded.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.calendar import local_date
from domain.closure_levels import draw_sample
from domain.enums import Action, Role, Stage
from domain.fanout_types import FanoutPolicy, SpotCheckPolicy
from domain.model import Actor
from domain.policy import Policy
from tests.harness import _STARTED, LEAD, OFFICE, OTHER_RU, RU, CaseDriver, case_worker, criteria, make_filing
from workflows.client import ActionRefusedError

CITY = Actor(user_id="cg-1", role=Role.RESPONSIBLE_UNIT, unit="市城管执法局")
POLICY = Policy(fanout=FanoutPolicy(enabled=True, spot_check=SpotCheckPolicy(rate=0.5, minimum=1)))


@pytest.fixture
def counties_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = tmp_path / "counties.json"
    p.write_text(json.dumps({"locality": "永州市", "counties": [RU.unit, OTHER_RU.unit]}, ensure_ascii=False))
    monkeypatch.setenv("COUNTIES_FILE", str(p))
    return p


async def wait_stage(c: CaseDriver, stage: Stage, tries: int = 200) -> None:
    for _ in range(tries):
        try:
            if await c.stage() is stage:
                return
        except Exception:  # noqa: BLE001 - the child may not have started yet
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{c.case_no} never reached {stage} (now {await c.stage()})")


async def close_child(env: WorkflowEnvironment, c: CaseDriver, ru: Actor, fail_self_check: bool = False,
                      submitted: bool = False) -> None:
    """A child from 整改 to 销号: its county's self-check, 公示, 申请, the city's 核查, 备案."""
    if not submitted:
        await c.complete_measures(ru)  # each county's 验收 checks its measures one by one
        await c.do(Action.SUBMIT_COMPLETION, ru, evidence=["doc:completion"])
    if fail_self_check:
        await c.do(Action.PRELIM_REJECT, ru, reason="自查发现管网未完工")
        assert await c.stage() is Stage.RECTIFYING
        await c.do(Action.SUBMIT_COMPLETION, ru, evidence=["doc:completion-2"])
    await c.do(Action.PRELIM_PASS, ru, reason="县级自查通过")
    await env.sleep(timedelta(days=8))  # the 7-day 公示
    await wait_stage(c, Stage.CLOSURE_APPLICATION)
    await c.do(Action.APPLY_CLOSURE, ru)
    await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
    await c.do(Action.RECORD_FILING, OFFICE)
    assert await c.stage() is Stage.CLOSED


async def test_fan_out_item_closes_after_every_county_and_city_verification(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str, counties_file: Path
) -> None:
    today = local_date(await ts_env.get_current_time())
    filing = make_filing(due=today + timedelta(days=90)).model_copy(
        update={"case_no": f"FO-{task_queue[3:11]}", "responsible_units": [CITY.unit, "各县市区党委、政府"]}
    )
    async with case_worker(ts_client, pool, task_queue):
        parent = CaseDriver(ts_client, pool, task_queue, filing)
        assert (await parent.file(policy=POLICY)).filed
        kids = [CaseDriver(ts_client, pool, task_queue, filing.model_copy(update={"case_no": f"{filing.case_no}.{i}"}))
                for i in (1, 2, 3)]
        _STARTED.extend(f"case-{k.case_no}" for k in kids)
        await parent.do(Action.TRANSFER, OFFICE, reason="按整改方案交办")
        state = await parent.state()
        assert state.stage is Stage.RECTIFYING and state.deadline is None and state.fanout is not None
        assert [c.units for c in state.fanout.children] == [[CITY.unit], [RU.unit], [OTHER_RU.unit]]
        assert state.fanout.counties.version.startswith("sha256:")
        # Each child is its own case, transferred at once, with its own deadline and ladder.
        for k, ru in zip(kids, (CITY, RU, OTHER_RU), strict=True):
            await wait_stage(k, Stage.TRANSFERRED)
            for _ in range(100):  # its 签收 deadline comes from the calendar activity
                ks = await k.state()
                if ks.deadline is not None:
                    break
                await asyncio.sleep(0.05)
            assert ks.filing.responsible_units == [ru.unit] and ks.filing.parent_case_no == filing.case_no
            assert ks.deadline is not None and ks.deadline.stage is Stage.TRANSFERRED
            await k.do(Action.ACKNOWLEDGE, ru)
            assert (await k.state()).deadline.due_date == filing.deadline.due_date
        # A county acts only on its own child.
        with pytest.raises(ActionRefusedError, match="act on your own child case"):
            await parent.do(Action.REPORT_PROGRESS, CITY, reason="进展")
        with pytest.raises(ActionRefusedError):
            await kids[2].do(Action.REPORT_PROGRESS, RU, reason="别人的子案件")
        await kids[0].complete_measures(CITY)
        await kids[0].do(Action.SUBMIT_COMPLETION, CITY, evidence=["doc:completion"])
        with pytest.raises(ActionRefusedError):  # the county's self-check is not the lead's
            await kids[0].do(Action.PRELIM_PASS, LEAD)

        # The counties close at different times; one fails its self-check and is sent back.
        await close_child(ts_env, kids[0], CITY, submitted=True)
        await ts_env.sleep(timedelta(days=10))
        await close_child(ts_env, kids[1], RU, fail_self_check=True)
        await asyncio.sleep(0.5)
        assert await parent.stage() is Stage.RECTIFYING  # one child still open
        assert (await parent.events()).count("CHILD_CLOSED") == 2
        await ts_env.sleep(timedelta(days=20))
        await close_child(ts_env, kids[2], OTHER_RU)

        await wait_stage(parent, Stage.VERIFICATION)
        for _ in range(100):  # the state moves first, then the record activity writes the ledger
            rows = await parent.ledger()
            if rows[-1]["event"] == "DEADLINE_SET":
                break
            await asyncio.sleep(0.05)
        events = [r["event"] for r in rows]
        assert events[-3:] == ["ALL_CHILDREN_CLOSED", "SPOT_CHECK_SAMPLED", "DEADLINE_SET"]
        sampled = json.loads(next(r for r in rows if r["event"] == "SPOT_CHECK_SAMPLED")["data"])
        assert len(sampled["sample"]) == 2 and sampled["seed"] > 0
        assert sampled["sample"] == draw_sample(sampled["population"], 0.5, 1, sampled["seed"])
        with pytest.raises(ActionRefusedError, match="not recorded yet"):
            await parent.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        for no in sampled["sample"]:
            await parent.do(Action.SPOT_CHECK, OFFICE, child_case_no=no, criteria=criteria(), reason="省级抽查合格")
        await parent.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
        await parent.do(Action.RECORD_FILING, OFFICE)
        assert await parent.stage() is Stage.CLOSED

        # Self-check failure is in the child's own ledger; the parent's shows each child closing.
        kid1 = await kids[1].events()
        assert kid1.count("PRELIM_REJECT") == 1 and kid1[-1] == "RECORD_FILING"
        closed_at = [r["at"] for r in await parent.ledger() if r["event"] == "CHILD_CLOSED"]
        assert len(closed_at) == 3 and closed_at[0] < closed_at[1] < closed_at[2]
        proj = await pool.fetch(
            "SELECT case_no, stage FROM case_projection WHERE filing->>'parent_case_no' = $1 ORDER BY case_no",
            filing.case_no,
        )
        assert [(r["case_no"], r["stage"]) for r in proj] == [(k.case_no, "CLOSED") for k in kids]


async def test_without_the_policy_the_same_item_is_one_case(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str, counties_file: Path
) -> None:
    today = local_date(await ts_env.get_current_time())
    filing = make_filing(due=today + timedelta(days=90)).model_copy(
        update={"responsible_units": [CITY.unit, "各县市区党委、政府"]}
    )
    async with case_worker(ts_client, pool, task_queue):
        c = CaseDriver(ts_client, pool, task_queue, filing)
        assert (await c.file(policy=Policy())).filed
        await c.do(Action.TRANSFER, OFFICE)
        s = await c.state()
        assert s.stage is Stage.TRANSFERRED and s.fanout is None
        assert "FANNED_OUT" not in await c.events()
