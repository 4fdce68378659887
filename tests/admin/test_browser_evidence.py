"""Browser test of evidence files: a lead supervising unit uploads a photo on the case page,
then picks it as the evidence of each closure criterion in the verification form (核查验收)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import pytest

from tests.admin.conftest import Console, file_via_api, wait_projection
from tests.admin.test_browser import CHROMIUM, Browser, expect, login, shot
from tests.admin.test_browser import browser as browser  # noqa: F401 (the module's fixture)
from tests.admin.test_evidence import to_verification

pytestmark = pytest.mark.devserver
assert CHROMIUM.exists()


def tiny_png(width: int = 64, height: int = 48) -> bytes:
    """A real PNG (a green gradient), so the preview shows a picture."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (20, 100 + x * 2 % 150, 60))
                    for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def test_upload_a_photo_and_pick_it_as_evidence_for_each_criterion(
    console: Console, browser: Browser, tmp_path: Path  # noqa: F811
) -> None:
    case_no = await file_via_api(console, console.case_record())
    await to_verification(console, case_no)
    photo = tmp_path / "现场核查照片.png"
    photo.write_bytes(tiny_png())
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    ref = f"evidence:sha256:{sha}"

    lead = await login(browser, console, "lead")
    await lead.goto(f"{console.url}/cases/{case_no}")
    await expect(lead.locator("[data-testid=no-evidence]")).to_be_visible()
    await lead.set_input_files("[data-testid=evidence-upload] input[name=file]", str(photo))
    async with lead.expect_navigation():
        await lead.click("[data-testid=evidence-submit]")
    await expect(lead.locator("[data-testid=flash-ok]")).to_contain_text("已上传佐证材料")
    await expect(lead.locator("[data-testid=evidence-list]")).to_contain_text("现场核查照片.png")
    await expect(lead.locator("[data-testid=evidence-list]")).to_contain_text(sha[:12])
    await shot(lead, "evidence-uploaded")

    # A refused upload (not a photo or PDF) says what is wrong, on the case page.
    bad = tmp_path / "notes.txt"
    bad.write_text("meeting notes")
    await lead.set_input_files("[data-testid=evidence-upload] input[name=file]", str(bad))
    async with lead.expect_navigation():
        await lead.click("[data-testid=evidence-submit]")
    await expect(lead.locator("[data-testid=flash-error]")).to_contain_text("JPEG, PNG and PDF")

    await lead.goto(f"{console.url}/cases/{case_no}")
    await lead.click("[data-testid=open-VERIFY_PASS]")
    form = lead.locator("[data-testid=form-VERIFY_PASS]")
    for key in ("eco_restored", "pollution_eliminated", "public_satisfied"):
        await form.locator(f"[name={key}_met]").check()
        picker = form.locator(f"[data-testid=pick-{key}]")
        await expect(picker).to_contain_text("现场核查照片.png")
        await picker.locator(f"input[value='{ref}']").check()
    await shot(lead, "verify-form-evidence")
    async with lead.expect_navigation():
        await lead.click("[data-testid=submit-VERIFY_PASS]")
    await expect(lead.locator("[data-testid=stage-en]")).to_have_text("FILING")
    await wait_projection(console, case_no, "FILING")

    # The picks reached the workflow as references, one per criterion.
    history = await console.env.client.get_workflow_handle(f"case-{case_no}").fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    assert raw.count(ref.encode()) >= 3

    # The preview serves the photo inline to a reader of the case.
    resp = await lead.request.get(f"{console.url}/cases/{case_no}/evidence/{sha}?inline=1")
    assert resp.status == 200 and await resp.body() == photo.read_bytes()
    assert resp.headers["content-type"] == "image/png"
    await lead.context.close()
