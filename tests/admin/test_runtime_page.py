"""The office's runtime page (运行监控, issue 9): blocked cases with their error and UNBLOCK,
the watchdog's nudges; office and auditors only."""

from __future__ import annotations

import json
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


async def test_casectl_lists_blocked_cases_and_its_unblock_is_authorised_validated_and_recorded(
        console: Console) -> None:
    """casectl runtime / unblock speak /api/v1/runtime and /api/v1/cases/{case}/unblock: the office
    and auditors read, only the office unblocks, bad input is refused naming the field, and a refused
    UNBLOCK is kept in refused_action like any refused action."""
    now = datetime.now(UTC)
    await console.pool.execute(
        """INSERT INTO case_block (case_no, workflow_run_id, block_no, blocked_at, activity, error_type, message, origin)
           VALUES ('RT-CLI-1', 'run-rt-cli-1', 1, $1, 'record_case_events', 'PermanentDataError',
                   'value too long for type character varying(64)', 'ACKNOWLEDGE by ru')
           ON CONFLICT DO NOTHING""", now)

    listed = await console.cli("runtime")
    assert listed.returncode == 0, listed.stderr
    assert "RT-CLI-1" in listed.stdout and "PermanentDataError" in listed.stdout and "casectl unblock" in listed.stdout
    as_json = await console.cli("runtime", "--json", user="auditor")
    assert as_json.returncode == 0, as_json.stderr
    assert "RT-CLI-1" in {b["case_no"] for b in json.loads(as_json.stdout)["blocked"]}
    denied = await console.cli("runtime", user="ru")
    assert denied.returncode == 4 and "NotAuthorizedError" in denied.stderr

    # A case that is not blocked: the workflow refuses, casectl exits 3, refused_action keeps it.
    case_no = await file_via_api(console, console.case_record())
    refused = await console.cli("unblock", case_no, "--reason", "DBA widened the column", "--request-id", "cli-ub-1")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "InvalidTransitionError" in refused.stderr and "not blocked" in refused.stderr
    row = await console.pool.fetchrow(
        "SELECT action, actor_role, error_type FROM refused_action WHERE case_no = $1 AND request_id = $2",
        case_no, "console-cli-ub-1")
    assert row is not None and dict(row) == {"action": "UNBLOCK", "actor_role": "RECTIFICATION_OFFICE",
                                             "error_type": "InvalidTransitionError"}
    for user in ("lead", "auditor"):  # not the office: refused before anything reaches the case
        p = await console.cli("unblock", case_no, "--reason", "x", user=user)
        assert p.returncode == 4 and "NotAuthorizedError" in p.stderr, (user, p.stderr)

    async with console.api("office") as api:
        r = await api.post(f"/api/v1/cases/{case_no}/unblock", json={"mode": "BOGUS", "reason": "x"})
        assert r.status_code == 422 and "unknown mode 'BOGUS'" in r.json()["message"]
        r = await api.post(f"/api/v1/cases/{case_no}/unblock", json={"reason": "fixed\x00"})
        assert r.status_code == 422 and r.json()["error"] == "InvalidInput" and "reason" in r.json()["message"]
        r = await api.post("/api/v1/cases/NO-SUCH-CASE-1/unblock", json={"reason": "fixed"})
        assert r.status_code == 404 and r.json()["error"] == "CaseNotFoundError"
