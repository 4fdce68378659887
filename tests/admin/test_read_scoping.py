"""Read scoping, route by route: every route and API endpoint of the console, as every demo role.

The routes are enumerated from the app itself (`app.routes`): a route this module has no
calls for fails `test_every_route_is_walked`, so a new page or endpoint cannot go
unscoped unnoticed. For every response the walk checks
- no case number the role may not see (by `domain.visibility`, computed over every case
  in the database) appears anywhere in it (HTML, JSON, CSV, the cells of an .xlsx);
- no sensitive text it may not see: the petitioner's contact, a referral's reason naming an
  official, another citizen's objection, refused attempts;
- case pages answer 200 exactly for the cases the role sees and 404 for the others; the
  case lists hold exactly the cases the role sees; pages a role does not open answer 403.
"""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from openpyxl import load_workbook

from admin import auth
from admin.users import get_user
from admin.web.app import create_app
from config import Settings
from domain.dispatch import dispatch_access
from domain.enums import REFERRED_JSONPATH
from domain.programme_scope import ProgrammeRead, programme_read
from domain.visibility import CaseFacts, HomeUnits, Part, Reader, View, may_view, parts_for
from tests.admin.conftest import Console, act_via_api, file_via_api, wait_projection
from tests.admin.test_dispatch import NOW_PERIOD, seed_dispatch_report
from tests.harness import LEAD, LEAD2, OTHER_RU, RU

pytestmark = pytest.mark.devserver

ROLES = ("office", "ru", "ru-other", "lead", "lead2", "discipline", "auditor", "citizen")
HOME = HomeUnits(office="整改办", discipline="纪委监委")
ASCII_NO = "A-Za-z0-9._-"
DISPATCH_PRG = f"SCOPE-PRG-{uuid.uuid4().hex[:6]}"  # a dispatch report over the seeded cases (issue 13)
LOOKBACK = f"SCOPE-LB-{uuid.uuid4().hex[:6]}"  # a look-back campaign (issue 14), no case selected


@dataclass
class Seeded:
    """Cases in known states, and the sensitive texts they hold."""

    referred: str  # RU's case, rectifying, with a referral whose reason names an official
    petition: str  # OTHER_RU's petition with the petitioner's contact
    posting: str  # RU's case in public posting with two citizens' objections
    other: str  # OTHER_RU's registered case
    contact: str
    referral_reason: str
    own_objection: str
    other_objection: str

    @property
    def cases(self) -> list[str]:
        return [self.referred, self.petition, self.posting, self.other]


@pytest_asyncio.fixture(scope="module")
async def seeded(console: Console) -> Seeded:
    tag = uuid.uuid4().hex[:6]
    s = Seeded(referred=f"S{tag}-A", petition=f"S{tag}-B", posting=f"S{tag}-C", other=f"S{tag}-D",
               contact=f"CONTACT{tag} 张三 13800000000 蓝山县某街道1号", referral_reason=f"REFREASON{tag} 县长张某某履职不力",
               own_objection=f"OBJMINE{tag} 河道仍有异味", other_objection=f"OBJOTHER{tag} 夜间仍在偷排")
    # Issue 13: every seeded case is filed into one programme (the dispatch report's too), so the
    # programme pages are walked over cases of every kind of visibility.
    async with console.api("office") as http:
        r = await http.post("/api/v1/programmes", json={
            "programme_id": DISPATCH_PRG, "name": "读取范围测试整改方案", "inspection_round": "第二轮中央生态环境保护督察",
            "locality": "xx市", "counties": ["蓝山县", "宁远县"], "feedback_date": "2026-07-01"})
        assert r.status_code == 201, r.text
    in_prg = {"programme_id": DISPATCH_PRG}
    a = console.case_record(s.referred) | in_prg
    await file_via_api(console, a)
    await act_via_api(console, "office", s.referred, "TRANSFER")
    await act_via_api(console, "ru", s.referred, "ACKNOWLEDGE")
    await act_via_api(console, "office", s.referred, "REFER_ACCOUNTABILITY", referral_path="PERFORMANCE",
                      reason=s.referral_reason, report_ref="追责建议报告-1")
    async with console.api("ru-other") as http:  # a refused attempt, recorded in refused_action
        r = await http.post(f"/api/v1/cases/{s.referred}/actions/REPORT_PROGRESS", json={"reason": "越权"})
        assert r.status_code == 404
    b = console.case_record(s.petition) | {
        "kind": "PETITION", "title": "群众举报某厂夜间偷排", "complaint": "某厂夜间偷排废水",
        "complainant_contact": s.contact, "responsible_units": [OTHER_RU.unit],
        "lead_supervising_units": ["市林业局"]} | in_prg
    await file_via_api(console, b)
    await file_via_api(console, console.case_record(s.posting) | in_prg)
    await act_via_api(console, "office", s.posting, "TRANSFER")
    await act_via_api(console, "ru", s.posting, "ACKNOWLEDGE")
    await act_via_api(console, "ru", s.posting, "SUBMIT_COMPLETION", reason="整改完成")
    await act_via_api(console, "lead", s.posting, "PRELIM_PASS")
    await act_via_api(console, "citizen", s.posting, "OBJECT", reason=s.own_objection)
    await act_via_api(console, "citizen2", s.posting, "OBJECT", reason=s.other_objection)
    await file_via_api(console, console.case_record(s.other) | {"responsible_units": [OTHER_RU.unit],
                                                                 "lead_supervising_units": ["市林业局"]} | in_prg)
    await wait_projection(console, s.referred, "RECTIFYING")
    await wait_projection(console, s.posting, "PUBLIC_POSTING")
    await wait_projection(console, s.other, "REGISTERED")
    assert RU.unit != OTHER_RU.unit and {LEAD.unit, LEAD2.unit}.isdisjoint({"市林业局"})
    await seed_dispatch_report(console, DISPATCH_PRG, s.cases)
    async with console.api("office") as http:  # issue 14: a look-back campaign (read by the office, auditors, 督查室)
        r = await http.post("/api/v1/lookbacks", json={"campaign_id": LOOKBACK, "name": "读取范围测试回头看",
                                                       "start": "2026-07-01", "end": "2026-08-01",
                                                       "programme_id": DISPATCH_PRG})
        assert r.status_code == 201, r.text
    async with console.api("office") as http:  # the programme counts its four cases
        for _ in range(100):
            await http.post(f"/api/v1/programmes/{DISPATCH_PRG}/refresh")
            if await console.pool.fetchval("SELECT total_cases FROM programme_projection WHERE programme_id = $1",
                                           DISPATCH_PRG) == 4:
                break
            await asyncio.sleep(0.3)
    return s


# ------------------------------------------------------------------ who sees what (the oracle)


async def reader_of(c: Console, username: str) -> Reader:
    u = await get_user(c.pool, username)
    assert u is not None
    return Reader(user_id=u.username, unit=u.unit, roles=tuple(u.roles))


async def visibility(c: Console, reader: Reader) -> dict[str, frozenset[Part]]:
    """Every case in the database with the parts this reader sees of it (empty: unseen)."""
    rows = await c.pool.fetch(
        """SELECT case_no, stage, responsible_units, lead_supervising_units, assisting_units,
                  jsonb_path_exists(detail, '""" + REFERRED_JSONPATH + """') AS has_referrals,
                  ARRAY(SELECT jsonb_array_elements_text(jsonb_path_query_array(
                      detail, '$.fanout.children[*].units[*]'))) AS child_units
           FROM case_projection""")
    # child_units: a fanned-out item (issue 13) whose child names the reader's unit shows its summary.
    return {r["case_no"]: parts_for(reader, CaseFacts(
        stage=r["stage"], responsible_units=tuple(r["responsible_units"]),
        lead_supervising_units=tuple(r["lead_supervising_units"]), assisting_units=tuple(r["assisting_units"]),
        has_referrals=r["has_referrals"], child_units=tuple(r["child_units"])), HOME) for r in rows}


# ------------------------------------------------------------------ calling the routes


@dataclass
class Call:
    method: str
    url: str
    api: bool = False  # bearer token instead of the session cookie
    data: dict[str, Any] | None = None  # form fields (the session's CSRF token is added)
    json: Any = None
    case_no: str = ""  # the case the URL names (it may echo back in a 404 message)
    kind: str = ""  # what to assert beyond "no leak": case, list, view, audit


@dataclass
class Client:
    username: str
    http: httpx.AsyncClient
    csrf: str
    token: str
    reader: Reader
    seen: dict[str, frozenset[Part]] = field(default_factory=dict)

    async def call(self, c: Call) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if c.api else {}
        data = None if c.data is None else {"csrf_token": self.csrf, **c.data}
        return await self.http.request(c.method, c.url, headers=headers, data=data, json=c.json,
                                       follow_redirects=False)


def _case_calls(s: Seeded, fn: Callable[[str], Call]) -> list[Call]:
    return [fn(no) for no in s.cases]


# Every route of the app, by (method, path), with the requests that walk it. A new route without
# an entry here fails test_every_route_is_walked.
ROUTES: dict[tuple[str, str], Callable[[Seeded], list[Call]]] = {
    ("GET", "/openapi.json"): lambda s: [Call("GET", "/openapi.json")],
    ("GET", "/static"): lambda s: [Call("GET", "/static/style.css")],
    ("GET", "/login"): lambda s: [Call("GET", "/login")],
    ("GET", "/healthz"): lambda s: [Call("GET", "/healthz")],  # probes (ops/health.py): no case data
    ("GET", "/readyz"): lambda s: [Call("GET", "/readyz")],
    ("GET", "/health/db"): lambda s: [Call("GET", "/health/db")],  # database probe (outage page): no case data
    ("POST", "/login"): lambda s: [Call("POST", "/login", data={})],  # no login CSRF cookie: 403
    ("POST", "/logout"): lambda s: [Call("POST", "/logout")],  # no CSRF token: 403, the session stays
    ("GET", "/"): lambda s: [Call("GET", "/")],
    ("GET", "/my"): lambda s: [Call("GET", "/my", kind="view:MY_WORK")],
    ("GET", "/cases"): lambda s: [Call("GET", "/cases?page_size=500", kind="list:CASE_LIST"),
                                  Call("GET", f"/cases?q={s.posting}", case_no=s.posting, kind="view:CASE_LIST")],
    ("GET", "/cases/export.{fmt}"): lambda s: [Call("GET", "/cases/export.csv", kind="list:EXPORT"),
                                               Call("GET", "/cases/export.xlsx", kind="list:EXPORT")],
    ("GET", "/cases/{case_no}"): lambda s: _case_calls(s, lambda n: Call("GET", f"/cases/{n}", case_no=n,
                                                                         kind="case")),
    ("GET", "/audit"): lambda s: [Call("GET", "/audit", kind="view:AUDIT")],
    ("GET", "/audit/cases/{case_no}"): lambda s: _case_calls(
        s, lambda n: Call("GET", f"/audit/cases/{n}", case_no=n, kind="audit")),
    ("GET", "/audit/cases/{case_no}/timeline.{fmt}"): lambda s: [
        Call("GET", f"/audit/cases/{s.referred}/timeline.html", case_no=s.referred, kind="audit"),
        Call("GET", f"/audit/cases/{s.petition}/timeline.pdf", case_no=s.petition, kind="audit")],
    # Refused for every role (OBJECT without its reason, or by a role that may not object); the
    # answer is the case page with the refusal, or 404 for a case the role may not see.
    ("POST", "/cases/{case_no}/act/{action}"): lambda s: _case_calls(
        s, lambda n: Call("POST", f"/cases/{n}/act/OBJECT", data={}, case_no=n, kind="act")),
    ("GET", "/file"): lambda s: [Call("GET", "/file")],
    ("POST", "/file"): lambda s: [Call("POST", "/file", data={})],  # nothing to file: 422 / refused
    ("GET", "/import"): lambda s: [Call("GET", "/import")],
    ("POST", "/import"): lambda s: [Call("POST", "/import", data={})],  # no file: 422 / refused
    # Issue 13: the import template (headers and one example row; the office only): no case data
    ("GET", "/import/template.xlsx"): lambda s: [Call("GET", "/import/template.xlsx")],
    ("GET", "/dashboard"): lambda s: [Call("GET", "/dashboard", kind="view:DASHBOARD")],
    ("GET", "/api/v1/me"): lambda s: [Call("GET", "/api/v1/me", api=True)],
    ("GET", "/api/v1/my-work"): lambda s: [Call("GET", "/api/v1/my-work", api=True, kind="view:MY_WORK")],
    ("GET", "/api/v1/cases"): lambda s: [Call("GET", "/api/v1/cases?page_size=500", api=True, kind="list:CASE_LIST"),
                                         Call("GET", "/api/v1/cases?unit=" + OTHER_RU.unit, api=True,
                                              kind="filter")],
    ("GET", "/api/v1/export.{fmt}"): lambda s: [Call("GET", "/api/v1/export.csv", api=True, kind="list:EXPORT"),
                                                Call("GET", "/api/v1/export.xlsx", api=True, kind="list:EXPORT")],
    ("GET", "/api/v1/cases/{case_no}"): lambda s: _case_calls(
        s, lambda n: Call("GET", f"/api/v1/cases/{n}", api=True, case_no=n, kind="case")),
    ("POST", "/api/v1/cases/{case_no}/actions/{action}"): lambda s: _case_calls(
        s, lambda n: Call("POST", f"/api/v1/cases/{n}/actions/OBJECT", api=True, json={}, case_no=n, kind="act")),
    ("POST", "/api/v1/cases"): lambda s: [Call("POST", "/api/v1/cases", api=True, json={})],
    ("POST", "/api/v1/import"): lambda s: [Call("POST", "/api/v1/import", api=True, json=[])],
    ("GET", "/api/v1/dashboard"): lambda s: [Call("GET", "/api/v1/dashboard", api=True, kind="view:DASHBOARD")],
    # Issue 9: blocked cases and the watchdog (View.RUNTIME); an UNBLOCK of a case that is not
    # blocked is refused for every role (the office by the workflow, the others by the view).
    ("GET", "/runtime"): lambda s: [Call("GET", "/runtime", kind="view:RUNTIME")],
    ("POST", "/runtime/{case_no}/unblock"): lambda s: [
        Call("POST", f"/runtime/{s.referred}/unblock", data={}, case_no=s.referred)],
    ("GET", "/api/v1/runtime"): lambda s: [Call("GET", "/api/v1/runtime", api=True, kind="view:RUNTIME")],
    ("POST", "/api/v1/cases/{case_no}/unblock"): lambda s: [
        Call("POST", f"/api/v1/cases/{s.referred}/unblock", api=True, json={"reason": "x"}, case_no=s.referred)],
    # Issue 13: leadership statistics (View.DASHBOARD): the page, its JSON and its exports hold only
    # the cases the role sees (the PDF is read back with pypdf).
    ("GET", "/statistics"): lambda s: [Call("GET", "/statistics?light=GREEN", kind="view:DASHBOARD"),
                                       Call("GET", "/statistics", kind="view:DASHBOARD")],
    ("GET", "/statistics/export.{fmt}"): lambda s: [
        Call("GET", "/statistics/export.xlsx?light=GREEN", kind="view:DASHBOARD"),
        Call("GET", "/statistics/export.pdf?light=GREEN", kind="view:DASHBOARD")],
    ("GET", "/api/v1/statistics"): lambda s: [Call("GET", "/api/v1/statistics?light=GREEN", api=True,
                                                   kind="view:DASHBOARD")],
    ("GET", "/api/v1/statistics/export.{fmt}"): lambda s: [
        Call("GET", "/api/v1/statistics/export.pdf?light=GREEN", api=True, kind="view:DASHBOARD"),
        Call("GET", "/api/v1/statistics/export.xlsx?light=GREEN", api=True, kind="view:DASHBOARD")],
    # Evidence files: listed for the roles granted the EVIDENCE part; a case not seen is 404;
    # uploads without a file are refused (422) or not allowed (403 / 404).
    ("GET", "/api/v1/cases/{case_no}/evidence"): lambda s: _case_calls(
        s, lambda n: Call("GET", f"/api/v1/cases/{n}/evidence", api=True, case_no=n, kind="evidence")),
    ("GET", "/api/v1/cases/{case_no}/evidence/{sha}"): lambda s: _case_calls(
        s, lambda n: Call("GET", f"/api/v1/cases/{n}/evidence/{'0' * 64}", api=True, case_no=n, kind="act")),
    ("POST", "/api/v1/cases/{case_no}/evidence"): lambda s: _case_calls(
        s, lambda n: Call("POST", f"/api/v1/cases/{n}/evidence", api=True, json={}, case_no=n, kind="act")),
    ("GET", "/cases/{case_no}/evidence/{sha}"): lambda s: _case_calls(
        s, lambda n: Call("GET", f"/cases/{n}/evidence/{'0' * 64}", case_no=n, kind="act")),
    ("POST", "/cases/{case_no}/evidence"): lambda s: _case_calls(
        s, lambda n: Call("POST", f"/cases/{n}/evidence", data={}, case_no=n, kind="act")),
    # Issue 13, programmes (domain/programme_scope.py): the whole programme for the office, the
    # 督查室 and auditors; a unit's own cases and row; nothing (404/403) for anyone else. The
    # actions are refused for every role (a second SUBMIT_PLAN-less report without reference).
    ("GET", "/programmes"): lambda s: [Call("GET", "/programmes", kind="programme_list")],
    ("GET", "/programmes/{programme_id}"): lambda s: [Call("GET", f"/programmes/{DISPATCH_PRG}", kind="programme")],
    ("GET", "/api/v1/programmes"): lambda s: [Call("GET", "/api/v1/programmes", api=True, kind="programme_list")],
    ("GET", "/api/v1/programmes/{programme_id}"): lambda s: [
        Call("GET", f"/api/v1/programmes/{DISPATCH_PRG}", api=True, kind="programme")],
    ("POST", "/api/v1/programmes"): lambda s: [Call("POST", "/api/v1/programmes", api=True, json={})],
    ("POST", "/api/v1/programmes/{programme_id}/actions/{action}"): lambda s: [
        Call("POST", f"/api/v1/programmes/{DISPATCH_PRG}/actions/SUBMIT_REPORT", api=True, json={})],
    ("POST", "/api/v1/programmes/{programme_id}/refresh"): lambda s: [
        Call("POST", f"/api/v1/programmes/{DISPATCH_PRG}/refresh", api=True)],
    ("POST", "/programmes/{programme_id}/act/{action}"): lambda s: [
        Call("POST", f"/programmes/{DISPATCH_PRG}/act/SUBMIT_REPORT", data={})],
    # Issue 13, monthly dispatch over the seeded cases: every unit's rows for the office, the 督查室
    # and auditors; a responsible unit its own rows; 403 for every other role. Bad input for writes.
    ("GET", "/programmes/{programme_id:path}/dispatch"): lambda s: [
        Call("GET", f"/programmes/{DISPATCH_PRG}/dispatch", kind="dispatch")],
    ("GET", "/programmes/{programme_id:path}/dispatch/{name}"): lambda s: [
        Call("GET", f"/programmes/{DISPATCH_PRG}/dispatch/{NOW_PERIOD}.{fmt}", kind="dispatch")
        for fmt in ("html", "xlsx")],
    ("POST", "/programmes/{programme_id:path}/dispatch/schedule"): lambda s: [
        Call("POST", f"/programmes/{DISPATCH_PRG}/dispatch/schedule", data={})],
    ("POST", "/programmes/{programme_id:path}/dispatch/run"): lambda s: [
        Call("POST", f"/programmes/{DISPATCH_PRG}/dispatch/run", data={"period": "bad"})],
    ("GET", "/api/v1/programmes/{programme_id:path}/dispatch"): lambda s: [
        Call("GET", f"/api/v1/programmes/{DISPATCH_PRG}/dispatch", api=True, kind="dispatch")],
    ("GET", "/api/v1/programmes/{programme_id:path}/dispatch/{name}"): lambda s: [
        Call("GET", f"/api/v1/programmes/{DISPATCH_PRG}/dispatch/{NOW_PERIOD}{ext}", api=True, kind="dispatch")
        for ext in ("", ".xlsx", ".html")],
    ("PUT", "/api/v1/programmes/{programme_id:path}/dispatch/schedule"): lambda s: [
        Call("PUT", f"/api/v1/programmes/{DISPATCH_PRG}/dispatch/schedule", api=True, json={})],
    ("DELETE", "/api/v1/programmes/{programme_id:path}/dispatch/schedule"): lambda s: [
        Call("DELETE", f"/api/v1/programmes/{DISPATCH_PRG}/dispatch/schedule", api=True)],
    ("POST", "/api/v1/programmes/{programme_id:path}/dispatch/run"): lambda s: [
        Call("POST", f"/api/v1/programmes/{DISPATCH_PRG}/dispatch/run", api=True, json={"period": "bad"})],
    # Issue 14 (public): the office's publication page; a POST with a bad input is refused.
    ("GET", "/programmes/{programme_id}/publication"): lambda s: [
        Call("GET", f"/programmes/{DISPATCH_PRG}/publication", kind="publication")],
    ("POST", "/programmes/{programme_id}/publication/options"): lambda s: [
        Call("POST", f"/programmes/{DISPATCH_PRG}/publication/options", data={"reason": "x\x00"})],
    ("POST", "/programmes/{programme_id}/publication/name"): lambda s: [
        Call("POST", f"/programmes/{DISPATCH_PRG}/publication/name", data={"unit": "no-such-unit", "reason": "r"})],
    ("POST", "/programmes/{programme_id}/publication/revoke"): lambda s: [
        Call("POST", f"/programmes/{DISPATCH_PRG}/publication/revoke", data={"naming_id": "N0", "reason": "r"})],
    # Issue 14, look-back campaigns (domain/lookback_rules.py): office, auditors, 督查室 read all; a
    # lead supervising unit only campaigns holding a case it leads (none here); everyone else none.
    ("GET", "/lookbacks"): lambda s: [Call("GET", "/lookbacks", kind="lookback_list")],
    ("POST", "/lookbacks"): lambda s: [Call("POST", "/lookbacks", data={})],
    ("GET", "/lookbacks/{campaign_id}"): lambda s: [Call("GET", f"/lookbacks/{LOOKBACK}", kind="lookback")],
    ("POST", "/lookbacks/{campaign_id}/{op}"): lambda s: [
        Call("POST", f"/lookbacks/{LOOKBACK}/finding", data={"case_no": s.referred, "finding": "IN_PLACE"})],
    ("GET", "/lookbacks/{campaign_id}/report.{fmt}"): lambda s: [
        Call("GET", f"/lookbacks/{LOOKBACK}/report.{fmt}", kind="lookback") for fmt in ("xlsx", "pdf")],
    ("GET", "/api/v1/lookbacks"): lambda s: [Call("GET", "/api/v1/lookbacks", api=True, kind="lookback_list")],
    ("GET", "/api/v1/lookbacks/{campaign_id}"): lambda s: [
        Call("GET", f"/api/v1/lookbacks/{LOOKBACK}", api=True, kind="lookback")],
    ("GET", "/api/v1/lookbacks/{campaign_id}/report.{fmt}"): lambda s: [
        Call("GET", f"/api/v1/lookbacks/{LOOKBACK}/report.xlsx", api=True, kind="lookback")],
    ("POST", "/api/v1/lookbacks"): lambda s: [Call("POST", "/api/v1/lookbacks", api=True, json={})],
    ("POST", "/api/v1/lookbacks/{campaign_id}/{op}"): lambda s: [
        Call("POST", f"/api/v1/lookbacks/{LOOKBACK}/finding", api=True, json={"case_no": s.referred})],
}


def app_routes() -> set[tuple[str, str]]:
    app = create_app(Settings())
    out: set[tuple[str, str]] = set()
    for r in app.routes:
        methods = getattr(r, "methods", None) or {"GET"}
        for m in methods - {"HEAD"}:
            out.add((m, r.path))
    return out


def test_every_route_is_walked() -> None:
    """Each route of the console has calls in ROUTES (and ROUTES names no route that is gone)."""
    routes = app_routes()
    missing = sorted(routes - set(ROUTES))
    assert not missing, f"routes without read-scoping coverage (add them to ROUTES): {missing}"
    assert not sorted(set(ROUTES) - routes), "ROUTES names routes the app no longer has"


# ------------------------------------------------------------------ checking the answers


def body_text(resp: httpx.Response) -> str:
    ctype = resp.headers.get("content-type", "")
    if "spreadsheetml" in ctype:
        wb = load_workbook(io.BytesIO(resp.content), read_only=True)
        return "\n".join(" ".join("" if v is None else str(v) for v in row)
                         for ws in wb.worksheets for row in ws.iter_rows(values_only=True))
    if "application/pdf" in ctype:  # audit timelines (office, auditors) and statistics (every internal role)
        from pypdf import PdfReader

        return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(resp.content)).pages)
    return resp.text


def mentions(text: str, case_no: str) -> bool:
    return re.search(rf"(?<![{ASCII_NO}]){re.escape(case_no)}(?![{ASCII_NO}])", text) is not None


async def client_for(c: Console, username: str) -> Client:
    user = await get_user(c.pool, username)
    assert user is not None
    token, csrf = await auth.create_session(c.pool, Settings(), user, "test")
    http = httpx.AsyncClient(base_url=c.url, timeout=120, cookies={auth.SESSION_COOKIE: token})
    return Client(username=username, http=http, csrf=csrf, token=c.tokens[username],
                  reader=await reader_of(c, username))


def check(cl: Client, call: Call, resp: httpx.Response, s: Seeded) -> None:
    where = f"{cl.username} {call.method} {call.url} -> {resp.status_code}"
    assert resp.status_code < 500, f"{where}: {resp.text[:300]}"
    text = body_text(resp)
    unseen = [no for no, parts in cl.seen.items() if not parts and no != call.case_no]
    leaked = [no for no in unseen if mentions(text, no)]
    assert not leaked, f"{where}: shows cases this role may not see: {leaked[:5]}"

    def parts(no: str) -> frozenset[Part]:
        return cl.seen.get(no, frozenset())

    def allowed(marker: str, ok: bool) -> None:
        assert ok or marker not in text, f"{where}: shows {marker[:20]!r}, which this role may not see"

    allowed(s.contact, Part.CONTACT in parts(s.petition))
    allowed(s.referral_reason, Part.REFERRALS in parts(s.referred))
    allowed(s.other_objection, Part.OBJECTIONS in parts(s.posting))
    allowed(s.own_objection, bool({Part.OBJECTIONS, Part.OWN_OBJECTIONS} & parts(s.posting)))
    if call.method == "GET":
        allowed("is not a responsible unit of case", Part.REFUSALS in parts(s.referred))
    if "complainant_contact" in text and call.api and call.kind == "case":
        assert Part.CONTACT in parts(call.case_no), f"{where}: complainant_contact in the API answer"

    kind, _, view = call.kind.partition(":")
    if kind == "case":
        assert resp.status_code == (200 if parts(call.case_no) else 404), where
    if kind == "act" and not parts(call.case_no):
        assert resp.status_code == 404, where
    if kind == "evidence":
        p = parts(call.case_no)
        assert resp.status_code == (200 if Part.EVIDENCE in p else 403 if p else 404), where
    if kind == "audit":
        ok = may_view(cl.reader, View.AUDIT, HOME) and Part.HISTORY in parts(call.case_no)
        assert (resp.status_code == 200) is ok, where
        if not may_view(cl.reader, View.AUDIT, HOME):
            assert resp.status_code == 403, where
    if kind in ("programme", "programme_list"):
        read, _scopes = programme_read(cl.reader, HOME)
        sees_a_case = any(parts(no) for no in s.cases)
        if read is None:
            assert resp.status_code == (403 if kind == "programme_list" else 404), where
        elif kind == "programme" and read is ProgrammeRead.OWN and not sees_a_case:
            assert resp.status_code == 404, where  # none of its cases is in this programme
        else:
            assert resp.status_code == 200, where
            if kind == "programme" and read is ProgrammeRead.OWN:
                assert "ledger" not in (resp.json() if call.api else {}), where
    if kind == "publication":  # the office (home unit) and auditors only
        ok = any(r in cl.reader.roles for r in ("AUDITOR",)) or (
            "RECTIFICATION_OFFICE" in cl.reader.roles and cl.reader.unit == HOME.office)
        assert resp.status_code == (200 if ok else 403), where
    if kind in ("lookback", "lookback_list"):
        from domain.lookback import LookbackPolicy
        from domain.lookback_rules import CampaignRead, campaign_read

        read = campaign_read(cl.reader, LookbackPolicy())
        if kind == "lookback_list":
            assert resp.status_code == (200 if read is not None else 403), where
        else:  # the campaign selected no case: only WHOLE readers see it
            assert resp.status_code == (200 if read is CampaignRead.WHOLE else 404), where
    if kind == "dispatch":
        assert resp.status_code == (403 if dispatch_access(cl.reader, HOME).denied else 200), where
    if kind in ("view", "list"):
        assert resp.status_code == (200 if may_view(cl.reader, View(view), HOME) else 403), where
    if kind == "list" and resp.status_code == 200:
        # Exactly the cases the role sees (the read model's SQL agrees with the domain's rules).
        visible = {no for no, p in cl.seen.items() if p}
        shown = {no for no in cl.seen if mentions(text, no)}
        if call.api and view == "CASE_LIST":
            shown = {r["case_no"] for r in resp.json()["cases"]}
            assert resp.json()["total"] == len(visible), where
        if view == "EXPORT" or len(visible) <= 500:  # lists are paged at 500
            assert shown == visible, f"{where}: lists {sorted(shown - visible)[:5]} / misses {sorted(visible - shown)[:5]}"
        assert {no for no in s.cases if parts(no)} <= shown or len(visible) > 500, where


@pytest.mark.parametrize("username", ROLES)
async def test_every_route_as_every_role_shows_only_what_the_role_may_see(
        console: Console, seeded: Seeded, username: str) -> None:
    cl = await client_for(console, username)
    try:
        cl.seen = await visibility(console, cl.reader)
        assert set(seeded.cases) <= set(cl.seen)
        walked = 0
        for key in sorted(ROUTES):
            for call in ROUTES[key](seeded):
                resp = await cl.call(call)
                check(cl, call, resp, seeded)
                walked += 1
        assert walked >= len(ROUTES)
    finally:
        await cl.http.aclose()


# ------------------------------------------------------------------ what each role sees, spelled out


async def _api_case(c: Console, user: str, case_no: str) -> httpx.Response:
    async with c.api(user) as http:
        return await http.get(f"/api/v1/cases/{case_no}")


async def test_the_petitioners_contact_reaches_only_the_office_and_the_responsible_unit(
        console: Console, seeded: Seeded) -> None:
    """Finding "Petitioner's contact leaks": GET /api/v1/cases/<petition> with another role's token."""
    for user in ("office", "ru-other"):
        r = await _api_case(console, user, seeded.petition)
        assert r.status_code == 200 and r.json()["filing"]["complainant_contact"] == seeded.contact
    r = await _api_case(console, "auditor", seeded.petition)
    assert r.status_code == 200 and "complainant_contact" not in r.json()["filing"]
    assert r.json()["filing"]["complaint"] == "某厂夜间偷排废水"
    for user in ("citizen", "ru", "lead", "lead2", "discipline"):
        r = await _api_case(console, user, seeded.petition)
        assert r.status_code == 404 and seeded.contact not in r.text, user


async def test_referral_details_reach_only_the_office_the_discipline_commission_and_auditors(
        console: Console, seeded: Seeded) -> None:
    for user in ("office", "discipline", "auditor"):
        body = (await _api_case(console, user, seeded.referred)).json()
        assert [r["reason"] for r in body["referrals"]] == [seeded.referral_reason], user
        assert any(e["reason"] == seeded.referral_reason for e in body["ledger"]), user
    for user in ("ru", "lead"):
        body = (await _api_case(console, user, seeded.referred)).json()
        assert body["referrals"] == [] and "open_referrals" not in body["case"], user
        refer = [e for e in body["ledger"] if e["event"] == "REFER_ACCOUNTABILITY"]
        assert refer and refer[0]["reason"] == "" and refer[0]["withheld"], "the entry stays, its reason is withheld"
        assert body["refusals"] == [], "refused attempts are for the office and auditors"
    body = (await _api_case(console, "office", seeded.referred)).json()
    assert any(r["actor_user"] == "ru-other" for r in body["refusals"])
    # The discipline commission sees the referred case, not the others.
    for no in (seeded.petition, seeded.posting, seeded.other):
        assert (await _api_case(console, "discipline", no)).status_code == 404


async def test_the_public_sees_the_posting_it_may_object_to_and_nothing_of_the_ledger(
        console: Console, seeded: Seeded) -> None:
    body = (await _api_case(console, "citizen", seeded.posting)).json()
    # The summary also says whether a case is a fan-out parent or child and its closure level (issue 13).
    assert set(body["case"]) <= {"case_no", "kind", "kind_zh", "title", "stage", "stage_zh", "stage_entered_at",
                                 "filed_at", "closed_at", "parent_case_no", "is_parent", "closure_level",
                                 "closure_level_en"}
    assert set(body["filing"]) == {"case_no", "kind", "title", "parent_case_no"}
    assert body["ledger"] == [] and body["deadline"] is None and body["referrals"] == []
    assert [o["text"] for o in body["posting"]["objections"]] == [seeded.own_objection]
    assert [a["action"] for a in body["allowed_actions"]] == ["OBJECT"]
    async with console.api("citizen") as http:
        listed = (await http.get("/api/v1/cases", params={"page_size": 500})).json()
        assert seeded.posting in {r["case_no"] for r in listed["cases"]}
        assert all(r["stage"] == "PUBLIC_POSTING" and "responsible_units" not in r for r in listed["cases"])
        for url in ("/api/v1/dashboard", "/api/v1/export.csv"):
            r = await http.get(url)
            assert r.status_code == 403 and r.json()["error"] == "NotAuthorizedError"
        for params in ({"unit": RU.unit}, {"rung": "0"}, {"overdue": "1"}):
            r = await http.get("/api/v1/cases", params=params)
            assert r.status_code == 400 and "not available to your role" in r.json()["message"], params
    # The objection flow still works end to end for the citizen. (One open objection per person
    # per posting, policy max_open_objections_per_person: the office rules on the first one.)
    await act_via_api(console, "office", seeded.posting, "DISMISS_OBJECTION", objection_id="O1", reason="已核实")
    async with console.api("citizen") as http:
        r = await http.post(f"/api/v1/cases/{seeded.posting}/actions/OBJECT", json={"reason": "再次反映:仍有异味"})
        assert r.status_code == 200, r.text
    body = (await _api_case(console, "citizen", seeded.posting)).json()
    assert len(body["posting"]["objections"]) == 2 and seeded.other_objection not in str(body)


async def test_dashboard_figures_count_only_the_cases_the_role_sees(console: Console, seeded: Seeded) -> None:
    for user in ("office", "auditor", "ru", "ru-other", "lead", "discipline"):
        seen = await visibility(console, await reader_of(console, user))
        visible = [no for no, p in seen.items() if p]
        with_record = [no for no, p in seen.items() if Part.RECORD in p]  # units figures are the record's
        async with console.api(user) as http:
            d = (await http.get("/api/v1/dashboard")).json()
        assert d["total"] == len(visible), user
        assert sum(s["n"] for s in d["stages"]) == len(visible), user
        units = await console.pool.fetchval(
            "SELECT coalesce(array_agg(DISTINCT u), '{}') FROM case_projection, unnest(responsible_units) u "
            "WHERE case_no = ANY($1)", with_record)
        assert {u["unit"] for u in d["units"]} == set(units), user
        assert sum(u["total"] for u in d["units"]) >= len([n for n in visible if n in seeded.cases]), user


async def test_casectl_list_show_and_export_inherit_the_scoping(console: Console, seeded: Seeded, tmp_path) -> None:
    """casectl reads through the API, so it shows a unit only its own cases."""
    p = await console.cli("list", "--page-size", "500", user="ru-other")
    assert p.returncode == 0, p.stderr
    assert seeded.petition in p.stdout and seeded.other in p.stdout
    assert seeded.referred not in p.stdout and seeded.posting not in p.stdout
    p = await console.cli("show", seeded.petition, "--json", user="ru-other")
    assert p.returncode == 0 and seeded.contact in p.stdout
    p = await console.cli("show", seeded.petition, user="lead")
    assert p.returncode == 1 and f"no case {seeded.petition}" in p.stderr
    p = await console.cli("show", seeded.posting, user="citizen")
    assert p.returncode == 0, p.stderr
    assert "ledger:" in p.stdout and "(none)" not in p.stdout.split("actions you may take now:")[1].split("ledger:")[0]
    out = tmp_path / "ru.csv"
    p = await console.cli("export", "--format", "csv", "--output", str(out), user="ru")
    assert p.returncode == 0, p.stderr
    text = out.read_text(encoding="utf-8-sig")
    assert seeded.referred in text and seeded.posting in text
    assert seeded.petition not in text and seeded.other not in text
    p = await console.cli("export", "--format", "csv", "--output", str(tmp_path / "c.csv"), user="citizen")
    assert p.returncode != 0 and "may not export" in p.stderr

