"""The office's runtime page (运行监控, issue 9): blocked cases with their error and UNBLOCK,
the watchdog's nudges; office and auditors only."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote

from tests.admin.conftest import Console, file_via_api
from tests.admin.test_console_http import _csrf, login


async def test_runtime_page_lists_blocked_cases_and_nudges_for_the_office_only(console: Console) -> None:
    now = datetime.now(UTC)
    await console.pool.execute(
        """INSERT INTO case_block (case_no, workflow_run_id, block_no, blocked_at, activity, error_type, message, origin)
           VALUES ('RT-BLOCKED-1', 'run-rt-1', 1, $1, 'record_case_events', 'PermanentDataError',
                   'CharacterNotInRepertoireError: invalid byte sequence for encoding "UTF8": 0x00', 'TRANSFER by office')
           ON CONFLICT DO NOTHING""", now)
    await console.pool.execute(
        """INSERT INTO watchdog_nudge (case_no, wake_at, what, late_seconds) VALUES ('RT-LATE-1', $1, 'RUNG WARNING_LETTER', 900)
           ON CONFLICT DO NOTHING""", now)

    office = await login(console, "office")
    page = await office.get("/runtime")
    assert page.status_code == 200
    assert "运行监控" in page.text and "Blocked cases" in page.text
    assert "RT-BLOCKED-1" in page.text and "PermanentDataError" in page.text and "0x00" in page.text
    assert "RT-LATE-1" in page.text and "RUNG WARNING_LETTER" in page.text
    assert 'action="/runtime/RT-BLOCKED-1/unblock"' in page.text

    auditor = await login(console, "auditor")
    seen = await auditor.get("/runtime")
    assert seen.status_code == 200 and "RT-BLOCKED-1" in seen.text and "/unblock" not in seen.text
    ru = await login(console, "ru")
    assert (await ru.get("/runtime")).status_code == 403

    # UNBLOCK of a case that is not blocked is refused by the workflow, and the page says why.
    case_no = await file_via_api(console, console.case_record())
    r = await office.post(f"/runtime/{case_no}/unblock",
                          data={"csrf_token": _csrf(page.text), "mode": "RETRY", "reason": "fixed"})
    assert r.status_code == 303
    assert "InvalidTransitionError" in unquote(r.headers["location"]) and "not blocked" in unquote(r.headers["location"])
    r = await ru.post(f"/runtime/{case_no}/unblock", data={"csrf_token": _csrf((await ru.get("/my")).text),
                                                          "mode": "RETRY", "reason": "x"})
    assert r.status_code == 403
