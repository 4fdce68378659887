"""The statistics page 统计 Statistics (/statistics), its JSON API (/api/v1/statistics) and exports
(.xlsx, .pdf) for the console and casectl (issue 13). Every figure comes from admin/statistics.py,
which scopes through the read model (View.DASHBOARD; a unit sees only its own cases' figures)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from admin.service import FormError
from admin.statistics import Statistics, StatsFilter, period_choices
from admin.stats_config import counties_from_env
from admin.stats_export import to_pdf, to_xlsx
from admin.users import User
from admin.web import svg
from domain.calendar import local_date
from domain.statistics import LIGHT_LABELS_EN, LIGHT_LABELS_ZH, LIGHT_ORDER
from domain.visibility import View

LIGHT_KEYS = [(lt.value, f"{LIGHT_LABELS_ZH[lt]} {LIGHT_LABELS_EN[lt]}") for lt in LIGHT_ORDER]


def _stats(request: Request) -> Statistics:
    st = getattr(request.app.state, "statistics", None)
    if st is None:
        st = request.app.state.statistics = Statistics(reads=request.app.state.reads, counties=counties_from_env())
    return st


def _scope_note(user: User, reads: Any) -> str:
    from domain.visibility import Scope, scopes_of

    if Scope.ALL in scopes_of(reads.reader(user), reads.home):
        return f"范围 scope: 全部案件 all cases · {user.unit}"
    return f"范围 scope: 仅本单位可见案件 only the cases of {user.unit}"


def _export(summary: dict[str, Any], fmt: str, note: str) -> Response:
    name = f"statistics-{summary['period']['key']}.{fmt}"
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
    if fmt == "xlsx":
        return Response(to_xlsx(summary), headers=headers,
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(to_pdf(summary, note), media_type="application/pdf", headers=headers)


def register(app: FastAPI, *, page: Callable[..., HTMLResponse], session: Callable, api_user: Callable,
             api_error: Callable[[int, str, str], Exception]) -> None:
    """Add GET /statistics, /statistics/export.{fmt}, /api/v1/statistics[/export.{fmt}]."""

    def today() -> Any:
        return local_date(datetime.now(UTC))

    async def summary_for(request: Request, user: User) -> dict[str, Any]:
        f = StatsFilter.from_params(request.query_params, today())
        return await _stats(request).summary(user, f)

    @app.get("/statistics", response_class=HTMLResponse)
    async def statistics_page(request: Request) -> Response:
        s = await session(request)
        reads = request.app.state.reads
        reads.require(s.user, View.DASHBOARD)
        try:
            d = await summary_for(request, s.user)
        except FormError as e:
            return page(request, "error.html", s, status=400, message=f"统计筛选有误 bad filter: {e}")
        rounds = (await reads.filter_options(s.user))["rounds"]
        p = d["period"]
        charts = {
            "lights": svg.stacked_bars([{"name": "全部 all", **{x["light"]: x["n"] for x in d["lights"]}}],
                                       LIGHT_KEYS, "chart-lights", label_width=90),
            "units": svg.stacked_bars(d["by_unit"], LIGHT_KEYS, "chart-units"),
            "counties": svg.stacked_bars(d["by_county"], LIGHT_KEYS, "chart-counties"),
            "rounds": svg.rate_bars(d["by_round"], "chart-rounds"),
            "months": svg.month_bars(p["closures_per_month"], "chart-months"),
            "period_units": svg.rate_bars(p["by_unit"], "chart-period-units"),
        }
        qs = "&".join(f"{k}={quote(str(v))}" for k, v in (("round", d["filters"]["round"]),
                                                          ("programme", d["filters"]["programme"]),
                                                          ("period", p["key"])) if v)
        return page(request, "statistics.html", s, nav="statistics", d=d, charts=charts, rounds=rounds,
                    periods=period_choices(today()), qs=qs, light_keys=LIGHT_KEYS,
                    scope_note=_scope_note(s.user, reads))

    @app.get("/statistics/export.{fmt}")
    async def statistics_export(request: Request, fmt: str) -> Response:
        s = await session(request)
        if fmt not in ("xlsx", "pdf"):
            return page(request, "error.html", s, status=400, message=f"未知格式 unknown format {fmt!r} (xlsx, pdf)")
        try:
            d = await summary_for(request, s.user)
        except FormError as e:
            return page(request, "error.html", s, status=400, message=f"统计筛选有误 bad filter: {e}")
        return _export(d, fmt, _scope_note(s.user, request.app.state.reads))

    @app.get("/api/v1/statistics")
    async def api_statistics(request: Request) -> Response:
        user = await api_user(request)
        try:
            d = await summary_for(request, user)
        except FormError as e:
            raise api_error(400, "InvalidInput", str(e)) from None
        from admin.web.api_routes import _jsonable

        return JSONResponse(_jsonable(d))

    @app.get("/api/v1/statistics/export.{fmt}")
    async def api_statistics_export(request: Request, fmt: str) -> Response:
        user = await api_user(request)
        if fmt not in ("xlsx", "pdf"):
            raise api_error(400, "InvalidInput", f"unknown export format {fmt!r} (xlsx or pdf)")
        try:
            d = await summary_for(request, user)
        except FormError as e:
            raise api_error(400, "InvalidInput", str(e)) from None
        return _export(d, fmt, _scope_note(user, request.app.state.reads))
