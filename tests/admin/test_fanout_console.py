"""County fan-out in the console (issue 13): the parent's page lists its children, each child
links its parent, a county sees its own child and the parent's summary only, the closure levels
are labelled (县级自查 on a child's 初审), and a county's 我的待办 holds its self-check.

Real console, worker, PostgreSQL and Temporal dev server; the page, the API answer
(/api/v1/cases/<no>), the export and the work list are each checked for every role that matters.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from admin import auth
from admin.users import get_user
from config import Settings
from tests.admin.conftest import Console, act_via_api, wait_projection
from tests.admin.fanout_helpers import CITY_UNIT, MARKER, children_of, county_list, file_fanout_item
from tests.harness import OTHER_RU, RU

pytestmark = pytest.mark.devserver


@dataclass
class Fanned:
    parent: str
    city: str  # the city-level share (市城管执法局)
    own: str  # RU's child (蓝山县人民政府)
    other: str  # OTHER_RU's child (宁远县人民政府)


@pytest_asyncio.fixture(scope="module")
async def fanned(console: Console, tmp_path_factory: pytest.TempPathFactory) -> Fanned:
    with county_list(tmp_path_factory.mktemp("counties")):
        parent = await file_fanout_item(console)
        await act_via_api(console, "office", parent, "TRANSFER")
        kids = await children_of(console, parent)
    f = Fanned(parent=parent, city=kids[CITY_UNIT], own=kids[RU.unit], other=kids[OTHER_RU.unit])
    for no in (f.own, f.other):
        await wait_projection(console, no, "TRANSFERRED")
    # RU's county takes its child to its self-check (县级自查): 签收, 整改, 提交完成.
    await act_via_api(console, "ru", f.own, "ACKNOWLEDGE")
    await act_via_api(console, "ru", f.own, "SUBMIT_COMPLETION", reason="整改完成", evidence=["doc:done"])
    await wait_projection(console, f.own, "PRELIM_REVIEW")
    return f


async def api_case(c: Console, user: str, case_no: str) -> httpx.Response:
    async with c.api(user) as http:
        return await http.get(f"/api/v1/cases/{case_no}")


async def page(c: Console, user: str, url: str) -> httpx.Response:
    u = await get_user(c.pool, user)
    assert u is not None
    token, _csrf = await auth.create_session(c.pool, Settings(), u, "test")
    async with httpx.AsyncClient(base_url=c.url, timeout=60, cookies={auth.SESSION_COOKIE: token}) as http:
        return await http.get(url)


async def test_the_office_and_supervisors_see_every_child_on_the_parent(console: Console, fanned: Fanned) -> None:
    for user in ("office", "duchashi", "lead", "lead2", "auditor"):
        body = (await api_case(console, user, fanned.parent)).json()
        kids = {k["case_no"]: k for k in body["children"]}
        assert set(kids) == {fanned.city, fanned.own, fanned.other}, user
        assert kids[fanned.own]["responsible_units"] == [RU.unit]
        assert kids[fanned.own]["stage"] == "PRELIM_REVIEW" and kids[fanned.own]["stage_zh"] == "县级自查"
        assert kids[fanned.own]["closure_level"] == "COUNTY_SELF_CHECK"
        assert kids[fanned.other]["stage"] == "TRANSFERRED" and kids[fanned.other]["due_date"]
        assert all("rung" in k and k["spot_check"] == "NOT_DRAWN" for k in kids.values()), user
        assert body["fanout"]["children"] == sorted(kids) and body["fanout"]["locality"] == "永州市", user
        assert body["parent"] is None
    html = (await page(console, "office", f"/cases/{fanned.parent}")).text
    assert 'data-testid="children"' in html and "县级自查" in html and "County self-check" in html
    for no in (fanned.city, fanned.own, fanned.other):
        assert f'href="/cases/{no}"' in html
    assert "省级抽查" in html and "Provincial spot-check" in html
    assert RU.unit in html and OTHER_RU.unit in html


async def test_a_county_sees_its_own_child_and_the_parents_summary_only(console: Console, fanned: Fanned) -> None:
    # The parent: its summary and the county's own child, not its record, ledger or the other counties.
    r = await api_case(console, "ru", fanned.parent)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["parts"] == ["SUMMARY"]
    assert [k["case_no"] for k in body["children"]] == [fanned.own]
    assert body["fanout"] is None and body["ledger"] == [] and body["deadline"] is None
    assert set(body["filing"]) <= {"case_no", "kind", "title", "parent_case_no"}
    assert fanned.other not in r.text and fanned.city not in r.text and MARKER not in r.text
    assert body["allowed_actions"] == []
    html = (await page(console, "ru", f"/cases/{fanned.parent}")).text
    assert f'href="/cases/{fanned.own}"' in html and 'data-testid="children-own-only"' in html
    assert fanned.other not in html and fanned.city not in html and OTHER_RU.unit not in html
    assert MARKER not in html and "台账时间线" not in html  # no record, no ledger
    # The other counties' children do not exist for it; its own links its parent.
    for no in (fanned.other, fanned.city):
        assert (await api_case(console, "ru", no)).status_code == 404
        assert (await page(console, "ru", f"/cases/{no}")).status_code == 404
    own = (await api_case(console, "ru", fanned.own)).json()
    assert own["parent"]["case_no"] == fanned.parent and own["filing"]["parent_case_no"] == fanned.parent
    html = (await page(console, "ru", f"/cases/{fanned.own}")).text
    assert 'data-testid="parent-link"' in html and f'href="/cases/{fanned.parent}"' in html
    assert "县级自查" in html
    # The other county: its own child, the parent's summary, not RU's child.
    body = (await api_case(console, "ru-other", fanned.parent)).json()
    assert [k["case_no"] for k in body["children"]] == [fanned.other]
    assert (await api_case(console, "ru-other", fanned.own)).status_code == 404


async def test_the_export_and_lists_of_a_county_hold_its_child_and_the_parent_in_summary(
        console: Console, fanned: Fanned) -> None:
    async with console.api("ru") as http:
        r = await http.get("/api/v1/export.csv")
        assert r.status_code == 200
        rows = {row[0]: row for row in csv.reader(io.StringIO(r.content.decode("utf-8-sig")))}
        assert fanned.own in rows and fanned.parent in rows
        assert fanned.other not in r.text and fanned.city not in r.text and MARKER not in r.text
        listed = (await http.get("/api/v1/cases", params={"page_size": 500})).json()
        by_no = {c["case_no"]: c for c in listed["cases"]}
        assert fanned.parent in by_no and fanned.own in by_no and fanned.other not in by_no
        assert "responsible_units" not in by_no[fanned.parent] and "due_date" not in by_no[fanned.parent]
        # A filter on the record does not run over a case seen only in summary.
        r = await http.get("/api/v1/cases", params={"unit": MARKER})
        assert r.status_code == 200 and fanned.parent not in r.text
    async with console.api("office") as http:
        text = (await http.get("/api/v1/export.csv")).text
        assert all(no in text for no in (fanned.parent, fanned.city, fanned.own, fanned.other))


async def test_a_countys_work_list_holds_its_self_check_and_the_leads_does_not(
        console: Console, fanned: Fanned) -> None:
    async with console.api("ru") as http:
        mine = {c["case_no"]: c for c in (await http.get("/api/v1/my-work")).json()["cases"]}
    assert fanned.own in mine and mine[fanned.own]["stage_zh"] == "县级自查"
    assert fanned.parent not in mine and fanned.other not in mine
    async with console.api("ru-other") as http:
        theirs = {c["case_no"] for c in (await http.get("/api/v1/my-work")).json()["cases"]}
    assert fanned.other in theirs and fanned.own not in theirs  # 签收 waits on it
    for lead in ("lead", "lead2"):
        async with console.api(lead) as http:
            work = {c["case_no"] for c in (await http.get("/api/v1/my-work")).json()["cases"]}
        assert fanned.own not in work, f"{lead}: the self-check is the county's, not the lead's"
    html = (await page(console, "ru", "/my")).text
    assert f'href="/cases/{fanned.own}"' in html and "县级自查" in html and "County self-check" in html
    # The county takes its self-check itself (PRELIM_PASS as the responsible unit).
    body = (await api_case(console, "ru", fanned.own)).json()
    assert {a["action"] for a in body["allowed_actions"]} >= {"PRELIM_PASS", "PRELIM_REJECT"}


