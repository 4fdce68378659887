"""Look-back campaigns (回头看, issue 14) on the Java time-skipping server, real activities and PostgreSQL."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from admin.lookback_report import to_pdf, to_xlsx
from admin.lookbacks import LookbackReads
from admin.users import User
from domain.enums import ReferralPath, Role, Stage
from domain.lookback import CampaignFinding, CampaignStage, CloseRequest, LookbackPolicy, ReopenStatus
from domain.lookback_rules import draw_sample
from domain.policy import Policy
from tests.harness import LEAD, OFFICE, RU, SUPERVISION, case_worker
from tests.workflows.lookback_helpers import closed_cases, find, new_campaign, rid, select_all, today
from workflows import lookback_client as lc
from workflows.client import ActionRefusedError

OFFICE_USER = User(username=OFFICE.user_id, unit=OFFICE.unit, roles=(Role.RECTIFICATION_OFFICE,))


async def test_campaign_over_ten_closed_cases_reopens_two_rebounds_and_reports(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """Ten closed cases: two rebounds reopen their cases with a new deadline and propose a path-A
    referral, one fake rectification proposes path B, the rest are in place; a second finding and an
    unauthorised finding are refused (the latter recorded); the reminder names the last unvisited
    case; the last finding closes the campaign; the xlsx and PDF report carry the counts."""
    prog = f"P-{uuid.uuid4().hex[:6]}"
    async with case_worker(ts_client, pool, task_queue):
        cases = await closed_cases(ts_env, ts_client, pool, task_queue, 10, prog)
        cid = await new_campaign(ts_env, ts_client, task_queue, prog, days=20)
        res = await select_all(ts_client, cid, pool)
        assert res.selected == 10 and res.unvisited == 10
        nos = [c.case_no for c in cases]
        new_due = await today(ts_env) + timedelta(days=90)
        await find(ts_client, cid, pool, nos[0], CampaignFinding.REBOUND, actor=OFFICE, new_due_date=new_due,
                   evidence="现场发现渗滤液再次直排", evidence_refs=["doc:photo-001"])
        await find(ts_client, cid, pool, nos[1], CampaignFinding.REBOUND, actor=SUPERVISION)  # default deadline
        await find(ts_client, cid, pool, nos[2], CampaignFinding.FAKE, actor=LEAD, evidence="台账资料系补做")
        for n in nos[3:9]:
            await find(ts_client, cid, pool, n, CampaignFinding.IN_PLACE)

        # exactly one finding per case
        with pytest.raises(ActionRefusedError) as twice:
            await find(ts_client, cid, pool, nos[0], CampaignFinding.IN_PLACE, actor=OFFICE)
        assert twice.value.error_type == "InvalidTransitionError" and "already has its finding" in twice.value.message
        # a responsible unit never records a finding on its own case; refused and recorded
        with pytest.raises(ActionRefusedError) as ru:
            await find(ts_client, cid, pool, nos[9], CampaignFinding.IN_PLACE, actor=RU)
        assert ru.value.error_type == "NotAuthorizedError"
        refused = await pool.fetch("SELECT * FROM refused_action WHERE case_no = $1 ORDER BY id", f"lookback:{cid}")
        assert [(r["actor_user"], r["error_type"], r["action"]) for r in refused] == [
            (OFFICE.user_id, "InvalidTransitionError", "LOOKBACK_FINDING"),
            (RU.user_id, "NotAuthorizedError", "LOOKBACK_FINDING")]

        # the reopened cases: a new rectification cycle with the deadline given, or the policy's default
        s0, s1, s2 = (await cases[0].state(), await cases[1].state(), await cases[2].state())
        assert s0.stage is Stage.RECTIFYING and s0.cycle == 2 and s0.deadline.due_date == new_due
        assert s1.stage is Stage.RECTIFYING and s1.deadline.due_date > await today(ts_env)
        assert s2.stage is Stage.RECTIFYING and s2.reopen_count == 1
        assert not s0.referrals and not s2.referrals  # proposed, never referred automatically
        assert (await cases[3].stage()) is Stage.CLOSED

        # the reminder after the period names the one unvisited case, to the office and the inspectors
        await ts_env.sleep(timedelta(days=22))
        rem = await pool.fetch("SELECT data FROM lookback_ledger WHERE campaign_id = $1 AND event = 'REMINDER'", cid)
        assert rem and '"' + nos[9] + '"' in rem[-1]["data"]
        units = {r["recipient_unit"] for r in await pool.fetch(
            "SELECT recipient_unit FROM outbox WHERE lookback_id = $1 AND subject LIKE '%未核查%'", cid)}
        assert {OFFICE.unit, LEAD.unit} <= units

        last = await find(ts_client, cid, pool, nos[9], CampaignFinding.IN_PLACE)
        assert last.stage is CampaignStage.CLOSED and last.unvisited == 0
        state = await lc.campaign_state(ts_client, cid)
        by = {i.case_no: i for i in state.items}
        assert by[nos[0]].reopen is ReopenStatus.REOPENED and by[nos[0]].referral_proposed is ReferralPath.PERFORMANCE
        assert by[nos[2]].referral_proposed is ReferralPath.FAKE_RECTIFICATION
        events = [r["event"] for r in await pool.fetch(
            "SELECT event FROM lookback_ledger WHERE campaign_id = $1 ORDER BY seq", cid)]
        assert events[0] == "CAMPAIGN_CREATED" and events[-1] == "CAMPAIGN_CLOSED"
        assert events.count("CASE_REOPENED") == 3 and events.count("REFERRAL_PROPOSED") == 3
        # path B: the lead supervising unit is told to draft
        path_b = await pool.fetch("SELECT recipient_unit FROM outbox WHERE lookback_id = $1 AND body LIKE $2",
                                  cid, f"%{nos[2]}%拟按%")
        assert LEAD.unit in {r["recipient_unit"] for r in path_b}
        # the ledger chain holds
        rows = await pool.fetch("SELECT prev_hash, row_hash FROM lookback_ledger WHERE campaign_id = $1 ORDER BY seq", cid)
        assert all(b["prev_hash"] == a["row_hash"] for a, b in zip(rows, rows[1:], strict=False))

        # the report
        v = await LookbackReads(pool, LookbackPolicy()).view(OFFICE_USER, cid)
        assert v is not None
        from openpyxl import load_workbook

        wb = load_workbook(io.BytesIO(to_xlsx(v)))
        counts = {r[0]: r[1] for r in wb["汇总"].iter_rows(values_only=True) if r and r[0]}
        assert counts["选取案件 selected"] == 10 and counts["已核查 visited"] == 10
        assert counts["未核查 unvisited"] == 0 and counts["已重新整改 reopened"] == 3
        assert counts["问题反弹 REBOUND"] == 2 and counts["虚假整改 FAKE"] == 1 and counts["整改到位 IN_PLACE"] == 7
        assert counts["拟移交问责 referrals proposed"] == 3
        assert wb["核查结果"].max_row == 11
        pdf = to_pdf(v)
        assert pdf.startswith(b"%PDF")
        from pypdf import PdfReader

        text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
        assert "回头看报告" in text and nos[0] in text and "问题反弹" in text


async def test_sample_is_recorded_and_deterministic_and_office_may_close_early(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """A sample of 3 of 6 with seed 42 is exactly draw_sample's; a second selection is refused; the
    office closes with cases unvisited, which the campaign reports as unvisited."""
    prog = f"P-{uuid.uuid4().hex[:6]}"
    async with case_worker(ts_client, pool, task_queue):
        cases = await closed_cases(ts_env, ts_client, pool, task_queue, 6, prog)
        cid = await new_campaign(ts_env, ts_client, task_queue, prog, unannounced=False)
        res = await select_all(ts_client, cid, pool, sample_size=3, seed=42)
        state = await lc.campaign_state(ts_client, cid)
        assert res.selected == 3 and state.population == 6 and state.criteria.seed == 42
        assert [i.case_no for i in state.items] == draw_sample([c.case_no for c in cases], 3, 42)
        with pytest.raises(ActionRefusedError) as again:
            await select_all(ts_client, cid, pool)
        assert "selection is made once" in again.value.message
        with pytest.raises(ActionRefusedError) as not_selected:
            outside = next(c.case_no for c in cases if c.case_no not in {i.case_no for i in state.items})
            await find(ts_client, cid, pool, outside, CampaignFinding.IN_PLACE, actor=OFFICE)
        assert "not selected" in not_selected.value.message
        with pytest.raises(ActionRefusedError) as lead_close:
            await lc.close_campaign(ts_client, cid, CloseRequest(actor=LEAD, request_id=rid()), pool=pool)
        assert lead_close.value.error_type == "NotAuthorizedError"
        done = await lc.close_campaign(ts_client, cid, CloseRequest(actor=OFFICE, request_id=rid(), reason="期满"))
        assert done.stage is CampaignStage.CLOSED and done.unvisited == 3
        proj = await pool.fetchrow("SELECT * FROM lookback_projection WHERE campaign_id = $1", cid)
        assert proj["stage"] == "CLOSED" and proj["selected"] == 3 and proj["visited"] == 0


async def test_archived_case_is_reopened_by_a_campaign(
    ts_env: WorkflowEnvironment, ts_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    """A rebound found on an ARCHIVED case (its workflow completed) reopens it as a linked new cycle
    (workflows.reopen.reopen_case starts a new run of the same case from its kept final state)."""
    prog = f"P-{uuid.uuid4().hex[:6]}"
    async with case_worker(ts_client, pool, task_queue):
        cases = await closed_cases(ts_env, ts_client, pool, task_queue, 2, prog,
                                   policy=Policy(lookback_window_days=1))
        await ts_env.sleep(timedelta(days=3))  # past the look-back window: ARCHIVED
        assert (await cases[0].projection())["stage"] == "ARCHIVED"
        cid = await new_campaign(ts_env, ts_client, task_queue, prog)
        assert (await select_all(ts_client, cid, pool)).selected == 2
        await find(ts_client, cid, pool, cases[0].case_no, CampaignFinding.REBOUND, actor=OFFICE)
        state = await lc.campaign_state(ts_client, cid)
        item = next(i for i in state.items if i.case_no == cases[0].case_no)
        assert item.reopen is ReopenStatus.REOPENED, item.reopen_error
        # The case is back: a new run of the same case, rectifying, its ledger row naming the old run.
        assert (await cases[0].projection())["stage"] == "RECTIFYING"
        row = await pool.fetchrow("SELECT from_stage, data FROM ledger WHERE case_no = $1 AND event = 'REOPEN'",
                                  cases[0].case_no)
        assert row["from_stage"] == "ARCHIVED" and "previous_run_id" in str(row["data"])
