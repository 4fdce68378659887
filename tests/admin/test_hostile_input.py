"""Hostile input and abuse against the real console, worker and Temporal dev server (issue 10).

One test (or a few) per finding of the issue's table, except read scoping: the request,
the refusal (status and message), and proof that nothing was recorded (ledger, workflow
history, outbox, users). The pure rules behind them are in tests/unit/test_hostile_domain.py.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import threading
import uuid
import zipfile
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import Workbook
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError

from admin import auth
from admin.users import create_user
from config import Settings
from domain.calendar import local_date
from domain.enums import Action, Stage
from domain.model import ActionRequest, Actor, CaseFiling
from domain.signing import sign
from tests.admin.conftest import PASSWORD, Console, act_via_api, file_via_api
from tests.harness import LEAD2, OFFICE, PUBLIC, RU, CaseDriver, make_filing
from worker import build_worker
from workflows import client as ops

pytestmark = pytest.mark.devserver


def _due() -> date:
    return local_date(datetime.now(UTC)) + timedelta(days=120)


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


async def _login(c: Console, user: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=c.url, timeout=60)
    page = await http.get("/login")
    r = await http.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": _csrf(page.text)})
    assert r.status_code == 303, r.text
    return http


async def _trace(c: Console, case_no: str) -> dict[str, Any]:
    """Everything an accepted action would leave: ledger rows, notices, accepted Updates, stage."""
    h = c.env.client.get_workflow_handle(f"case-{case_no}")
    events = [e async for e in h.fetch_history_events()]
    return {
        "ledger": await c.pool.fetchval("SELECT count(*) FROM ledger WHERE case_no = $1", case_no),
        "outbox": await c.pool.fetchval("SELECT count(*) FROM outbox WHERE case_no = $1", case_no),
        "updates": sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED for e in events),
        "stage": await c.pool.fetchval("SELECT stage FROM case_projection WHERE case_no = $1", case_no),
    }


async def _transferred(c: Console) -> str:
    case_no = await file_via_api(c, c.case_record())
    await act_via_api(c, "office", case_no, "TRANSFER")
    await _settled(c, case_no, "TRANSFERRED")
    return case_no


async def _settled(c: Console, case_no: str, stage: str) -> None:
    for _ in range(150):
        if await c.pool.fetchval("SELECT stage FROM case_projection WHERE case_no = $1", case_no) == stage:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{case_no} did not reach {stage}")


# ------------------------------------------------------------------ NUL and control characters


async def test_a_nul_in_a_reason_is_refused_by_the_api_and_the_form_with_nothing_recorded(console: Console) -> None:
    case_no = await _transferred(console)
    before = await _trace(console, case_no)
    async with console.api("ru") as http:
        r = await http.post(f"/api/v1/cases/{case_no}/actions/ACKNOWLEDGE", json={"reason": "签收\x00"})
    assert r.status_code == 422 and r.json()["error"] == "InvalidInput"
    assert "reason" in r.json()["message"] and "U+0000 (NUL)" in r.json()["message"]
    ru = await _login(console, "ru")
    page = await ru.get(f"/cases/{case_no}")
    r = await ru.post(f"/cases/{case_no}/act/ACKNOWLEDGE", data={"csrf_token": _csrf(page.text),
                                                                 "reason": "签收\x1b[2J"})
    assert r.status_code == 409 and "U+001B (ESC)" in r.text
    await ru.aclose()
    assert await _trace(console, case_no) == before


async def test_a_hostile_temporal_client_cannot_wedge_a_case_with_a_nul(console: Console) -> None:
    """Past the console (straight to Temporal): the Update is rejected while decoding, so nothing
    enters history, the refusal is recorded (made storable), and the case still moves."""
    case_no = await _transferred(console)
    before = await _trace(console, case_no)
    rid = f"hostile-{uuid.uuid4().hex[:8]}"
    req = ActionRequest.model_construct(action=Action.ACKNOWLEDGE, actor=RU, request_id=rid, reason="签收\x00")
    with pytest.raises(ops.ActionRefusedError) as e:
        await ops.act(console.env.client, case_no, req, pool=console.pool)
    assert e.value.error_type == "InvalidInput" and "reason" in e.value.message and "NUL" in e.value.message
    assert await _trace(console, case_no) == before
    row = await console.pool.fetchrow("SELECT * FROM refused_action WHERE case_no = $1 AND request_id = $2",
                                      case_no, rid)
    assert row is not None and row["error_type"] == "InvalidInput" and "\x00" not in row["message"]
    await ops.act(console.env.client, case_no,
                  ActionRequest(action=Action.ACKNOWLEDGE, actor=RU, request_id=rid + "-ok"), pool=console.pool)
    await _settled(console, case_no, "RECTIFYING")


async def test_a_filing_with_a_nul_title_is_refused_before_its_number_is_taken(console: Console) -> None:
    record = console.case_record()
    async with console.api("office") as http:
        r = await http.post("/api/v1/cases", json=dict(record, title="标题\x00"))
        assert r.status_code == 422 and "title" in r.json()["message"] and "NUL" in r.json()["message"]
    with pytest.raises(RPCError):
        await console.env.client.get_workflow_handle(f"case-{record['case_no']}").describe()
    # Straight through the client library with a model built without validation: refused too.
    forged = CaseFiling.model_construct(**{**make_filing(case_no=record["case_no"]).__dict__, "title": "x\x00"})
    outcome = await ops.file_case(console.env.client, forged, OFFICE, console.task_queue)
    assert not outcome.filed and "title" in outcome.reason
    with pytest.raises(RPCError):
        await console.env.client.get_workflow_handle(f"case-{record['case_no']}").describe()
    assert await file_via_api(console, record) == record["case_no"]  # the number is still free


async def test_bad_filter_and_paging_values_give_400_never_500(console: Console) -> None:
    http = await _login(console, "office")
    for params, msg in [({"page": str(2**70)}, "page must be at most"), ({"q": "湘江\x00"}, "'q'"),
                        ({"unit": "\x1b[31m"}, "U+001B"), ({"page_size": "9" * 40}, "page_size"),
                        ({"round": "x" * 300}, "filter round")]:
        r = await http.get("/cases", params=params)
        assert r.status_code == 400 and msg in r.text, (params, r.status_code)
        r = await http.get("/cases/export.csv", params=params)
        assert r.status_code == 400 and msg in r.json()["message"]
        async with console.api("office") as api:
            r = await api.get("/api/v1/cases", params=params)
            assert r.status_code == 400 and r.json()["error"] == "InvalidInput" and msg in r.json()["message"]
    # A control character anywhere in a URL: refused before any route runs (PostgreSQL would 500).
    for url in ("/cases/X%00", "/cases/X%1B%5B2J", "/audit/cases/A%00", "/login?next=/my%0d%0aSet-Cookie:x=1"):
        r = await http.get(url)
        assert r.status_code == 400 and "control character" in r.json()["message"], url
    async with console.api("office") as api:
        r = await api.get("/api/v1/cases/X%00")
        assert r.status_code == 400 and "U+0000" in r.json()["message"]
        r = await api.post("/api/v1/cases/X%00/actions/TRANSFER", json={})
        assert r.status_code == 400
    await http.aclose()


# ------------------------------------------------------------------ login


async def test_concurrent_wrong_logins_hash_off_the_event_loop(console: Console, monkeypatch: Any) -> None:
    """argon2 runs in a worker thread: checked in-process on the thread that verified, and over
    HTTP an unrelated request is answered while 16 wrong logins are in flight."""
    threads: list[int] = []
    real = auth.verify_password

    def spy(stored: str, password: str) -> bool:
        threads.append(threading.get_ident())
        return real(stored, password)

    monkeypatch.setattr(auth, "verify_password", spy)
    settings = Settings(console_lockout_failures=100, console_throttle_address_failures=100)
    results = await asyncio.gather(*(auth.login(console.pool, settings, f"nobody-{i}", "wrong", "192.0.2.1")
                                     for i in range(4)), return_exceptions=True)
    assert all(isinstance(r, auth.LoginError) for r in results)
    assert len(threads) == 4 and threading.get_ident() not in threads

    async with httpx.AsyncClient(base_url=console.url, timeout=120) as http:
        token = _csrf((await http.get("/login")).text)

        async def wrong(i: int) -> int:
            r = await http.post("/login", data={"username": f"ghost-{uuid.uuid4().hex[:6]}-{i}",
                                                "password": "wrong-password", "csrf_token": token})
            return r.status_code

        logins = [asyncio.create_task(wrong(i)) for i in range(16)]
        other = await http.get("/static/style.css")
        assert other.status_code == 200
        assert await asyncio.gather(*logins) == [401] * 16


async def test_unknown_locked_disabled_and_wrong_password_get_the_same_answer(console: Console,
                                                                             monkeypatch: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    names = {k: f"h-{k}-{tag}" for k in ("ok", "disabled", "locked")}
    for n in names.values():
        await create_user(console.pool, n, PASSWORD, "整改办", ["RECTIFICATION_OFFICE"])
    await console.pool.execute("UPDATE console_user SET disabled = true WHERE username = $1", names["disabled"])
    await console.pool.execute("UPDATE console_user SET locked_until = now() + interval '1 hour' WHERE username = $1",
                               names["locked"])
    hashed: list[str] = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda h, p: hashed.append(h) or real(h, p))
    settings = Settings(console_throttle_address_failures=100)
    answers = []
    for user, pw in [(f"h-unknown-{tag}", PASSWORD), (names["ok"], "wrong-password"),
                     (names["disabled"], PASSWORD), (names["locked"], PASSWORD)]:
        with pytest.raises(auth.LoginError) as e:
            await auth.login(console.pool, settings, user, pw, "192.0.2.2")
        answers.append(str(e.value))
    assert set(answers) == {auth.GENERIC_LOGIN_ERROR}
    assert len(hashed) == 4  # one argon2 check each, a dummy hash for the unknown name: comparable time
    async with httpx.AsyncClient(base_url=console.url) as http:
        token = _csrf((await http.get("/login")).text)
        pages = [await http.post("/login", data={"username": u, "password": PASSWORD, "csrf_token": token})
                 for u in (f"h-unknown-{tag}", names["disabled"], names["locked"])]
    assert {p.status_code for p in pages} == {401}
    assert len({re.sub(r'value="[^"]*"', "", p.text) for p in pages}) == 1  # same page but the echoed name


async def test_the_throttle_counts_per_address_and_never_locks_an_account(console: Console) -> None:
    tag = uuid.uuid4().hex[:6]
    user = f"h-addr-{tag}"
    await create_user(console.pool, user, PASSWORD, "整改办", ["RECTIFICATION_OFFICE"])
    settings = Settings(console_lockout_failures=100, console_throttle_address_failures=3,
                        console_throttle_base_ms=60_000)
    spray = f"203.0.113.{int(tag, 16) % 250}"
    for i in range(3):  # password spraying: one try each on many names, from one address
        with pytest.raises(auth.LoginError):
            await auth.login(console.pool, settings, f"victim-{i}-{tag}", "wrong-password", spray)
    with pytest.raises(auth.ThrottledError) as e:
        await auth.login(console.pool, settings, user, PASSWORD, spray)
    assert e.value.retry_after >= 1 and "too many attempts" in str(e.value)
    assert (await auth.login(console.pool, settings, user, PASSWORD, "198.51.100.9")).username == user
    row = await console.pool.fetchrow("SELECT locked_until, disabled FROM console_user WHERE username = $1", user)
    assert row["locked_until"] is None and not row["disabled"]


async def test_login_usernames_are_bounded_before_anything_is_stored(console: Console) -> None:
    huge = "a" * 5000 + "\x00\x1b[2J"
    async with httpx.AsyncClient(base_url=console.url) as http:
        token = _csrf((await http.get("/login")).text)
        r = await http.post("/login", data={"username": huge, "password": "x", "csrf_token": token})
    assert r.status_code == 401
    stored = await console.pool.fetchval(
        "SELECT username FROM login_attempt WHERE username LIKE 'aaaa%' ORDER BY id DESC LIMIT 1")
    assert stored == "a" * 64
    assert await console.pool.fetchval("SELECT count(*) FROM console_user WHERE username LIKE 'aaaa%'") == 0


# ------------------------------------------------------------------ uploads


def _xlsx(rows: list[list[Any]], pad: int = 0) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["case_no", "kind", "title", "responsible_units", "lead_supervising_units", "deadline"])
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    if not pad:
        return buf.getvalue()
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as z:  # a zip bomb: tiny, huge unzipped
        z.writestr("xl/media/pad.bin", b"\0" * pad)
    return buf.getvalue()


async def test_an_upload_by_a_non_office_user_is_refused_before_it_is_parsed(console: Console) -> None:
    bomb = _xlsx([], pad=9 * 1024 * 1024)
    assert len(bomb) < 100_000
    ru = await _login(console, "ru")
    r = await ru.post("/import", files={"file": ("bomb.xlsx", bomb)})  # not even a CSRF token: refused first
    assert r.status_code == 403 and "only the rectification office" in r.text
    await ru.aclose()
    async with console.api("ru") as http:
        r = await http.post("/api/v1/import", content=b"[" + b"{}," * 1000 + b"{}]")
        assert r.status_code == 403 and r.json()["error"] == "NotAuthorizedError"
    office = await _login(console, "office")
    page = await office.get("/import")
    r = await office.post("/import", data={"csrf_token": _csrf(page.text)}, files={"file": ("bomb.xlsx", bomb)})
    assert r.status_code == 422 and "CONSOLE_IMPORT_MAX_UNZIPPED_BYTES" in r.text
    await office.aclose()


async def test_upload_limits_on_size_rows_and_cells_name_the_limit(console: Console) -> None:
    office = await _login(console, "office")
    page = await office.get("/import")
    big = b"x" * (2 * 1024 * 1024 + 10)
    r = await office.post("/import", data={"csrf_token": _csrf(page.text)}, files={"file": ("big.json", big)})
    assert r.status_code == 413 and "CONSOLE_UPLOAD_MAX_BYTES" in r.json()["message"]

    async def chunks():  # no Content-Length: counted as it streams
        for _ in range(3):
            yield b" " * (1024 * 1024)

    async with console.api("office") as http:
        r = await http.post("/api/v1/import", content=chunks())
        assert r.status_code == 413 and "CONSOLE_UPLOAD_MAX_BYTES" in r.json()["message"]
        records = [console.case_record() for _ in range(101)]
        r = await http.post("/api/v1/import", json=records)
        assert r.status_code == 422 and "CONSOLE_IMPORT_MAX_ROWS" in r.json()["message"]
    filed = await console.pool.fetchval("SELECT count(*) FROM case_projection WHERE case_no = ANY($1)",
                                        [x["case_no"] for x in records])
    assert filed == 0
    no = f"XL-{uuid.uuid4().hex[:6]}"
    sheet = _xlsx([[no, "FEEDBACK_PROBLEM", "长" * 20_001, "蓝山县人民政府", "市生态环境局", "2031年3月"]])
    r = await office.post("/import", data={"csrf_token": _csrf(page.text)}, files={"file": ("long.xlsx", sheet)})
    assert r.status_code == 200 and "a cell holds at most 20000" in r.text
    many = _xlsx([[f"{no}-{i}", "FEEDBACK_PROBLEM", "t", "u", "l", "2031年3月"] for i in range(101)])
    r = await office.post("/import", data={"csrf_token": _csrf(page.text)}, files={"file": ("many.xlsx", many)})
    assert r.status_code == 422 and "CONSOLE_IMPORT_MAX_ROWS" in r.text
    assert await console.pool.fetchval("SELECT count(*) FROM case_projection WHERE case_no LIKE $1", no + "%") == 0
    await office.aclose()


# ------------------------------------------------------------------ exports


async def test_formula_text_is_exported_as_text(console: Console) -> None:
    title = "=HYPERLINK(\"http://evil.example\",\"点我\")"
    case_no = await file_via_api(console, dict(console.case_record(), title=title))
    async with console.api("office") as http:
        r = await http.get("/api/v1/export.csv", params={"q": case_no})
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert rows[1][0] == case_no and rows[1][2] == "'" + title
        x = await http.get("/api/v1/export.xlsx", params={"q": case_no})
    with zipfile.ZipFile(io.BytesIO(x.content)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet and "HYPERLINK" in (sheet + z.read("xl/sharedStrings.xml").decode()
                                                  if "xl/sharedStrings.xml" in z.namelist() else sheet)


# ------------------------------------------------------------------ request ids


async def test_another_users_request_id_never_returns_their_result(console: Console) -> None:
    case_no = await file_via_api(console, console.case_record())
    rid = f"shared-{uuid.uuid4().hex[:6]}"
    async with console.api("office") as http:
        first = await http.post(f"/api/v1/cases/{case_no}/actions/TRANSFER", json={"request_id": rid})
        again = await http.post(f"/api/v1/cases/{case_no}/actions/TRANSFER", json={"request_id": rid})
    assert first.status_code == 200 and again.json() == first.json()  # the same user's retry runs once
    await _settled(console, case_no, "TRANSFERRED")
    before = await _trace(console, case_no)
    async with console.api("ru") as http:
        r = await http.post(f"/api/v1/cases/{case_no}/actions/ACKNOWLEDGE", json={"request_id": rid})
    assert r.status_code == 409 and r.json()["error"] == "DuplicateRequestError"
    assert r.json() != first.json() and "already processed" in r.json()["message"]
    assert await _trace(console, case_no) == before
    rows = await console.pool.fetch("SELECT actor_user, error_type FROM refused_action WHERE case_no = $1", case_no)
    assert [(x["actor_user"], x["error_type"]) for x in rows] == [("ru", "DuplicateRequestError")]
    assert await console.pool.fetchval(
        "SELECT count(*) FROM ledger WHERE case_no = $1 AND event = 'TRANSFER'", case_no) == 1


# ------------------------------------------------------------------ objections


async def test_an_objection_flood_is_refused_saying_why(console: Console) -> None:
    c = CaseDriver(console.env.client, console.pool, console.task_queue, make_filing(due=_due()))
    assert (await c.file()).filed
    await c.do(Action.TRANSFER, OFFICE)
    await c.do(Action.ACKNOWLEDGE, RU)
    await c.do(Action.SUBMIT_COMPLETION, RU, evidence=["doc:completion-report"])
    await c.do(Action.PRELIM_PASS, LEAD2)
    assert await c.stage() is Stage.PUBLIC_POSTING
    await c.do(Action.OBJECT, PUBLIC, reason="河道仍有异味")
    await _settled(console, c.case_no, "PUBLIC_POSTING")
    before = await _trace(console, c.case_no)
    with pytest.raises(ops.ActionRefusedError) as e:
        await c.do(Action.OBJECT, PUBLIC, reason="再提一次")
    assert e.value.error_type == "RateLimitedError" and "already has 1 open objection" in e.value.message
    assert await _trace(console, c.case_no) == before
    for i in range(2):
        await c.do(Action.DISMISS_OBJECTION, OFFICE, reason="无关")
        await c.do(Action.OBJECT, PUBLIC, reason=f"新的异议 {i}")
    await c.do(Action.DISMISS_OBJECTION, OFFICE, reason="无关")
    before = await _trace(console, c.case_no)
    with pytest.raises(ops.ActionRefusedError) as e:
        await c.do(Action.OBJECT, PUBLIC, reason="第四次")
    assert e.value.error_type == "RateLimitedError" and "at most 3 a day" in e.value.message
    assert await _trace(console, c.case_no) == before
    assert await console.pool.fetchval(
        "SELECT count(*) FROM refused_action WHERE case_no = $1 AND error_type = 'RateLimitedError'", c.case_no) == 2
    other = Actor(user_id="citizen-2", role=PUBLIC.role)
    await c.do(Action.OBJECT, other, reason="另一位群众的异议")  # the limit is per person


async def test_a_burst_of_objections_gets_exactly_one_through(console: Console) -> None:
    """Twenty Updates at once land in one or a few workflow tasks: the validator counts the
    accepted-but-not-yet-applied ones, so the limit holds for a burst too."""
    c = CaseDriver(console.env.client, console.pool, console.task_queue, make_filing(due=_due()))
    assert (await c.file()).filed
    for action, actor, extra in [(Action.TRANSFER, OFFICE, {}), (Action.ACKNOWLEDGE, RU, {}),
                                 (Action.SUBMIT_COMPLETION, RU, {"evidence": ["doc:report"]}),
                                 (Action.PRELIM_PASS, LEAD2, {})]:
        await c.do(action, actor, **extra)
    results = await asyncio.gather(*(c.do(Action.OBJECT, PUBLIC, reason=f"异议 {i}") for i in range(20)),
                                   return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, ops.ActionRefusedError)]
    assert len(accepted) == 1 and len(refused) == 19, results
    # Under load the server may abort some Updates of a burst before any validator sees them
    # ("workflow update was aborted"): refused too, and nothing recorded either way.
    kinds = {r.error_type for r in refused}
    assert "RateLimitedError" in kinds and kinds <= {"RateLimitedError", "RPCError"}, kinds
    assert await console.pool.fetchval(
        "SELECT count(*) FROM ledger WHERE case_no = $1 AND event = 'OBJECT'", c.case_no) == 1
    assert len((await c.state()).posting.objections) == 1


# ------------------------------------------------------------------ casectl, headers


async def test_casectl_prints_escape_sequences_visibly(console: Console) -> None:
    case_no = await file_via_api(console, console.case_record())
    # Text stored before the models refused control characters (or written by another tool).
    await console.pool.execute("UPDATE case_projection SET title = $2 WHERE case_no = $1", case_no,
                               "旧标题\x1b]0;pwned\x07\x1b[2J")
    for args in (("list", "--search", case_no), ("show", case_no)):
        p = await console.cli(*args)
        assert p.returncode == 0, p.stderr
        assert "\x1b" not in p.stdout and "\x07" not in p.stdout
    p = await console.cli("list", "--search", case_no)
    assert "\\x1b]0;pwned\\x07" in p.stdout
    async with console.api("office") as http:  # and the exports still work, showing them escaped
        x = await http.get("/api/v1/export.xlsx", params={"q": case_no})
        assert x.status_code == 200
        c = await http.get("/api/v1/export.csv", params={"q": case_no})
        assert "\\x1b]0;pwned" in c.content.decode("utf-8-sig") and "\x1b" not in c.content.decode("utf-8-sig")


async def test_security_headers_and_secure_cookies_over_tls(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as http:
        page = await http.get("/login")
        h = page.headers
        assert "default-src 'self'" in h["content-security-policy"] and "frame-ancestors 'none'" in \
            h["content-security-policy"] and "'unsafe-inline'" not in h["content-security-policy"]
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "same-origin" and h["cache-control"] == "no-store"
        assert "<script" not in page.text and "style=" not in page.text
        r = await http.post("/login", data={"username": "office", "password": PASSWORD,
                                            "csrf_token": _csrf(page.text)})
        plain = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
        assert plain and not any("Secure" in v for v in plain)
        my = await http.get("/my")
        assert my.headers["cache-control"] == "no-store" and "<script" not in my.text and " style=" not in my.text
        static = await http.get("/static/style.css")
        assert static.headers.get("cache-control") != "no-store" and static.headers["x-content-type-options"]
    async with httpx.AsyncClient(base_url=console.url, headers={"X-Forwarded-Proto": "https"}) as http:
        page = await http.get("/login")
        set_cookies = [v for k, v in page.headers.multi_items() if k == "set-cookie"]
        assert set_cookies and all("Secure" in v for v in set_cookies)
        login_cookie = set_cookies[0].split(";")[0]  # (httpx keeps Secure cookies off plain http: sent by hand)
        r = await http.post("/login", data={"username": "office", "password": PASSWORD,
                                            "csrf_token": _csrf(page.text)}, headers={"Cookie": login_cookie})
        assert r.status_code == 303, r.text
        cookies = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
        assert any(v.startswith("case_console_session=") and "Secure" in v for v in cookies)


# ------------------------------------------------------------------ signed requests


async def test_a_worker_with_a_signing_key_refuses_unsigned_and_forged_requests(console: Console) -> None:
    tq = f"tq-signed-{uuid.uuid4().hex[:6]}"
    key = b"test-signing-key"
    w = build_worker(console.env.client, console.pool, Settings(action_signing_key="test-signing-key"), tq)
    async with w:
        c = CaseDriver(console.env.client, console.pool, tq, make_filing(due=_due()))
        assert (await c.file()).filed
        await _settled(console, c.case_no, "REGISTERED")
        before = await _trace(console, c.case_no)

        def req(**kw: Any) -> ActionRequest:
            return ActionRequest(action=Action.TRANSFER, actor=OFFICE, request_id=f"s-{uuid.uuid4().hex[:8]}", **kw)

        genuine = req()
        forged_actor = genuine.model_copy(update={
            "actor": RU, "signature": sign(c.case_no, genuine, key)})
        for bad, keys, why in [(req(), (), "not signed"), (req(), (b"wrong-key",), "bad signature"),
                               (forged_actor, (), "bad signature")]:
            with pytest.raises(ops.ActionRefusedError) as e:
                await ops.act(console.env.client, c.case_no, bad, pool=console.pool, signing_keys=keys)
            assert e.value.error_type == "NotAuthorizedError" and why in e.value.message
        assert await _trace(console, c.case_no) == before
        assert await console.pool.fetchval(
            "SELECT count(*) FROM refused_action WHERE case_no = $1 AND error_type = 'NotAuthorizedError'",
            c.case_no) == 3
        await ops.act(console.env.client, c.case_no, genuine, pool=console.pool, signing_keys=(key,))
        await _settled(console, c.case_no, "TRANSFERRED")
