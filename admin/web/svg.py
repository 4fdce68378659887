"""Server-rendered inline SVG charts for the statistics page: no script, no library fetched at run
time, no inline style (the console's CSP allows neither); colours are presentation attributes.
Every text is escaped; each bar carries a <title> so hovering shows the figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from markupsafe import Markup

LIGHT_COLOURS = {"RED": "#d32f2f", "YELLOW": "#f9a825", "GREEN": "#2e7d32", "NO_DEADLINE": "#9e9e9e",
                 "DONE": "#1565c0"}


def _e(v: Any) -> str:
    return escape(str(v), quote=True)


def stacked_bars(rows: Sequence[Mapping[str, Any]], keys: Sequence[tuple[str, str]], testid: str,
                 label_width: int = 220, width: int = 760, max_rows: int = 30) -> Markup:
    """One horizontal bar per row (`row['name']`), split by `keys` [(key, label)], scaled to the
    largest total; the figures are written at the end of each bar."""
    rows = list(rows)[:max_rows]
    h = 22
    total_max = max([sum(int(r.get(k, 0) or 0) for k, _ in keys) for r in rows] + [1])
    span = width - label_width - 60
    out = [f'<svg class="chart tall" viewBox="0 0 {width} {len(rows) * h + 30}" role="img" '
           f'aria-label="{_e(testid)}" data-testid="{_e(testid)}" xmlns="http://www.w3.org/2000/svg">']
    for i, r in enumerate(rows):
        y = i * h + 4
        name = str(r.get("name", ""))
        short = name if len(name) <= 16 else name[:15] + "…"
        out.append(f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" font-size="12" fill="#333">'
                   f'<title>{_e(name)}</title>{_e(short)}</text>')
        x = float(label_width)
        parts = []
        for k, label in keys:
            n = int(r.get(k, 0) or 0)
            if n <= 0:
                continue
            w = span * n / total_max
            out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h - 6}" '
                       f'fill="{LIGHT_COLOURS.get(k, "#607d8b")}" data-key="{_e(k)}" data-n="{n}">'
                       f'<title>{_e(name)} · {_e(label)}: {n}</title></rect>')
            x += w
            parts.append(str(n))
        out.append(f'<text x="{x + 4:.1f}" y="{y + 14}" font-size="11" fill="#555">{_e("/".join(parts))}</text>')
    legend_y = len(rows) * h + 22
    lx = 10.0  # the legend starts at the left edge: it is wider than the bars' labels
    for k, label in keys:
        out.append(f'<rect x="{lx:.0f}" y="{legend_y - 10}" width="10" height="10" fill="{LIGHT_COLOURS.get(k, "#607d8b")}"/>'
                   f'<text x="{lx + 14:.0f}" y="{legend_y}" font-size="11" fill="#333">{_e(label)}</text>')
        lx += 14 + sum(11 if ord(ch) > 0x2E7F else 6.2 for ch in label) + 16
    out.append("</svg>")
    return Markup("".join(out))


def month_bars(months: Sequence[Mapping[str, Any]], testid: str) -> Markup:
    """Vertical bars, one per month (`{'month': 'YYYY-MM', 'n': k}`)."""
    n_max = max([int(m["n"]) for m in months] + [1])
    w = len(months) * 46 + 20
    out = [f'<svg class="chart" viewBox="0 0 {w} 160" role="img" aria-label="{_e(testid)}" '
           f'data-testid="{_e(testid)}" xmlns="http://www.w3.org/2000/svg">']
    for i, m in enumerate(months):
        n = int(m["n"])
        bh = 100 * n / n_max
        x = i * 46 + 14
        out.append(f'<rect x="{x}" y="{120 - bh:.1f}" width="30" height="{bh:.1f}" fill="#2e7d32" data-n="{n}">'
                   f'<title>{_e(m["month"])}: {n}</title></rect>'
                   f'<text x="{x + 15}" y="{115 - bh:.1f}" text-anchor="middle" font-size="11" fill="#333">{n}</text>'
                   f'<text x="{x + 15}" y="138" text-anchor="middle" font-size="10" fill="#555">{_e(m["month"][2:])}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def rate_bars(rows: Sequence[Mapping[str, Any]], testid: str, label_width: int = 220, width: int = 760,
              max_rows: int = 30) -> Markup:
    """Completion rate per row as a bar out of 100 %."""
    rows = list(rows)[:max_rows]
    h = 22
    span = width - label_width - 120
    out = [f'<svg class="chart tall" viewBox="0 0 {width} {len(rows) * h + 8}" role="img" aria-label="{_e(testid)}" '
           f'data-testid="{_e(testid)}" xmlns="http://www.w3.org/2000/svg">']
    for i, r in enumerate(rows):
        y = i * h + 4
        name = str(r.get("name", ""))
        short = name if len(name) <= 16 else name[:15] + "…"
        rate = r.get("rate")
        w = span * (rate or 0) / 100
        out.append(f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" font-size="12" fill="#333">'
                   f'<title>{_e(name)}</title>{_e(short)}</text>'
                   f'<rect x="{label_width}" y="{y}" width="{span}" height="{h - 6}" fill="#eceff1"/>'
                   f'<rect x="{label_width}" y="{y}" width="{w:.1f}" height="{h - 6}" fill="#1565c0">'
                   f'<title>{_e(name)}: {"—" if rate is None else f"{rate}%"}</title></rect>'
                   f'<text x="{label_width + span + 6}" y="{y + 14}" font-size="11" fill="#333">'
                   f'{"—" if rate is None else f"{rate}%"} ({int(r.get("done", 0))}/{int(r.get("total", 0))})</text>')
    out.append("</svg>")
    return Markup("".join(out))
