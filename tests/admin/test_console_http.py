"""The console over plain HTTP: login, sessions, CSRF, lock-out, pages, actions, export, import."""

from __future__ import annotations

import io
import re

import httpx
import pytest
from openpyxl import Workbook, load_workbook

from tests.admin.conftest import PASSWORD, Console, act_via_api, file_via_api, wait_projection

pytestmark = pytest.mark.devserver


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


async def login(c: Console, user: str, password: str = PASSWORD) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=c.url, timeout=60)
    page = await http.get("/login")
    r = await http.post("/login", data={"username": user, "password": password, "csrf_token": _csrf(page.text),
                                        "next": "/my"})
    assert r.status_code == 303, r.text
    return http


async def test_login_sets_a_server_side_session_and_logout_ends_it(console: Console) -> None:
    http = await login(console, "office")
    cookie = http.cookies.get("case_console_session")
    assert cookie and len(cookie) >= 40
    my = await http.get("/my")
    assert my.status_code == 200 and "我的待办" in my.text and "整改办" in my.text
    set_cookie = (await http.post("/login")).headers  # a POST without the login CSRF cookie token
    assert set_cookie is not None
    r = await http.post("/logout", data={"csrf_token": _csrf(my.text)})
    assert r.status_code == 303
    again = await http.get("/my")
    assert again.status_code == 303 and again.headers["location"].startswith("/login")
    await http.aclose()


async def test_session_cookie_flags(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as http:
        page = await http.get("/login")
        r = await http.post("/login", data={"username": "office", "password": PASSWORD,
                                            "csrf_token": _csrf(page.text)})
        sc = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("case_console_session=")]
        assert sc and "HttpOnly" in sc[0] and "SameSite=lax" in sc[0]


async def test_login_form_without_csrf_is_refused(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as http:
        await http.get("/login")
        r = await http.post("/login", data={"username": "office", "password": PASSWORD})
        assert r.status_code == 403 and "CSRF" in r.text


async def test_post_without_csrf_token_is_refused_and_nothing_recorded(console: Console) -> None:
    case_no = await file_via_api(console, console.case_record())
    http = await login(console, "office")
    before = await console.pool.fetchval("SELECT count(*) FROM ledger WHERE case_no = $1", case_no)
    r = await http.post(f"/cases/{case_no}/act/TRANSFER", data={"reason": "x"})
    assert r.status_code == 403 and "CSRF" in r.text
    r = await http.post(f"/cases/{case_no}/act/TRANSFER", data={"csrf_token": "forged"})
    assert r.status_code == 403
    assert await console.pool.fetchval("SELECT count(*) FROM ledger WHERE case_no = $1", case_no) == before
    await http.aclose()


async def test_repeated_failures_throttle_with_growing_delays_and_unlock_clears_them(console: Console) -> None:
    """No hard lock anyone can trigger: failures past CONSOLE_LOCKOUT_FAILURES=3 make the account
    wait (doubling from CONSOLE_THROTTLE_BASE_MS), then the right password works again."""
    async with httpx.AsyncClient(base_url=console.url) as http:
        token = _csrf((await http.get("/login")).text)
        for _ in range(3):
            r = await http.post("/login", data={"username": "lockme", "password": "wrong-password", "csrf_token": token})
            assert r.status_code == 401 and "用户名或密码错误" in r.text
        r = await http.post("/login", data={"username": "lockme", "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 429 and "too many attempts" in r.text and int(r.headers["retry-after"]) >= 1
    outcomes = [x["outcome"] for x in await console.pool.fetch(
        "SELECT outcome FROM login_attempt WHERE username = 'lockme' ORDER BY id")]
    assert outcomes[-4:] == ["FAILURE", "FAILURE", "FAILURE", "THROTTLED"]
    assert not await console.pool.fetchval("SELECT locked_until IS NOT NULL FROM console_user WHERE username = 'lockme'")
    p = await console.cli("admin", "unlock", "lockme", user=None)
    assert p.returncode == 0, p.stderr
    http = await login(console, "lockme")  # unlock clears the count: no wait
    await http.aclose()


async def test_case_page_shows_only_allowed_actions_and_a_refusal_shows_the_reason(console: Console) -> None:
    case_no = await file_via_api(console, console.case_record())
    office = await login(console, "office")
    page = await office.get(f"/cases/{case_no}")
    assert page.status_code == 200
    assert 'data-testid="open-TRANSFER"' in page.text and 'data-testid="open-AMEND"' in page.text
    assert "ACKNOWLEDGE" not in re.findall(r'data-testid="open-(\w+)"', page.text)
    r = await office.post(f"/cases/{case_no}/act/TRANSFER", data={"csrf_token": _csrf(page.text),
                                                                  "expected_stage": "REGISTERED"})
    assert r.status_code == 303
    page = await office.get(r.headers["location"])
    assert "已交办待签收" in page.text and "TRANSFERRED" in page.text
    # Acting again with a stale expected stage: the validator's reason is shown in the page.
    r = await office.post(f"/cases/{case_no}/act/AMEND", data={"csrf_token": _csrf(page.text), "am_title": "新标题"})
    assert r.status_code == 409
    assert "AMEND is not allowed in stage TRANSFERRED" in r.text
    auditor = await login(console, "auditor")
    page = await auditor.get(f"/cases/{case_no}")
    assert 'data-testid="no-actions"' in page.text
    r = await auditor.post(f"/cases/{case_no}/act/ACKNOWLEDGE", data={"csrf_token": _csrf(page.text)})
    assert r.status_code == 403 and "只读" in r.text
    for h in (office, auditor):
        await h.aclose()


async def test_escalation_proposal_forms_on_the_case_page(console: Console) -> None:
    """A lead's proposal shows on the case page; the 督查室 gets confirm/dismiss forms with the pending
    proposal to choose, and confirming through the form puts the rung in effect."""
    case_no = await file_via_api(console, console.case_record())
    await act_via_api(console, "office", case_no, "TRANSFER")
    await act_via_api(console, "ru", case_no, "ACKNOWLEDGE")
    lead = await login(console, "lead")
    page = await lead.get(f"/cases/{case_no}")
    assert 'data-testid="open-PROPOSE_RUNG"' in page.text and "提出拟采取督办措施" in page.text
    assert 'data-testid="open-CONFIRM_ESCALATION"' not in page.text
    r = await lead.post(f"/cases/{case_no}/act/PROPOSE_RUNG", data={
        "csrf_token": _csrf(page.text), "rung": "SUMMONS", "reason": "多次调度无进展"})
    assert r.status_code == 303, r.text
    dcs = await login(console, "duchashi")
    page = await dcs.get(f"/cases/{case_no}")
    assert 'data-testid="proposals"' in page.text and "待确认 pending" in page.text
    form = page.text.split('data-testid="form-CONFIRM_ESCALATION"')[1].split("</form>")[0]
    assert '<option value="P1">' in form and "拟采取措施 (escalation proposal)" in form
    assert 'name="report_ref"' in form and 'data-testid="open-DISMISS_ESCALATION"' in page.text
    r = await dcs.post(f"/cases/{case_no}/act/CONFIRM_ESCALATION", data={
        "csrf_token": _csrf(page.text), "proposal_id": "P1", "reason": "约谈县政府主要负责人", "report_ref": ""})
    assert r.status_code == 303, r.text
    page = await dcs.get(r.headers["location"])
    assert "已确认" in page.text or "CONFIRMED" in page.text
    assert "约谈" in page.text
    for h in (lead, dcs):
        await h.aclose()


async def test_list_filters_paging_and_export(console: Console) -> None:
    nos = [await file_via_api(console, console.case_record()) for _ in range(2)]
    await act_via_api(console, "office", nos[0], "TRANSFER")
    http = await login(console, "lead")
    r = await http.get("/cases", params={"stage": "TRANSFERRED", "q": nos[0]})
    assert r.status_code == 200 and nos[0] in r.text and nos[1] not in r.text
    r = await http.get("/cases", params={"page_size": "1", "page": "2"})
    assert "第 2 / " in r.text and "page_size=1" in r.text
    r = await http.get("/cases", params={"stage": "NOPE"})
    assert r.status_code == 400 and "unknown stage" in r.text
    x = await http.get("/cases/export.xlsx", params={"stage": "TRANSFERRED"})
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0].startswith("案件编号") and any(r[0] == nos[0] for r in rows[1:])
    assert all(r[4] == "TRANSFERRED" for r in rows[1:])
    csv = await http.get("/cases/export.csv", params={"q": nos[1]})
    lines = csv.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith(nos[1])
    dash = await http.get("/dashboard")
    assert dash.status_code == 200 and "每月销号" in dash.text and "<svg" in dash.text
    await http.aclose()


async def test_file_form_and_import_batch_with_a_per_row_report(console: Console) -> None:
    http = await login(console, "office")
    page = await http.get("/file")
    good = console.case_record()
    r = await http.post("/file", data={
        "csrf_token": _csrf(page.text), "case_no": good["case_no"], "kind": "FEEDBACK_PROBLEM",
        "title": good["title"], "target": good["target"], "measures": "建设设施\n开展修复",
        "responsible_units": "蓝山县人民政府", "lead_supervising_units": "市生态环境局\n市水利局",
        "deadline": "2030年6月30日",
    })
    assert r.status_code == 303, r.text
    page = await http.get(r.headers["location"])
    assert "建档立案" in page.text and "2030年6月30日" in page.text
    r = await http.post("/file", data={"csrf_token": _csrf(page.text), "case_no": good["case_no"], "kind": "FEEDBACK_PROBLEM",
                                       "title": "x"})
    assert r.status_code == 409 and "already filed" in r.text

    wb = Workbook()
    ws = wb.active
    ws.append(["案件编号", "类型", "标题", "整改目标", "整改措施", "主体责任单位", "牵头督导单位", "整改时限"])
    ok_no, bad_no = f"{good['case_no']}-X1", f"{good['case_no']}-X2"
    ws.append([ok_no, "反馈问题", "导入案件", "目标", "措施一\n措施二", "蓝山县人民政府", "市生态环境局", "2030年1月31日"])
    ws.append([bad_no, "反馈问题", "坏时限", "目标", "措施", "蓝山县人民政府", "市生态环境局", "明年再说"])
    ws.append([ok_no, "反馈问题", "重复", "目标", "措施", "蓝山县人民政府", "市生态环境局", "2030年1月31日"])
    ws.append(["bad no!", "FEEDBACK_PROBLEM", "坏编号"])
    buf = io.BytesIO()
    wb.save(buf)
    page = await http.get("/import")
    r = await http.post("/import", data={"csrf_token": _csrf(page.text)},
                        files={"file": ("batch.xlsx", buf.getvalue(), "application/octet-stream")})
    assert r.status_code == 200, r.text
    report = r.text
    assert "立案 1 件,拒绝 3 件" in report
    assert "明年再说" in report and "appears twice" in report and "case_no" in report
    assert await console.pool.fetchval("SELECT count(*) FROM case_projection WHERE case_no = $1", bad_no) == 0
    await http.aclose()


async def test_sessions_expire_when_idle_and_at_their_absolute_limit(console: Console) -> None:
    from admin import auth
    from admin.users import get_user
    from config import Settings

    settings = Settings(console_session_idle_minutes=30, console_session_max_hours=12)
    user = await get_user(console.pool, "office")
    assert user is not None
    idle, _ = await auth.create_session(console.pool, settings, user)
    old, _ = await auth.create_session(console.pool, settings, user)
    fresh, _ = await auth.create_session(console.pool, settings, user)
    await console.pool.execute("UPDATE console_session SET last_seen_at = now() - interval '31 minutes' "
                               "WHERE token_hash = $1", auth.token_hash(idle))
    await console.pool.execute("UPDATE console_session SET expires_at = now() - interval '1 second' "
                               "WHERE token_hash = $1", auth.token_hash(old))
    assert await auth.load_session(console.pool, settings, idle) is None
    assert await auth.load_session(console.pool, settings, old) is None
    live = await auth.load_session(console.pool, settings, fresh)
    assert live is not None and live.user.username == "office"
    gone = await console.pool.fetchval("SELECT count(*) FROM console_session WHERE token_hash = ANY($1)",
                                       [auth.token_hash(idle), auth.token_hash(old)])
    assert gone == 0, "expired sessions are deleted"
    async with httpx.AsyncClient(base_url=console.url, cookies={"case_console_session": idle}) as http:
        r = await http.get("/my")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_api_tokens_resolve_the_user_and_auditors_only_read(console: Console) -> None:
    async with console.api("auditor") as http:
        me = (await http.get("/api/v1/me")).json()
        assert me["roles"] == ["AUDITOR"]
        assert (await http.get("/api/v1/cases")).status_code == 200
        r = await http.post("/api/v1/cases", json=console.case_record())
        assert r.status_code == 403 and "read-only" in r.json()["message"]
    case_no = await file_via_api(console, console.case_record())
    async with console.api("office") as http:
        r = await http.post(f"/api/v1/cases/{case_no}/actions/TRANSFER",
                            json={"actor": {"user_id": "ru", "role": "RESPONSIBLE_UNIT", "unit": "蓝山县人民政府"}})
        assert r.status_code == 422 and "actor comes from the login or API token" in r.json()["message"]
    async with httpx.AsyncClient(base_url=console.url) as http:
        assert (await http.get("/api/v1/cases")).status_code == 401


async def test_audit_page_reads_the_history_checks_the_ledger_and_exports(console: Console) -> None:
    no = await file_via_api(console, console.case_record())
    await act_via_api(console, "office", no, "TRANSFER")
    await act_via_api(console, "ru", no, "ACKNOWLEDGE")
    await wait_projection(console, no, "RECTIFYING")

    auditor = await login(console, "auditor")
    idx = await auditor.get("/audit")
    assert idx.status_code == 200 and "审计" in idx.text
    page = await auditor.get(f"/audit/cases/{no}")
    assert page.status_code == 200, page.text
    timeline = page.text.split('data-testid="audit-timeline"', 1)[1]
    for label in ("交办", "签收", "期限"):  # human actions and the deadlines, from the history
        assert label in timeline, label
    verdict = page.text.split('data-testid="audit-verdict"', 1)[1].split("</section>", 1)[0]
    assert "哈希链完整" in verdict and "flash err" not in verdict

    html_export = await auditor.get(f"/audit/cases/{no}/timeline.html")
    assert html_export.status_code == 200 and no in html_export.text and "交办" in html_export.text
    assert "attachment" in html_export.headers["content-disposition"]
    pdf = await auditor.get(f"/audit/cases/{no}/timeline.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert (await auditor.get("/audit/cases/NO-SUCH-CASE")).status_code == 404
    await auditor.aclose()

    unit = await login(console, "ru")
    refused = await unit.get(f"/audit/cases/{no}")
    assert refused.status_code == 403 and "审计" in refused.text
    assert 'href="/audit"' not in (await unit.get("/my")).text
    await unit.aclose()
