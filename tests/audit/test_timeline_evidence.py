"""The audit timeline's evidence section: files from the store matched with the actions citing
them, files cited but not stored, and HTML/PDF/text rendering (long cells included)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime

from pypdf import PdfReader

from audit.timeline import TimelineEntry, evidence_rows, render_html, render_pdf, render_text

A, B, C = "a" * 64, "b" * 64, "c" * 64


@dataclass
class File:
    sha256: str
    original_name: str
    media_type: str = "image/jpeg"
    size: int = 1234
    uploader_user: str = "ru"
    uploader_unit: str = "县政府"
    uploaded_at: datetime = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)


def _entry(refs: list[str], label: str = "VERIFY_PASS", event_id: int = 40) -> TimelineEntry:
    return TimelineEntry(at=datetime(2026, 5, 2, tzinfo=UTC), kind="ACTION", label_zh="核查验收通过", label_en=label,
                         detail="生态修复证据 " + "、".join(refs), event_id=event_id, data={"evidence": refs})


def test_rows_match_files_with_the_actions_citing_them() -> None:
    entries = [_entry([f"evidence:sha256:{A}", "doc:现场核查-001", f"evidence:sha256:{C}"]),
               _entry([f"evidence:sha256:{A}", "evidence:bad"], label="ACKNOWLEDGE", event_id=12)]
    rows = evidence_rows([File(A, "现场.jpg"), File(B, "报告.pdf", "application/pdf")], entries)
    by = {r.sha256: r for r in rows}
    assert [r.sha256 for r in rows] == [A, B, C]
    assert len(by[A].cited_by) == 2 and "VERIFY_PASS" in by[A].cited_by[0] and "历史事件 12" in by[A].cited_by[1]
    assert by[B].cited_by == [] and by[B].stored
    assert not by[C].stored and by[C].original_name == ""  # cited in the history, missing from the store


def test_html_text_and_pdf_list_each_file_with_its_hash() -> None:
    entries = [_entry([f"evidence:sha256:{A}"] * 60)]  # a long cell: must not overflow a PDF page
    rows = evidence_rows([File(A, "现场.jpg"), File(B, "报告.pdf", "application/pdf")], entries)
    doc = render_html("E-1", entries, evidence=rows)
    assert f"<code>{A}</code>" in doc and f"<code>{B}</code>" in doc and "现场.jpg" in doc and "佐证材料" in doc
    text = render_text("E-1", entries, rows)
    assert f"sha256 {B}" in text and "报告.pdf" in text
    pdf = render_pdf("E-1", entries, evidence=rows)
    content = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert B[:40] in content.replace("\n", "")
    # Without evidence the documents are as before.
    assert "佐证材料" not in render_html("E-1", entries)
