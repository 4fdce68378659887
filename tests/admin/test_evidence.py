"""Evidence files against the real console (dev server, worker, PostgreSQL): upload through the
console form and the API, type and size refusals, read scoping, 50 files on one case, the
verification form's pickers, the audit timeline, and no file bytes in the workflow history."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from datetime import timedelta

import httpx
import pytest

from tests.admin.conftest import Console, act_via_api, file_via_api, wait_projection
from tests.admin.test_console_http import _csrf, login

pytestmark = pytest.mark.devserver

LIMIT = 25 * 1024 * 1024  # the console's default EVIDENCE_MAX_BYTES


def jpeg(n: int, seed: bytes = b"") -> bytes:
    """`n` bytes that start like a JPEG, the rest random (unique per call)."""
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + seed
    return head + os.urandom(max(0, n - len(head)))


def png(n: int) -> bytes:
    head = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    return head + os.urandom(max(0, n - len(head)))


def pdf(n: int) -> bytes:
    head = b"%PDF-1.7\n"
    return head + os.urandom(max(0, n - len(head) - 6)) + b"%%EOF\n"


async def upload_api(c: Console, user: str, case_no: str, name: str, data: bytes) -> httpx.Response:
    async with c.api(user) as http:
        return await http.post(f"/api/v1/cases/{case_no}/evidence", params={"filename": name}, content=data)


async def upload_form(http: httpx.AsyncClient, case_no: str, name: str, data: bytes, ctype: str = "image/jpeg",
                      csrf: str | None = None) -> httpx.Response:
    if csrf is None:
        csrf = _csrf((await http.get(f"/cases/{case_no}")).text)
    return await http.post(f"/cases/{case_no}/evidence", data={"csrf_token": csrf},
                           files={"file": (name, data, ctype)})


async def files_of(c: Console, case_no: str) -> list[dict]:
    return [dict(r) for r in await c.pool.fetch(
        "SELECT sha256, size, media_type, original_name, uploader_user, uploader_unit FROM evidence_file "
        "WHERE case_no = $1 ORDER BY id", case_no)]


async def to_verification(c: Console, case_no: str) -> None:
    """File → transfer → acknowledge → submit → prelim pass → (posting skipped) → apply closure."""
    await act_via_api(c, "office", case_no, "TRANSFER")
    await act_via_api(c, "ru", case_no, "ACKNOWLEDGE")
    for seq in (1, 2):  # 验收 needs every measure done with its evidence (issue 13)
        await act_via_api(c, "ru", case_no, "COMPLETE_MEASURE", measure_seq=seq, evidence=[f"doc:measure-{seq}"])
    await act_via_api(c, "ru", case_no, "SUBMIT_COMPLETION", reason="整改完成")
    await act_via_api(c, "lead", case_no, "PRELIM_PASS")
    await c.env.fast_forward(c.env.client.get_workflow_handle(f"case-{case_no}"), timedelta(days=8))
    await wait_projection(c, case_no, "CLOSURE_APPLICATION", timeout=30)
    await act_via_api(c, "ru", case_no, "APPLY_CLOSURE", reason="公示无异议")
    await wait_projection(c, case_no, "VERIFICATION")


# ------------------------------------------------------------------ upload and download


async def test_a_20_mb_photo_through_the_console_and_a_20_mb_pdf_through_the_api(console: Console) -> None:
    case_no = await file_via_api(console, console.case_record())
    photo, doc = jpeg(20 * 1024 * 1024), pdf(20 * 1024 * 1024 + 5)
    http = await login(console, "ru")
    r = await upload_form(http, case_no, "现场照片.jpg", photo)
    assert r.status_code == 303 and "ok=EVIDENCE" in r.headers["location"], r.text[-2000:]
    r = await upload_api(console, "office", case_no, "监测报告.pdf", doc)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["sha256"] == hashlib.sha256(doc).hexdigest() and body["size"] == len(doc)
    assert body["media_type"] == "application/pdf" and body["reference"] == f"evidence:sha256:{body['sha256']}"
    assert body["uploader_user"] == "office" and body["uploader_unit"] == "整改办"

    rows = await files_of(console, case_no)
    assert [(f["original_name"], f["media_type"], f["size"], f["uploader_user"]) for f in rows] == [
        ("现场照片.jpg", "image/jpeg", len(photo), "ru"), ("监测报告.pdf", "application/pdf", len(doc), "office")]
    stored = await console.pool.fetchval(
        "SELECT sum(length(data)) FROM evidence_chunk WHERE sha256 = $1", hashlib.sha256(photo).hexdigest())
    assert stored == len(photo)

    # Served back byte for byte, with the original name, as an attachment; a photo also inline.
    page = await http.get(f"/cases/{case_no}")
    assert "现场照片.jpg" in page.text and "监测报告.pdf" in page.text and 'data-testid="evidence-upload"' in page.text
    sha = hashlib.sha256(photo).hexdigest()
    got = await http.get(f"/cases/{case_no}/evidence/{sha}")
    assert got.status_code == 200 and got.content == photo
    assert got.headers["content-type"] == "image/jpeg" and got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "%E7%8E%B0%E5%9C%BA" in got.headers["content-disposition"]  # 现场 in filename*
    inline = await http.get(f"/cases/{case_no}/evidence/{sha}?inline=1")
    assert inline.headers["content-disposition"].startswith("inline;")
    async with console.api("lead") as api:
        r = await api.get(f"/api/v1/cases/{case_no}/evidence/{body['sha256']}")
        assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == body["sha256"]
        pdf_inline = await http.get(f"/cases/{case_no}/evidence/{body['sha256']}?inline=1")
        assert pdf_inline.headers["content-disposition"].startswith("attachment;")  # PDFs never inline
    await http.aclose()


async def test_the_same_file_twice_is_stored_once(console: Console) -> None:
    a = await file_via_api(console, console.case_record())
    b = await file_via_api(console, console.case_record())
    data = png(300_000)
    sha = hashlib.sha256(data).hexdigest()
    assert (await upload_api(console, "office", a, "a.png", data)).status_code == 201
    again = await upload_api(console, "ru", a, "renamed.png", data)
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["original_name"] == "a.png"  # the first upload's row
    assert (await upload_api(console, "ru", b, "b.png", data)).status_code == 201
    assert await console.pool.fetchval("SELECT count(*) FROM evidence_blob WHERE sha256 = $1", sha) == 1
    assert await console.pool.fetchval("SELECT count(*) FROM evidence_chunk WHERE sha256 = $1", sha) == 1
    assert await console.pool.fetchval("SELECT count(*) FROM evidence_file WHERE sha256 = $1", sha) == 2


# ------------------------------------------------------------------ refusals


async def test_type_is_checked_by_content_not_by_name(console: Console) -> None:
    case_no = await file_via_api(console, console.case_record())
    for name, data, why in [
        ("photo.jpg", b"GIF89a" + os.urandom(1000), "JPEG, PNG and PDF"),
        ("report.pdf", b"<html><script>alert(1)</script></html>", "JPEG, PNG and PDF"),
        ("scan.png", b"PK\x03\x04" + os.urandom(500), "JPEG, PNG and PDF"),
        ("empty.pdf", b"", "empty"),
    ]:
        r = await upload_api(console, "office", case_no, name, data)
        assert r.status_code == 422, (name, r.text)
        assert r.json()["error"] == "InvalidInput" and why in r.json()["message"] and name in r.json()["message"]
    # A control character in the name: refused before any route runs (400, the URL hygiene of
    # admin/web/security.py) when it is in the query; the route's own check names it otherwise.
    r = await upload_api(console, "office", case_no, "bad\x07name.jpg", jpeg(100))
    assert r.status_code in (400, 422) and "control" in r.json()["message"]
    http = await login(console, "office")
    r = await upload_form(http, case_no, "notes.txt", b"just text", "text/plain")
    assert r.status_code == 422 and "JPEG, PNG and PDF" in r.text and "notes.txt" in r.text
    await http.aclose()
    assert await files_of(console, case_no) == []


async def test_size_limit_with_and_without_a_declared_length(console: Console) -> None:
    case_no = await file_via_api(console, console.case_record())
    big = jpeg(LIMIT + 1)
    r = await upload_api(console, "office", case_no, "big.jpg", big)  # Content-Length declared
    assert r.status_code == 413 and r.json()["error"] == "FileTooLarge"
    assert "26,214,400" in r.json()["message"] and "EVIDENCE_MAX_BYTES" in r.json()["message"]

    async def chunked():  # no Content-Length: counted as it arrives
        for i in range(0, len(big), 1 << 20):
            yield big[i:i + (1 << 20)]

    async with console.api("office") as api:
        r = await api.post(f"/api/v1/cases/{case_no}/evidence", params={"filename": "big.jpg"}, content=chunked())
    assert r.status_code == 413 and "EVIDENCE_MAX_BYTES" in r.json()["message"]
    ok = await upload_api(console, "office", case_no, "at-limit.jpg", jpeg(LIMIT))
    assert ok.status_code == 201, ok.text

    http = await login(console, "office")
    r = await upload_form(http, case_no, "big.jpg", big)
    assert r.status_code == 413 and "文件过大" in r.text and "EVIDENCE_MAX_BYTES" in r.text
    await http.aclose()
    assert [f["original_name"] for f in await files_of(console, case_no)] == ["at-limit.jpg"]


async def test_only_those_who_may_read_the_case_get_its_files(console: Console) -> None:
    case_no = await file_via_api(console, console.case_record())
    data = jpeg(5000)
    sha = (await upload_api(console, "ru", case_no, "x.jpg", data)).json()["sha256"]
    path = f"/api/v1/cases/{case_no}/evidence"
    # A role that does not see the case gets the same 404 as for a case never filed (no probing).
    for user, list_status, upload_status in [("office", 200, 201), ("lead2", 200, 201), ("auditor", 200, 403),
                                             ("ru-other", 404, 404), ("discipline", 404, 404),
                                             ("citizen", 404, 404)]:
        async with console.api(user) as api:
            assert (await api.get(path)).status_code == list_status, user
            assert (await api.get(f"{path}/{sha}")).status_code == list_status, user
            r = await api.post(path, params={"filename": f"{user}.jpg"}, content=jpeg(3000))
            assert r.status_code == upload_status, (user, r.text)
            if list_status == 200:
                got = await api.get(f"{path}/{sha}")
                assert got.content == data
            else:
                assert (await api.get(path)).json()["error"] == "CaseNotFoundError"
    async with console.api("office") as api:
        assert (await api.get("/api/v1/cases/NO-SUCH-CASE/evidence")).status_code == 404
        assert (await api.get(f"{path}/{'0' * 64}")).status_code == 404
        assert (await api.get(f"{path}/not-a-digest")).status_code == 400
    async with httpx.AsyncClient(base_url=console.url) as anon:
        assert (await anon.get(f"{path}/{sha}")).status_code == 401
        r = await anon.get(f"/cases/{case_no}/evidence/{sha}")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")

    # The console: another unit gets 404 for the case, its files and its upload form; a file of
    # one case is not served through another case.
    other = await login(console, "ru-other")
    assert (await other.get(f"/cases/{case_no}/evidence/{sha}")).status_code == 404
    page = await other.get("/my")
    r = await upload_form(other, case_no, "y.jpg", jpeg(100), csrf=_csrf(page.text))
    assert r.status_code == 404 and "x.jpg" not in r.text
    await other.aclose()
    auditor = await login(console, "auditor")
    page = await auditor.get(f"/cases/{case_no}")
    assert "x.jpg" in page.text and 'data-testid="evidence-upload"' not in page.text  # reads, cannot add
    assert (await upload_form(auditor, case_no, "z.jpg", jpeg(100), csrf=_csrf(page.text))).status_code == 403
    await auditor.aclose()
    second = await file_via_api(console, console.case_record())
    async with console.api("office") as api:
        assert (await api.get(f"/api/v1/cases/{second}/evidence/{sha}")).status_code == 404


async def test_an_upload_without_the_csrf_token_stores_nothing(console: Console) -> None:
    case_no = await file_via_api(console, console.case_record())
    http = await login(console, "office")
    r = await upload_form(http, case_no, "a.jpg", jpeg(2000), csrf="forged")
    assert r.status_code == 403 and "CSRF" in r.text
    await http.aclose()
    assert await files_of(console, case_no) == []


async def test_references_must_name_files_of_this_case(console: Console) -> None:
    case_no = await file_via_api(console, console.case_record())
    other = await file_via_api(console, console.case_record())
    foreign = (await upload_api(console, "office", other, "f.jpg", jpeg(2000))).json()["reference"]
    await act_via_api(console, "office", case_no, "TRANSFER")
    async with console.api("ru") as api:
        for ref, why in [(foreign, "not uploaded to case"), ("evidence:sha256:1234", "malformed evidence reference")]:
            r = await api.post(f"/api/v1/cases/{case_no}/actions/ACKNOWLEDGE", json={"evidence": [ref]})
            assert r.status_code == 422 and why in r.json()["message"], r.text
    assert await console.pool.fetchval("SELECT stage FROM case_projection WHERE case_no = $1", case_no) == "TRANSFERRED"
    mine = (await upload_api(console, "ru", case_no, "receipt.pdf", pdf(3000))).json()["reference"]
    await act_via_api(console, "ru", case_no, "ACKNOWLEDGE", evidence=[mine, "doc:签收单-1"])


# ------------------------------------------------------------------ 50 files, verification, history, audit


async def test_fifty_files_verification_form_audit_and_no_bytes_in_history(console: Console) -> None:
    case_no = await file_via_api(console, console.case_record())
    await to_verification(console, case_no)
    payloads: dict[str, bytes] = {}
    makers = (jpeg, png, pdf)
    for i in range(48):  # through the API ...
        data = makers[i % 3](2000 + 97 * i)
        r = await upload_api(console, "ru" if i % 2 else "lead", case_no, f"佐证-{i:02d}{'.jpg.png.pdf'[4 * (i % 3):4 * (i % 3) + 4]}",
                             data)
        assert r.status_code == 201, r.text
        payloads[r.json()["sha256"]] = data
    lead = await login(console, "lead")
    big = jpeg(3 * 1024 * 1024, seed=b"history-probe")  # ... and through the console form
    for name, data in (("现场-大图.jpg", big), ("验收报告.pdf", pdf(40_000))):
        r = await upload_form(lead, case_no, name, data, "application/octet-stream")
        assert r.status_code == 303, r.text[-1500:]
        payloads[hashlib.sha256(data).hexdigest()] = data
    async with console.api("auditor") as api:
        listed = (await api.get(f"/api/v1/cases/{case_no}/evidence")).json()["files"]
    assert len(listed) == 50 and {f["sha256"] for f in listed} == set(payloads)

    # The case page lists all 50 and the verification form offers each for every criterion.
    page = await lead.get(f"/cases/{case_no}")
    assert page.status_code == 200
    assert len(re.findall(r'<tr data-sha256="[0-9a-f]{64}"', page.text)) == 50
    for key in ("eco_restored", "pollution_eliminated", "public_satisfied"):
        assert len(re.findall(rf'name="{key}_evidence_file" value="evidence:sha256:[0-9a-f]{{64}}"', page.text)) == 50

    refs = [f["reference"] for f in listed]
    big_ref = f"evidence:sha256:{hashlib.sha256(big).hexdigest()}"
    form: dict[str, str | list[str]] = {"csrf_token": _csrf(page.text), "request_id": "ev50-verify",
                                        "expected_stage": "VERIFICATION"}
    for key, picks in (("eco_restored", [big_ref] + refs[:3]), ("pollution_eliminated", refs[3:20]),
                       ("public_satisfied", refs[20:50])):
        form[f"{key}_met"] = "on"
        form[f"{key}_evidence_file"] = picks
    form["public_satisfied_evidence"] = "doc:群众满意度调查-003"
    r = await lead.post(f"/cases/{case_no}/act/VERIFY_PASS", data=form)
    assert r.status_code == 303, r.text[-2000:]
    await wait_projection(console, case_no, "FILING")
    await lead.aclose()

    # The workflow history holds the references, never the bytes (raw, hex or base64 at any
    # alignment). Searched in the serialized events, where every payload's data is raw JSON.
    history = await console.env.client.get_workflow_handle(f"case-{case_no}").fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    assert big_ref.encode() in raw and refs[49].encode() in raw and "doc:群众满意度调查-003".encode() in raw
    for sha, data in payloads.items():
        body = data[len(data) // 2:len(data) // 2 + 300]
        assert body not in raw, f"bytes of {sha} in the history"
        assert body.hex().encode() not in raw
        for k in range(3):
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                assert enc(body[k:])[4:200] not in raw, f"base64 of {sha} in the history"
    assert len(raw) < 200_000  # 50 files of up to 3 MiB: the history carries references only

    # The auditor's page and exports list every file with its hash and the action citing it.
    office = await login(console, "office")
    audit = await office.get(f"/audit/cases/{case_no}")
    assert audit.status_code == 200 and 'data-testid="audit-evidence"' in audit.text
    for sha in payloads:
        assert f"<code>{sha}</code>" in audit.text
    assert "核查验收通过" in audit.text or "VERIFY_PASS" in audit.text
    html = await office.get(f"/audit/cases/{case_no}/timeline.html")
    assert html.status_code == 200 and all(sha in html.text for sha in payloads)
    assert "现场-大图.jpg" in html.text and "生态修复证据" in html.text
    cited = re.search(rf'<tr data-sha256="{hashlib.sha256(big).hexdigest()}">.*?</tr>', html.text)
    assert cited and "VERIFY_PASS" in cited.group(0)
    pdf_export = await office.get(f"/audit/cases/{case_no}/timeline.pdf")
    assert pdf_export.status_code == 200 and pdf_export.content.startswith(b"%PDF")
    await office.aclose()


async def test_casectl_uploads_lists_and_gets_a_20_mb_file(console: Console, tmp_path) -> None:
    case_no = await file_via_api(console, console.case_record())
    photo = tmp_path / "现场照片-20MB.jpg"
    photo.write_bytes(jpeg(20 * 1024 * 1024))
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(pdf(120_000))
    r = await console.cli("evidence", "upload", case_no, str(photo), str(scan), "--json", user="ru")
    assert r.returncode == 0, r.stderr
    up = json.loads(r.stdout)["files"]
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    assert up[0]["sha256"] == sha and up[0]["reference"] == f"evidence:sha256:{sha}" and up[0]["created"]

    r = await console.cli("evidence", "list", case_no, user="lead")
    assert r.returncode == 0, r.stderr
    assert "现场照片-20MB.jpg" in r.stdout and sha[:12] in r.stdout and "2 evidence file(s)" in r.stdout

    out = tmp_path / "back.jpg"
    r = await console.cli("evidence", "get", case_no, sha[:10], "-o", str(out), user="auditor")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == photo.read_bytes() and "verified" in r.stdout

    bad = tmp_path / "notes.txt"
    bad.write_text("not evidence")
    r = await console.cli("evidence", "upload", case_no, str(bad), user="ru")
    assert r.returncode == 1 and "JPEG, PNG and PDF" in r.stderr and "notes.txt" in r.stderr
    r = await console.cli("evidence", "upload", case_no, str(scan), user="auditor")
    assert r.returncode == 4
    r = await console.cli("evidence", "list", case_no, user="ru-other")
    assert r.returncode == 1 and f"no case {case_no}" in r.stderr
    r = await console.cli("evidence", "get", case_no, "0" * 12, "-o", str(tmp_path / "n"), user="office")
    assert r.returncode == 1 and "no evidence file" in r.stderr

    # The auditors' command lists the files with their hashes beside the history-derived timeline.
    r = await console.cli("audit", "timeline", case_no, "--format", "json", user=None, extra_env={
        "TEMPORAL_ADDRESS": console.env.client.service_client.config.target_host})
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)["evidence"]
    assert [e["sha256"] for e in ev] == [sha, hashlib.sha256(scan.read_bytes()).hexdigest()]
    assert ev[0]["original_name"] == "现场照片-20MB.jpg" and ev[0]["uploader"] == "ru / " + up[0]["uploader_unit"]
