"""The import template in the browser: the office downloads it from the import page, fills it in
with the seeds' words, uploads it back; good rows are filed, a bad kind is refused listing the
accepted values. Other roles may not download it. `casectl import` of the same workbook exits 3."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.admin.conftest import Console, wait_projection

pytestmark = pytest.mark.devserver

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed: run `make browser`", allow_module_level=True)

from playwright.async_api import expect  # noqa: E402

from tests.admin.test_browser import browser, login, shot  # noqa: E402,F401 - the module's browser fixture


async def test_template_download_fill_in_and_reimport(console: Console, browser, tmp_path: Path) -> None:  # noqa: F811
    office = await login(browser, console, "office")
    await office.goto(console.url + "/import")
    async with office.expect_download() as dl:
        await office.click("[data-testid=import-template]")
    download = await dl.value
    assert download.suggested_filename == "import-template.xlsx"
    path = tmp_path / "filled.xlsx"
    await download.save_as(str(path))

    wb = load_workbook(path)
    ws = wb.worksheets[0]
    header = [c.value for c in ws[1]]
    example = [c.value for c in ws[2]]
    assert header[0] == "案件编号 case_no" and example[header.index("类型 kind")] == "反馈问题整改任务"
    tag = uuid.uuid4().hex[:6].upper()
    fb, pet, bad = f"TPL-{tag}-1", f"TPL-{tag}-2", f"TPL-{tag}-3"
    ws.cell(row=2, column=1, value=fb)
    second = list(example)
    second[0], second[header.index("类型 kind")] = pet, "交办件"
    second[header.index("标题 title")] = "群众举报某砂石场夜间偷排"
    third = list(example)
    third[0], third[header.index("类型 kind")] = bad, "来信件"
    ws.append(second)
    ws.append(third)
    wb.save(path)

    await office.set_input_files("input[name=file]", str(path))
    async with office.expect_navigation():
        await office.click("[data-testid=submit-import]")
    report = office.locator("[data-testid=import-report]")
    await expect(report).to_contain_text("立案 2 件,拒绝 1 件")
    await expect(report.locator("tr.bad")).to_contain_text("unknown case kind '来信件'")
    await expect(report.locator("tr.bad")).to_contain_text("信访举报交办件")
    await expect(report.locator("tr.bad")).to_contain_text("PETITION (petition / complaint case)")
    await shot(office, "import-template-report")
    await wait_projection(console, fb, "REGISTERED")
    await wait_projection(console, pet, "REGISTERED")
    kinds = dict(await console.pool.fetch("SELECT case_no, kind FROM case_projection WHERE case_no = ANY($1)",
                                          [fb, pet, bad]))
    assert kinds == {fb: "FEEDBACK_PROBLEM", pet: "PETITION"}

    # The same workbook through casectl: the two are already filed, the bad row refused: exit 3.
    p = await console.cli("import", str(path), "--json")
    assert p.returncode == 3, p.stderr
    body = json.loads(p.stdout)
    assert body["filed"] == 0 and body["refused"] == 3
    assert "信访举报交办件" in body["rows"][2]["reason"]

    # A responsible unit may not download it (only the rectification office imports).
    ru = await login(browser, console, "ru")
    r = await ru.request.get(console.url + "/import/template.xlsx")
    assert r.status == 403
    r = await office.request.get(console.url + "/import/template.xlsx")
    assert r.status == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert load_workbook(io.BytesIO(await r.body())).worksheets[0]["A1"].value == "案件编号 case_no"
