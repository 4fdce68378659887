"""The public disclosure site over HTTP (issue 14, part "public"): the leak walk over every public
page, hostile input escaped, the objection form's limits (size, contact, control characters,
per-address and per-contact rates, the posting window), and the office's publication choices.
Real console, worker, PostgreSQL and Temporal dev server; the site runs as `python -m admin.public`.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest

from tests.admin.conftest import Console, act_via_api, wait_projection
from tests.admin.public_helpers import (
    MAX_CHARS,
    PER_ADDRESS,
    PER_CONTACT,
    REDELIVER_SECONDS,
    PublicSite,
    form_token,
    lodge,
    make_programme,
    public_site,  # noqa: F401 - fixture
)
from tests.harness import RU

pytestmark = pytest.mark.devserver
HOSTILE = "<script>alert('x')</script>\"'><img src=x onerror=alert(1)>"


def _addr() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


async def _walk(http: httpx.AsyncClient, site: PublicSite, pid: str, items: list[str], receipts: list[str]
                ) -> dict[str, str]:
    """Every public page of a programme: its HTML by path."""
    paths = ["/", f"/p/{pid}", f"/p/{pid}/postings", f"/p/{pid}/exposure", "/receipt",
             *[f"/p/{pid}/items/{i}" for i in items], *[f"/receipt?no={r}" for r in receipts]]
    out = {}
    for p in paths:
        r = await http.get(site.url + p)
        assert r.status_code == 200, (p, r.status_code, r.text[:500])
        assert "set-cookie" not in r.headers, p  # no session, no cookie on the public site
        out[p] = r.text
    return out


async def test_no_internal_field_on_any_public_page(console: Console, public_site: PublicSite) -> None:  # noqa: F811
    prg = await make_programme(console)
    secret_contact = f"leak-{uuid.uuid4().hex[:6]}@example.cn"
    # A citizen's objection through the console (its user id and text are not public either) and
    # one through the public site (its contact is never shown; its text only on its own receipt).
    await act_via_api(console, "citizen", prg.posting, "OBJECT", reason="CONSOLE-OBJECTION-TEXT 公示内容不实")
    async with httpx.AsyncClient(timeout=60) as http:
        r = await lodge(http, public_site, prg.pid, prg.posting, "PUBLIC-OBJECTION-TEXT 河道仍有黑臭",
                        secret_contact, _addr())
        assert r.status_code == 200, r.text
        receipt = re.search(r'data-testid="receipt-no">([A-Z0-9-]+)<', r.text).group(1)  # type: ignore[union-attr]
        pages = await _walk(http, public_site, prg.pid, [prg.posting, prg.rectifying, prg.petition], [receipt])
        # The walk is not empty: the public parts are there.
        assert "湘江支流黑臭水体整治" in pages[f"/p/{prg.pid}"] and "公示中" in pages[f"/p/{prg.pid}"]
        assert "已暂停" in pages[f"/p/{prg.pid}/items/{prg.posting}"]
        assert "PUBLIC-OBJECTION-TEXT" in pages[f"/receipt?no={receipt}"]
        for path, html in pages.items():
            for s in [*prg.sentinels, secret_contact, "CONSOLE-OBJECTION-TEXT", "citizen", "public-site:",
                      "RECTIFICATION_OFFICE", "WARNING", "警示"]:
                assert s not in html, f"{s!r} leaked on {path}"
            if not path.startswith("/receipt?"):
                assert "PUBLIC-OBJECTION-TEXT" not in html, path  # the text only on its own receipt
        # None of the console's routes exist on the public site.
        for p in ("/login", "/my", "/cases", f"/cases/{prg.posting}", "/api/v1/cases", f"/programmes/{prg.pid}",
                  "/audit", "/docs", "/openapi.json"):
            assert (await http.get(public_site.url + p)).status_code == 404, p
        assert (await http.get(f"{public_site.url}/p/NOPE-{uuid.uuid4().hex[:4]}")).status_code == 404
        # An item of another programme is not found through this one.
        other = await make_programme(console)
        assert (await http.get(f"{public_site.url}/p/{prg.pid}/items/{other.posting}")).status_code == 404


async def test_the_office_chooses_what_is_public_and_names_a_lagging_unit(
        console: Console, public_site: PublicSite) -> None:  # noqa: F811
    prg = await make_programme(console)
    pid = prg.pid
    async with httpx.AsyncClient(timeout=60) as http:
        assert RU.unit not in (await http.get(f"{public_site.url}/p/{pid}")).text
        # Options and namings through the domain rule (admin/publication.py), as the console does.
        from admin import publication as pubdb
        from domain import disclosure as d

        await pubdb.decide(console.pool, pid, event="SET_OPTIONS", user="office", roles=["RECTIFICATION_OFFICE"],
                           unit="整改办", office_unit="整改办", request_id=f"t-{uuid.uuid4().hex}",
                           options=d.PublicationOptions(publish_plan=True, show_due_dates=True, show_units=True))
        html = (await http.get(f"{public_site.url}/p/{pid}")).text
        assert RU.unit in html and "PLAN-TEXT-" in html and "PLAN-REF-" in html
        with pytest.raises(d.PublicationError, match="no overdue item"):
            await pubdb.decide(console.pool, pid, event="NAME_UNIT", user="office", roles=["RECTIFICATION_OFFICE"],
                               unit="整改办", office_unit="整改办", request_id=f"t-{uuid.uuid4().hex}",
                               unit_named=RU.unit, reason="整改滞后")
        with pytest.raises(d.PublicationError, match="rectification office"):
            await pubdb.decide(console.pool, pid, event="SET_OPTIONS", user="ru", roles=["RESPONSIBLE_UNIT"],
                               unit=RU.unit, office_unit="整改办", request_id=f"t-{uuid.uuid4().hex}",
                               options=d.PublicationOptions())
        # Make the rectifying item overdue (its due date in the past), then name its unit.
        await console.pool.execute("UPDATE case_projection SET due_date = current_date - 10 WHERE case_no = $1",
                                   prg.rectifying)
        await pubdb.decide(console.pool, pid, event="NAME_UNIT", user="office", roles=["RECTIFICATION_OFFICE"],
                           unit="整改办", office_unit="整改办", request_id=f"t-{uuid.uuid4().hex}",
                           unit_named=RU.unit, reason=f"整改进度滞后 {HOSTILE}")
        expo = (await http.get(f"{public_site.url}/p/{pid}/exposure")).text
        assert RU.unit in expo and "整改进度滞后" in expo and "<script>alert" not in expo and "&lt;script&gt;" in expo
        pub = await pubdb.publication(console.pool, pid)
        [n] = pub.active_namings()
        await pubdb.decide(console.pool, pid, event="REVOKE_NAMING", user="office", roles=["RECTIFICATION_OFFICE"],
                           unit="整改办", office_unit="整改办", request_id=f"t-{uuid.uuid4().hex}",
                           naming_id=n.naming_id, reason="已整改到位")
        assert "整改进度滞后" not in (await http.get(f"{public_site.url}/p/{pid}/exposure")).text
        led = await console.pool.fetch("SELECT event, actor_user FROM publication_ledger WHERE programme_id = $1 "
                                       "ORDER BY seq", pid)
        assert [(r["event"], r["actor_user"]) for r in led] == [
            ("SET_OPTIONS", "office"), ("NAME_UNIT", "office"), ("REVOKE_NAMING", "office")]


async def test_objection_limits_and_window(console: Console, public_site: PublicSite) -> None:  # noqa: F811
    prg = await make_programme(console)
    pid, item = prg.pid, prg.posting
    count = "SELECT count(*) FROM public_objection WHERE case_no = $1"
    async with httpx.AsyncClient(timeout=60) as http:
        addr = _addr()
        cases = [("x" * (MAX_CHARS + 1), "13800138000", "too long"),
                 ("异议内容\x00含有控制字符的文本", "13800138000", "U+0000"),
                 ("河道仍有黑臭,公示内容与实际不符", "", "required"),
                 ("河道仍有黑臭,公示内容与实际不符", "not-a-contact", "not a valid"),
                 ("短", "13800138000", "too short")]
        for text, contact, words in cases:
            r = await lodge(http, public_site, pid, item, text, contact, addr)
            assert r.status_code == 422 and words in r.text, (words, r.status_code)
        bad_token = await lodge(http, public_site, pid, item, "河道仍有黑臭,公示内容与实际不符", "13800138000", addr,
                                token="123.abc")
        assert bad_token.status_code == 422 and "token" in bad_token.text
        cross = await http.post(f"{public_site.url}/p/{pid}/items/{item}/objections",
                                data={"token": await form_token(http, public_site, pid, item),
                                      "text": "河道仍有黑臭,公示内容与实际不符", "contact": "13800138000"},
                                headers={"Origin": "https://evil.example", "X-Forwarded-For": addr})
        assert cross.status_code == 403
        assert await console.pool.fetchval(count, item) == 0  # nothing stored for refused input
        # Outside the window: the rectifying item has no form, and a POST is refused (409).
        page = (await http.get(f"{public_site.url}/p/{pid}/items/{prg.rectifying}")).text
        assert 'name="token"' not in page
        from datetime import UTC, datetime

        from admin.public.store import form_key
        from domain.disclosure import form_token as mint
        key = await form_key(console.pool)
        r = await lodge(http, public_site, pid, prg.rectifying, "河道仍有黑臭,公示内容与实际不符", "13800138001", addr,
                        token=mint(key, prg.rectifying, datetime.now(UTC)))
        assert r.status_code == 409 and "不在公示期内" in r.text
        assert await console.pool.fetchval(count, prg.rectifying) == 0
        # Per-address: PER_ADDRESS objections from one address, then 429 naming the limit.
        for i in range(PER_ADDRESS):
            r = await lodge(http, public_site, pid, item, f"第{i}条异议:河道仍有黑臭 {HOSTILE}", f"1380013{i:04d}", addr)
            assert r.status_code == 200, r.text
            assert "<script>alert" not in r.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in r.text
        r = await lodge(http, public_site, pid, item, "再次提出异议:河道仍有黑臭", "13900000000", addr)
        assert r.status_code == 429 and "per-address limit" in r.text and f"at most {PER_ADDRESS}" in r.text
        assert "Retry-After" in r.headers
        # Per-contact: the same e-mail from fresh addresses.
        mail = f"Repeat-{uuid.uuid4().hex[:6]}@Example.cn"
        for _ in range(PER_CONTACT):
            assert (await lodge(http, public_site, pid, item, "同一联系人的异议:河道仍有黑臭", mail, _addr())).status_code == 200
        r = await lodge(http, public_site, pid, item, "同一联系人的异议:河道仍有黑臭", mail.lower(), _addr())
        assert r.status_code == 429 and "per-contact limit" in r.text
    assert await console.pool.fetchval(count, item) == PER_ADDRESS + PER_CONTACT
    # Each stored objection reached the case as OBJECT by a Role.PUBLIC system actor; no contact in it.
    rows = await console.pool.fetch("SELECT actor_user, actor_role, reason, data::text AS data FROM ledger "
                                    "WHERE case_no = $1 AND event = 'OBJECT'", item)
    assert len(rows) == PER_ADDRESS + PER_CONTACT
    assert all(r["actor_role"] == "PUBLIC" and r["actor_user"].startswith("public-site:PO-") for r in rows)
    assert not any("1380013" in r["reason"] + r["data"] or "example.cn" in (r["reason"] + r["data"]).lower()
                   for r in rows)
    assert await console.pool.fetchval("SELECT count(*) FROM public_objection WHERE case_no = $1 "
                                       "AND status = 'DELIVERED'", item) == PER_ADDRESS + PER_CONTACT
    await wait_projection(console, item, "PUBLIC_POSTING")


async def test_hostile_title_is_escaped(console: Console, public_site: PublicSite) -> None:  # noqa: F811
    prg = await make_programme(console, hostile_title=f"尾矿库 {HOSTILE}")
    async with httpx.AsyncClient(timeout=60) as http:
        for p in (f"/p/{prg.pid}", f"/p/{prg.pid}/postings", f"/p/{prg.pid}/items/{prg.posting}"):
            html = (await http.get(public_site.url + p)).text
            assert "<script>alert" not in html and "<img src=x" not in html, p
            assert "&lt;script&gt;" in html, p
        r = await http.get(f"{public_site.url}/receipt?no=AAAA-BBBB-CCCC-DDDD")
        assert r.status_code == 404 and "No such receipt" in r.text
        assert (await http.get(f"{public_site.url}/receipt?no=%00x")).status_code == 400


async def test_an_objection_stored_but_not_delivered_reaches_the_case_on_lookup(
        console: Console, public_site: PublicSite) -> None:  # noqa: F811
    """A crash between storing and delivering (or the engine away) leaves a STORED row; looking up its
    receipt delivers it, once."""
    from admin.public.store import new_receipt

    prg = await make_programme(console)
    receipt, ref = new_receipt(), f"PO-{uuid.uuid4().hex[:8].upper()}"
    await console.pool.execute(
        "INSERT INTO public_objection (receipt, objection_ref, programme_id, case_no, text, contact, contact_kind, "
        "address) VALUES ($1, $2, $3, $4, '存储后未送达的异议:河道仍有黑臭', '13700000000', 'PHONE', '10.9.9.9')",
        receipt, ref, prg.pid, prg.posting)
    async with httpx.AsyncClient(timeout=60) as http:
        for _ in range(2):
            r = await http.get(f"{public_site.url}/receipt", params={"no": receipt})
            assert r.status_code == 200 and "待整改办裁定" in r.text, r.text[-800:]
    assert await console.pool.fetchval("SELECT status FROM public_objection WHERE receipt = $1", receipt) == "DELIVERED"
    n = await console.pool.fetchval("SELECT count(*) FROM ledger WHERE case_no = $1 AND event = 'OBJECT' "
                                    "AND actor_user = $2", prg.posting, f"public-site:{ref}")
    assert n == 1


async def test_an_objection_stored_while_the_engine_was_away_is_delivered_without_a_lookup(
        console: Console, public_site: PublicSite) -> None:  # noqa: F811
    """Nobody looks the receipt up: the site's own redelivery (every PUBLIC_REDELIVER_SECONDS)
    sends the stored objection to its case, once, and the posting pauses."""
    from admin.public.store import new_receipt

    prg = await make_programme(console)
    receipt, ref = new_receipt(), f"PO-{uuid.uuid4().hex[:8].upper()}"
    await console.pool.execute(
        "INSERT INTO public_objection (receipt, objection_ref, programme_id, case_no, text, contact, contact_kind, "
        "address) VALUES ($1, $2, $3, $4, '引擎不可用时存储的异议:河道仍有黑臭', '13700000001', 'PHONE', '10.9.9.8')",
        receipt, ref, prg.pid, prg.posting)
    status = "STORED"
    for _ in range(150):  # up to 30 s; the site retries every REDELIVER_SECONDS
        status = await console.pool.fetchval("SELECT status FROM public_objection WHERE receipt = $1", receipt)
        if status != "STORED":
            break
        await asyncio.sleep(0.2)
    assert status == "DELIVERED"
    await asyncio.sleep(REDELIVER_SECONDS + 1)  # another pass of the loop sends nothing more
    n = await console.pool.fetchval("SELECT count(*) FROM ledger WHERE case_no = $1 AND event = 'OBJECT' "
                                    "AND actor_user = $2", prg.posting, f"public-site:{ref}")
    assert n == 1
