"""Renders a dispatch report (domain.dispatch.DispatchFigures) as xlsx (openpyxl) and as one HTML
page with a server-rendered inline SVG chart (no script, no downloaded asset, no inline CSS: the
console's Content-Security-Policy allows neither, so layout uses HTML and SVG attributes only).

Used by the write activity (the stored report, every unit) and by the console (a unit reader's
view, re-rendered from the stored figures filtered to its own rows).
"""

from __future__ import annotations

import io
from html import escape
from typing import Any

from domain.dispatch import FIGURE_COLUMNS, FLAG_LABELS_ZH, SHANGHAI, DispatchFigures, UnitFigures
from domain.enums import STAGE_LABELS_ZH, Stage

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# The chart's series: (figure, label, colour).
SERIES: tuple[tuple[str, str, str], ...] = (
    ("open", "在办 Open", "#4e79a7"),
    ("due_this_month", "本月到期 Due this month", "#f28e2b"),
    ("overdue", "逾期 Overdue", "#e15759"),
    ("escalated", "升级督办 Escalated", "#b07aa1"),
    ("closed_this_month", "本月销号 Closed this month", "#59a14f"),
    ("no_timer", "无时限 No timer", "#9c755f"),
)


def _text_cell(v: Any) -> Any:
    return v


def render_xlsx(f: DispatchFigures) -> bytes:
    """Two sheets: 汇总 (one row per unit, and the totals) and 清单 (each unit's cases)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "汇总 Summary"
    ws.append([f"月度调度 Monthly dispatch {f.period}", f"整改方案 Programme {f.programme_id}",
               f"截至 As of {f.as_of.astimezone(SHANGHAI):%Y-%m-%d %H:%M} 北京时间"])
    stages = [s for s in Stage if any(s.value in u.by_stage for u in f.units)]
    header = ["责任单位 Unit", *[label for _, label in FIGURE_COLUMNS],
              *[f"{STAGE_LABELS_ZH[s]} {s.value}" for s in stages]]
    ws.append(header)
    for c in ws[2]:
        c.font = Font(bold=True)
    for u in [*f.units, f.totals]:
        ws.append([u.unit, *[getattr(u, k) for k, _ in FIGURE_COLUMNS], *[u.by_stage.get(s.value, 0) for s in stages]])
    ws.freeze_panes = "B3"
    ws.column_dimensions["A"].width = 30
    cases = wb.create_sheet("清单 Cases")
    cases.append(["责任单位 Unit", "案件编号 Case no.", "标题 Title", "阶段 Stage", "时限 Due", "逾期工作日 Overdue wd",
                  "督办层级 Rung", "标记 Flags"])
    for c in cases[1]:
        c.font = Font(bold=True)
    for u in f.units:
        for line in u.cases:
            cases.append([u.unit, line.case_no, line.title, f"{line.stage_zh} {line.stage.value}",
                          line.due_date.isoformat() if line.due_date else "", line.overdue_working_days,
                          line.escalation_level, "、".join(FLAG_LABELS_ZH[x] for x in line.flags)])
    for sheet in (ws, cases):
        for row in sheet.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith(FORMULA_PREFIXES):
                    c.data_type = "s"  # case text is written as text, never as a formula
    cases.freeze_panes = "A2"
    for col, width in zip("ABCDEFGH", (28, 16, 48, 20, 12, 10, 8, 40), strict=True):
        cases.column_dimensions[col].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def chart_svg(units: list[UnitFigures], width: int = 760) -> str:
    """A grouped horizontal bar chart: per unit, one bar per series (SVG attributes only)."""
    bar, gap, label_w, legend_h = 9, 10, 200, 28
    group = bar * len(SERIES) + gap
    height = legend_h + max(1, len(units)) * group + 24
    peak = max([1, *[getattr(u, k) for u in units for k, _, _ in SERIES]])
    scale = (width - label_w - 40) / peak
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="各单位进度 Progress by unit" '
             f'data-testid="dispatch-chart" font-family="sans-serif" font-size="11">']
    x = 0
    for _key, label, colour in SERIES:
        parts.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="13">{escape(label)}</text>')
        x += 14 + 7 * len(label) + 12
    y = legend_h
    for u in units:
        parts.append(f'<text x="{label_w - 6}" y="{y + group / 2}" text-anchor="end">{escape(u.unit[:24])}</text>')
        for i, (key, label, colour) in enumerate(SERIES):
            v = getattr(u, key)
            w = max(v * scale, 0.5 if v else 0)
            by = y + i * bar
            parts.append(f'<rect x="{label_w}" y="{by}" width="{w:.1f}" height="{bar - 1}" fill="{colour}">'
                         f'<title>{escape(u.unit)} · {escape(label)}: {v}</title></rect>')
            if v:
                parts.append(f'<text x="{label_w + w + 3:.1f}" y="{by + bar - 2}" font-size="9">{v}</text>')
        y += group
    if not units:
        parts.append(f'<text x="{label_w}" y="{legend_h + 12}">无案件 No cases</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(f: DispatchFigures) -> str:
    """The whole report as one HTML page: chart, the per-unit table, each unit's list."""
    e = escape
    as_of = f"{f.as_of.astimezone(SHANGHAI):%Y-%m-%d %H:%M}"
    out = ['<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">',
           f"<title>月度调度 Monthly dispatch {e(f.period)} · {e(f.programme_id)}</title></head><body>",
           f'<h1>月度调度 <small>Monthly dispatch</small> {e(f.period)}</h1>',
           f'<p>整改方案 Programme <b data-testid="programme">{e(f.programme_id)}</b> · 截至 as of {as_of} '
           f"北京时间 · 案件 cases {f.cases} · 日历 calendar {e(f.calendar_version)}</p>",
           "<h2>各单位进度 <small>Progress by unit</small></h2>", chart_svg(f.units),
           "<h2>汇总 <small>Summary</small></h2>",
           '<table border="1" cellpadding="4" cellspacing="0" data-testid="dispatch-summary"><thead><tr>'
           "<th>责任单位 Unit</th>" + "".join(f"<th>{e(label)}</th>" for _, label in FIGURE_COLUMNS) +
           "</tr></thead><tbody>"]
    for u in [*f.units, f.totals]:
        out.append(f'<tr data-unit="{e(u.unit)}"><td>{e(u.unit)}</td>' +
                   "".join(f'<td align="right">{getattr(u, k)}</td>' for k, _ in FIGURE_COLUMNS) + "</tr>")
    out.append("</tbody></table>")
    for u in f.units:
        out.append(f'<h3 data-testid="unit-list">{e(u.unit)} <small>清单 cases</small></h3>')
        if not u.cases:
            out.append("<p>本月无在办案件 No open case this month.</p>")
            continue
        out.append('<table border="1" cellpadding="3" cellspacing="0"><thead><tr><th>案件编号 Case</th>'
                   "<th>标题 Title</th><th>阶段 Stage</th><th>时限 Due</th><th>逾期工作日 Overdue wd</th>"
                   "<th>标记 Flags</th></tr></thead><tbody>")
        for c in u.cases:
            out.append(f"<tr><td>{e(c.case_no)}</td><td>{e(c.title)}</td><td>{e(c.stage_zh)} {c.stage.value}</td>"
                       f"<td>{c.due_date or '—'}</td><td>{c.overdue_working_days or ''}</td>"
                       f"<td>{e('、'.join(FLAG_LABELS_ZH[x] for x in c.flags))}</td></tr>")
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "".join(out)
