"""Issue 14: the office reopens an archived case by hand (console case page, casectl), through
workflows/reopen.py; other users are refused and recorded. Dev server, real worker, console process."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from domain.calendar import local_date
from domain.enums import Action
from tests.admin.conftest import Console, wait_projection
from tests.admin.test_console_http import login
from tests.harness import LEAD, OFFICE, RU, CaseDriver, criteria, make_filing
from workflows.reopen import latest_run


async def test_office_reopens_an_archived_case_from_the_case_page_and_casectl(console: Console) -> None:
    client = console.env.client
    today = local_date(datetime.now(UTC))
    c = CaseDriver(client, console.pool, console.task_queue, make_filing(due=today + timedelta(days=120)))
    assert (await c.file()).filed
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    await c.complete_measures()
    await c.do(Action.SUBMIT_COMPLETION, RU, evidence=["doc:completion-report"])
    await c.do(Action.PRELIM_PASS, LEAD)
    handle = client.get_workflow_handle(f"case-{c.case_no}")
    await console.env.fast_forward(handle, timedelta(days=8))
    await wait_projection(console, c.case_no, "CLOSURE_APPLICATION")
    await c.do(Action.APPLY_CLOSURE, RU)
    await c.do(Action.VERIFY_PASS, LEAD, criteria=criteria())
    await c.do(Action.RECORD_FILING, OFFICE)
    await console.env.fast_forward(handle, timedelta(days=366))
    await asyncio.wait_for(handle.result(), timeout=60)
    archived_run = (await latest_run(client, f"case-{c.case_no}")).run_id
    await wait_projection(console, c.case_no, "ARCHIVED")

    office = await login(console, "office")
    page = await office.get(f"/cases/{c.case_no}")
    assert page.status_code == 200 and f"/cases/{c.case_no}/act/REOPEN" in page.text  # the button is there
    ru = await login(console, "ru")
    page = await ru.get(f"/cases/{c.case_no}")
    assert page.status_code == 200 and "/act/REOPEN" not in page.text

    due = (today + timedelta(days=400)).isoformat()  # after today on either clock (the case's is skipped)
    refused = await console.cli("act", c.case_no, "REOPEN", "--lookback-finding", "REBOUND", "--reason", "回头看",
                                "--new-due-date", due, user="ru")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert await console.pool.fetchval(
        "SELECT count(*) FROM refused_action WHERE case_no = $1 AND actor_user = 'ru' AND action = 'REOPEN'",
        c.case_no) == 1
    assert (await latest_run(client, f"case-{c.case_no}")).run_id == archived_run  # nothing started

    done = await console.cli("act", c.case_no, "REOPEN", "--lookback-finding", "REBOUND",
                             "--reason", "回头看发现问题反弹", "--new-due-date", due)
    assert done.returncode == 0, done.stdout + done.stderr
    await wait_projection(console, c.case_no, "RECTIFYING")
    assert (await latest_run(client, f"case-{c.case_no}")).run_id != archived_run
    page = await office.get(f"/cases/{c.case_no}")
    assert "整改中" in page.text and "REOPEN" in page.text and due in page.text
    row = await console.pool.fetchrow(
        "SELECT from_stage, to_stage, data->>'previous_run_id' AS prev FROM ledger WHERE case_no = $1 AND event = 'REOPEN'",
        c.case_no)
    assert (row["from_stage"], row["to_stage"], row["prev"]) == ("ARCHIVED", "RECTIFYING", archived_run)
    await office.aclose()
    await ru.aclose()
    await handle.terminate("test finished")
