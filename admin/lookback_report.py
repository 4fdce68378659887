"""The look-back campaign's report (回头看报告) as .xlsx (openpyxl) and PDF (reportlab, built-in CID
font STSong-Light: no font file), like the statistics and timeline exports. Built from a scoped
view (admin/lookbacks.py): a reader gets in the report exactly what the campaign page shows it.

Sheets / sections: 汇总 summary (selected, visited, findings by kind, reopened, referrals
proposed, unvisited), 核查结果 findings (one row per selected case), 未核查 unvisited.
"""

from __future__ import annotations

import html
import io
from typing import Any

from domain.lookback import FINDING_LABELS_ZH, CampaignFinding

SUMMARY_ROWS = [
    ("selected", "选取案件 selected"),
    ("visited", "已核查 visited"),
    ("unvisited", "未核查 unvisited"),
    ("reopened", "已重新整改 reopened"),
    ("reopen_failed", "重新打开失败 reopen failed"),
    ("referrals_proposed", "拟移交问责 referrals proposed"),
]
ITEM_HEADERS = ["案件编号 case", "标题 title", "选取时阶段 stage", "主体责任单位 units", "发现 finding",
                "核查情况 evidence", "佐证 refs", "核查人 inspector", "核查时间 at", "重新整改 reopened",
                "新期限 new due", "拟移交问责 referral proposed"]


def summary(v: dict[str, Any]) -> list[tuple[str, int]]:
    f = v["figures"]
    rows = [(label, int(f[key])) for key, label in SUMMARY_ROWS]
    rows += [(f"{FINDING_LABELS_ZH[k]} {k.value}", int(f["findings"][k.value])) for k in CampaignFinding]
    return rows


def _item_cells(i: dict[str, Any]) -> list[Any]:
    return [i["case_no"], i["title"], i["stage_at_selection"], "、".join(i["responsible_units"]),
            f"{i['finding_zh']} {i['finding'] or ''}".strip(), i["evidence"], "\n".join(i["evidence_refs"]),
            f"{i['inspector']} {i['inspector_unit']}".strip(), i["found_at"].strftime("%Y-%m-%d %H:%M") if i["found_at"]
            else "", i["reopen"] or "", i["reopen_due_date"].isoformat() if i["reopen_due_date"] else "",
            i["referral_proposed_zh"]]


def _header(v: dict[str, Any]) -> list[tuple[str, str]]:
    return [("回头看 campaign", f"{v['name']} ({v['campaign_id']})"),
            ("依据 basis", v["basis"] or ""),
            ("方式 mode", "四不两直/明察暗访 unannounced" if v["unannounced"] else "常规 announced"),
            ("期间 period", f"{v['start_date']} 至 {v['end_date']}"),
            ("整改方案 programme", v["programme_id"] or ""),
            ("状态 stage", f"{v['stage_zh']} {v['stage']}")]


def to_xlsx(v: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "汇总"
    for k, val in _header(v):
        ws.append([k, val])
    ws.append([])
    ws.append(["项目 item", "数量 count"])
    ws.cell(ws.max_row, 1).font = ws.cell(ws.max_row, 2).font = Font(bold=True)
    for label, n in summary(v):
        ws.append([label, n])
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 60
    for title, rows in (("核查结果", v["items"]), ("未核查", v["unvisited"])):
        sh = wb.create_sheet(title)
        sh.append(ITEM_HEADERS)
        for c in sh[1]:
            c.font = Font(bold=True)
        for i in rows:
            sh.append([_safe(x) for x in _item_cells(i)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _safe(x: Any) -> Any:
    """openpyxl refuses control characters; the domain refuses them already, this is belt and braces."""
    if isinstance(x, str):
        return "".join(ch for ch in x if ch in "\n\t" or ord(ch) >= 32)
    return x


def to_pdf(v: dict[str, Any]) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    small = ParagraphStyle("small", fontName=font, fontSize=7.5, leading=9.5, wordWrap="CJK")
    body = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=13, wordWrap="CJK")
    title = ParagraphStyle("title", fontName=font, fontSize=14, leading=18)

    def p(text: Any, style: ParagraphStyle = small) -> Paragraph:
        return Paragraph(html.escape(str(text))[:3000].replace("\n", "<br/>"), style)

    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                       ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                       ("VALIGN", (0, 0), (-1, -1), "TOP")])
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=landscape(A4), leftMargin=10 * mm, rightMargin=10 * mm, topMargin=10 * mm,
                            bottomMargin=10 * mm, title=f"回头看报告 {v['campaign_id']}", author="case-engine")
    story: list[Any] = [p(f"回头看报告 Look-back report: {v['name']}", title)]
    story += [p(f"{k}: {val}", body) for k, val in _header(v)]
    story.append(Spacer(1, 3 * mm))
    st = LongTable([[p("项目 item", body), p("数量 count", body)]] + [[p(a, body), p(str(n), body)] for a, n in summary(v)],
                   colWidths=[80 * mm, 30 * mm], repeatRows=1)
    st.setStyle(grid)
    story += [st, Spacer(1, 4 * mm)]
    for heading, rows in (("核查结果 findings", v["items"]), ("未核查 unvisited", v["unvisited"])):
        story.append(p(heading, body))
        data = [[p(h) for h in ITEM_HEADERS]] + [[p(c) for c in _item_cells(i)] for i in rows]
        t = LongTable(data, colWidths=[20 * mm, 30 * mm, 18 * mm, 25 * mm, 18 * mm, 50 * mm, 20 * mm, 22 * mm,
                                       20 * mm, 16 * mm, 18 * mm, 20 * mm], repeatRows=1)
        t.setStyle(grid)
        story += [t, Spacer(1, 4 * mm)]
    doc.build(story)
    return buf.getvalue()
