"""The statistics summary (admin/statistics.py) as .xlsx (openpyxl, with a closures chart) and as
PDF (reportlab, built-in CID font STSong-Light: no font file; a bar chart drawn by reportlab).

Both are made from the summary dict alone, which the read model already scoped to the reader:
nothing here reads the database. Text cells that look like formulas are written as text.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

from admin.service import _formula_like

TITLE_ZH = "督察整改统计报告"
TITLE_EN = "Rectification statistics"

_PROGRESS_HEADERS = [("name", "名称 name"), ("total", "总数 total"), ("done", "已完成 done"),
                     ("rate", "完成率% rate"), ("RED", "红灯 red"), ("YELLOW", "黄灯 yellow"),
                     ("GREEN", "绿灯 green"), ("NO_DEADLINE", "无时限 no deadline"), ("escalated", "督办 escalated")]
_PERIOD_HEADERS = [("name", "名称 name"), ("total", "期末总数 total at end"), ("done", "期末已完成 done at end"),
                   ("rate", "完成率% rate"), ("closed_in_period", "期内销号 closed in period")]
_CASE_HEADERS = [("case_no", "案件编号 case"), ("light_zh", "状态 light"), ("title", "标题 title"),
                 ("stage_zh", "阶段 stage"), ("responsible_units", "主体责任单位 responsible"),
                 ("due_date", "时限 due"), ("overdue_days", "逾期工作日 overdue days"),
                 ("days_left", "剩余工作日 days left")]


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return "、".join(str(x) for x in v)
    if isinstance(v, int | float):
        return v
    return str(v)


def headline(s: Mapping[str, Any]) -> list[tuple[str, Any]]:
    p = s["period"]
    rows: list[tuple[str, Any]] = [
        ("统计日期 as of", s["today"]),
        ("报告期 period", f"{p['label_zh']} {p['label_en']}"),
        ("督察轮次 round", s["filters"].get("round") or "全部 all"),
        ("案件总数 cases", s["total"]),
        ("已完成 done (销号/长期坚持)", s["done"]),
        ("完成率% completion rate", "" if s["rate"] is None else s["rate"]),
    ]
    rows += [(f"{lt['label_zh']} {lt['label_en']}", lt["n"]) for lt in s["lights"]]
    rows += [
        ("黄灯阈值(工作日) yellow within working days", s["yellow_working_days"]),
        ("期末案件数 cases at period end", p["total_at_end"]),
        ("期末已完成 done at period end", p["done_at_end"]),
        ("期末完成率% rate at period end", "" if p["rate_at_end"] is None else p["rate_at_end"]),
        ("期内立案 filed in period", p["filed_in_period"]),
        ("期内销号 closures in period", p["closures_in_period"]),
        ("期内升级督办 escalations in period", p["escalations_in_period"]),
        ("期内重新整改 reopened in period", p["reopened_in_period"]),
    ]
    return rows


def _table(rows: Sequence[Mapping[str, Any]], headers: Sequence[tuple[str, str]]) -> list[list[Any]]:
    return [[h for _, h in headers]] + [[_cell(r.get(k)) for k, _ in headers] for r in rows]


def sections(s: Mapping[str, Any]) -> list[tuple[str, list[list[Any]]]]:
    """(sheet / section title, rows with a header row) in the order both formats use."""
    p = s["period"]
    out: list[tuple[str, list[list[Any]]]] = [("概要 Summary", [["项目 item", "数值 value"], *map(list, headline(s))])]
    out.append(("每月销号 Closures", [["月份 month", "销号 closures"]]
                + [[m["month"], m["n"]] for m in p["closures_per_month"]]))
    if s["by_round"]:
        out.append(("按轮次 By round", _table(s["by_round"], _PROGRESS_HEADERS)))
    if s["by_unit"]:
        out.append(("按单位 By unit", _table(s["by_unit"], _PROGRESS_HEADERS)))
    if s["by_county"]:
        out.append(("按县市区 By county", _table(s["by_county"], _PROGRESS_HEADERS)))
    if p["by_unit"]:
        out.append(("期末按单位 Period by unit", _table(p["by_unit"], _PERIOD_HEADERS)))
    if p["by_county"]:
        out.append(("期末按县市区 Period by county", _table(p["by_county"], _PERIOD_HEADERS)))
    if s["lights"]:
        out.append(("红黄灯案件 Red & yellow", _table(s["cases"], _CASE_HEADERS)))
    return out


def to_xlsx(s: Mapping[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sections(s):
        ws = wb.create_sheet(title[:31])
        for r in rows:
            ws.append(r)
            for c in ws[ws.max_row]:
                if _formula_like(c.value):
                    c.data_type = "s"  # text, never a formula
        for c in ws[1]:
            c.font = Font(bold=True)
        ws.freeze_panes = "A2"
        ws.column_dimensions["A"].width = 36
        for col in "BCDEFGHI":
            ws.column_dimensions[col].width = 16
        if title.startswith("每月销号") and len(rows) > 1:
            chart = BarChart()
            chart.title = "每月销号 Closures per month"
            chart.add_data(Reference(ws, min_col=2, min_row=1, max_row=len(rows)), titles_from_data=True)
            chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=len(rows)))
            chart.legend = None
            ws.add_chart(chart, "D2")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def to_pdf(s: Mapping[str, Any], scope_note: str = "") -> bytes:
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    small = ParagraphStyle("small", fontName=font, fontSize=7.5, leading=9.5, wordWrap="CJK")
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12, wordWrap="CJK")
    h1 = ParagraphStyle("h1", fontName=font, fontSize=15, leading=20)
    h2 = ParagraphStyle("h2", fontName=font, fontSize=11, leading=15, spaceBefore=6)

    def p(text: Any, style: ParagraphStyle = small) -> Paragraph:
        return Paragraph(html.escape(str(text)).replace("\n", "<br/>"), style)

    period = s["period"]
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm,
                            bottomMargin=12 * mm, title=f"{TITLE_ZH} {period['key']}", author="case-engine")
    story: list[Any] = [p(f"{TITLE_ZH} {TITLE_EN}", h1), p(f"{period['label_zh']} · {period['label_en']}", body)]
    if scope_note:
        story.append(p(scope_note, body))
    width = doc.width
    for title, rows in sections(s):
        story.append(p(title, h2))
        if title.startswith("每月销号"):
            values = [r[1] for r in rows[1:]]
            d = Drawing(width, 45 * mm)
            chart = VerticalBarChart()
            chart.x, chart.y, chart.width, chart.height = 10 * mm, 8 * mm, width - 20 * mm, 33 * mm
            chart.data = [values or [0]]
            chart.categoryAxis.categoryNames = [r[0][2:] for r in rows[1:]] or [""]
            chart.categoryAxis.labels.fontName = "Helvetica"
            chart.categoryAxis.labels.fontSize = 7
            chart.valueAxis.valueMin = 0
            chart.valueAxis.valueMax = max([*values, 1])
            chart.valueAxis.valueStep = max(1, (max([*values, 1]) + 4) // 5)
            chart.bars[0].fillColor = colors.HexColor("#2e7d32")
            d.add(chart)
            story.append(d)
        ncol = len(rows[0])
        colw = [width * (0.34 if ncol > 2 else 0.6)] + [width * (0.66 if ncol > 2 else 0.4) / (ncol - 1)] * (ncol - 1)
        if rows and rows[0] == [h for _, h in _CASE_HEADERS]:
            colw = [width * w for w in (0.1, 0.09, 0.28, 0.1, 0.17, 0.1, 0.08, 0.08)]
        t = LongTable([[p(c) for c in r] for r in rows], colWidths=colw, repeatRows=1)
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        story.append(t)
        story.append(Spacer(1, 3 * mm))
    doc.build(story)
    return buf.getvalue()
