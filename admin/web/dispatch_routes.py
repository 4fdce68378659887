"""Monthly dispatch (月度调度) in the console and the JSON API (casectl dispatch …).

    GET  /programmes/{id}/dispatch                     list of the programme's reports, the Schedule
    GET  /programmes/{id}/dispatch/{YYYY-MM}.xlsx|.html a report (a unit: its own rows only)
    POST /programmes/{id}/dispatch/schedule            day of month (office)
    POST /programmes/{id}/dispatch/run                 run a month now (office)
    GET  /api/v1/programmes/{id}/dispatch              reports and Schedule
    GET  /api/v1/programmes/{id}/dispatch/{YYYY-MM}[.xlsx|.html]  figures (JSON) or the file
    PUT/DELETE /api/v1/programmes/{id}/dispatch/schedule   {"day_of_month": N}
    POST /api/v1/programmes/{id}/dispatch/run          {"period": "YYYY-MM"} (default: this month)

Who reads what is `domain.dispatch.dispatch_access` (deny by default): the office (from its home
unit), the supervision offices and auditors read every unit's rows; a responsible unit reads only
its own rows, re-rendered from the stored figures (never the stored whole-programme files); any
other role gets 403. Only the office schedules and runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.dispatch_render import chart_svg, render_html, render_xlsx
from admin.users import User
from domain.dispatch import (
    FIGURE_COLUMNS,
    SHANGHAI,
    DispatchAccess,
    DispatchError,
    DispatchFigures,
    check_day_of_month,
    check_programme_id,
    check_runnable,
    dispatch_access,
    dispatch_workflow_id,
    only_units,
    parse_period,
    period_of,
)
from domain.visibility import Reader
from workflows import dispatch_schedule as sched
from workflows.dispatch_contracts import DISPATCH_WORKFLOW, DispatchInput, DispatchResult

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DENIED = "您的角色不能查看月度调度 (your role may not read the monthly dispatch reports)"
OFFICE_ONLY = "只有整改办可以安排或运行月度调度 (only the rectification office schedules or runs the dispatch)"


class DispatchNotFound(Exception):
    pass


@dataclass
class Hooks:
    page: Callable[..., HTMLResponse]
    session: Callable  # request -> auth.Session
    post_session: Callable  # request -> (auth.Session, form)
    writer: Callable  # session -> None, raises for read-only users
    api_user: Callable  # request -> User
    client: Callable[[Request], Client]
    task_queue: str
    forbidden: type[Exception]
    api_error: type[Exception]  # (status, error_type, message)


def access_of(request: Request, user: User) -> DispatchAccess:
    reader = Reader(user_id=user.username, unit=user.unit, roles=tuple(user.roles))
    return dispatch_access(reader, request.app.state.reads.home)


async def list_reports(request: Request, programme_id: str, acc: DispatchAccess) -> list[dict[str, Any]]:
    """The programme's reports the reader may see (a unit: those with its rows), newest first."""
    pool = request.app.state.pool
    rows = await pool.fetch(
        """SELECT period, generated_at, trigger, units, workflow_id,
                  (figures -> 'totals') AS totals, (figures ->> 'cases')::int AS cases
           FROM dispatch_report WHERE programme_id = $1 ORDER BY period DESC""", programme_id)
    out = []
    for r in rows:
        units = list(r["units"])
        if acc.units is not None:
            units = [u for u in units if u in acc.units]
            if not units:
                continue
        d = {"period": r["period"], "generated_at": r["generated_at"].astimezone(SHANGHAI).isoformat(),
             "units": units,
             "trigger": r["trigger"] if acc.units is None else "", "workflow_id": r["workflow_id"]}
        if acc.units is None:  # whole-programme totals only for readers of every unit
            totals = json.loads(r["totals"]) if isinstance(r["totals"], str) else r["totals"]
            d.update(cases=r["cases"], totals={k: totals.get(k, 0) for k, _ in FIGURE_COLUMNS})
        out.append(d)
    return out


async def report(request: Request, programme_id: str, period: str, acc: DispatchAccess
                 ) -> tuple[DispatchFigures, bytes | None, str | None]:
    """(figures as the reader may see them, stored xlsx, stored html); the stored files only for a
    reader of every unit. DispatchNotFound when there is none, or none of the reader's rows."""
    r = await request.app.state.pool.fetchrow(
        "SELECT figures, xlsx, html FROM dispatch_report WHERE programme_id = $1 AND period = $2",
        programme_id, period)
    if r is None:
        raise DispatchNotFound()
    raw = r["figures"]
    figures = DispatchFigures.model_validate(json.loads(raw) if isinstance(raw, str) else raw)
    if acc.units is None:
        return figures, bytes(r["xlsx"]), r["html"]
    mine = only_units(figures, acc.units)
    if not mine.units:
        raise DispatchNotFound()
    return mine, None, None


async def run_dispatch(client: Client, task_queue: str, programme_id: str, period: str, who: str,
                       wait: float = 60) -> tuple[str, DispatchResult | None]:
    """Start the month's Dispatch (id dispatch-<programme>-<period>); WorkflowAlreadyStartedError if
    the month was dispatched (or is running). Waits up to `wait` seconds for its result."""
    import asyncio

    wid = dispatch_workflow_id(programme_id, period)
    handle = await client.start_workflow(
        DISPATCH_WORKFLOW, DispatchInput(programme_id=programme_id, period=period, trigger=f"MANUAL:{who}"),
        id=wid, task_queue=task_queue, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        execution_timeout=timedelta(hours=1), result_type=DispatchResult)
    try:
        return wid, await asyncio.wait_for(handle.result(), wait)
    except TimeoutError:
        return wid, None


def _split(name: str) -> tuple[str, str]:
    for fmt in ("xlsx", "html", "json"):
        if name.endswith("." + fmt):
            return name[: -len(fmt) - 1], fmt
    return name, "json"


def _file(programme_id: str, period: str, fmt: str, figures: DispatchFigures, xlsx: bytes | None,
          html: str | None) -> Response:
    name = f"dispatch-{programme_id}-{period}.{fmt}"
    ascii_name = "".join(c if c.isascii() and c.isalnum() or c in "-_." else "_" for c in name)
    disp = f"filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
    if fmt == "xlsx":
        return Response(xlsx if xlsx is not None else render_xlsx(figures), media_type=XLSX,
                        headers={"Content-Disposition": f"attachment; {disp}"})
    return HTMLResponse(html if html is not None else render_html(figures),
                        headers={"Content-Disposition": f"inline; {disp}"})


def register(app: FastAPI, h: Hooks) -> None:  # noqa: C901 - one function per route below
    def checked(programme_id: str, period: str | None = None) -> None:
        try:
            check_programme_id(programme_id)
            if period is not None:
                parse_period(period)
        except DispatchError as e:
            raise DispatchNotFound() from e

    def not_found_page(request: Request, s: Any) -> HTMLResponse:
        return h.page(request, "error.html", s, status=404, message="没有这份调度报告 (no such dispatch report)")

    # ------------------------------------------------------------ console

    @app.get("/programmes/{programme_id:path}/dispatch", response_class=HTMLResponse)
    async def dispatch_page(request: Request, programme_id: str, ok: str = "", error: str = "") -> Response:
        s = await h.session(request)
        acc = access_of(request, s.user)
        if acc.denied:
            raise h.forbidden(DENIED)
        try:
            checked(programme_id)
        except DispatchNotFound:
            return not_found_page(request, s)
        reports = await list_reports(request, programme_id, acc)
        schedule = await sched.describe_dispatch_schedule(h.client(request), programme_id) if acc.units is None \
            else None
        if schedule:  # next runs in Beijing time on the page (the API gives UTC)
            schedule["next_local"] = [datetime.fromisoformat(t).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
                                      for t in schedule["next_action_times"]]
        latest = None
        if reports:
            figures, _, _ = await report(request, programme_id, reports[0]["period"], acc)
            latest = {"period": figures.period, "svg": chart_svg(figures.units)}
        return h.page(request, "dispatch.html", s, nav="dispatch", programme_id=programme_id, reports=reports,
                      schedule=schedule, may_run=acc.may_run, all_units=acc.units is None, latest=latest,
                      columns=FIGURE_COLUMNS, ok=ok, error=error, this_month=str(period_of(datetime.now(UTC))))

    @app.get("/programmes/{programme_id:path}/dispatch/{name}")
    async def dispatch_file(request: Request, programme_id: str, name: str) -> Response:
        s = await h.session(request)
        acc = access_of(request, s.user)
        if acc.denied:
            raise h.forbidden(DENIED)
        period, fmt = _split(name)
        try:
            checked(programme_id, period)
            if fmt not in ("xlsx", "html"):
                raise DispatchNotFound()
            figures, xlsx, html = await report(request, programme_id, period, acc)
        except DispatchNotFound:
            return not_found_page(request, s)
        return _file(programme_id, period, fmt, figures, xlsx, html)

    def back(programme_id: str, **q: str) -> RedirectResponse:
        qs = "&".join(f"{k}={quote(v)}" for k, v in q.items())
        return RedirectResponse(f"/programmes/{quote(programme_id, safe='')}/dispatch?{qs}", status_code=303)

    @app.post("/programmes/{programme_id:path}/dispatch/schedule")
    async def schedule_post(request: Request, programme_id: str) -> Response:
        s, form = await h.post_session(request)
        h.writer(s)
        if not access_of(request, s.user).may_run:
            raise h.forbidden(OFFICE_ONLY)
        try:
            day = check_day_of_month(int(str(form.get("day_of_month") or "0")))
            out = await sched.ensure_dispatch_schedule(h.client(request), programme_id, day, h.task_queue)
        except (DispatchError, ValueError) as e:
            return back(programme_id, error=f"DispatchError: {e}")
        return back(programme_id, ok=f"schedule {out.status}: day {out.day_of_month}")

    @app.post("/programmes/{programme_id:path}/dispatch/run")
    async def run_post(request: Request, programme_id: str) -> Response:
        s, form = await h.post_session(request)
        h.writer(s)
        if not access_of(request, s.user).may_run:
            raise h.forbidden(OFFICE_ONLY)
        try:
            period = parse_period(str(form.get("period") or "") or str(period_of(datetime.now(UTC))))
            check_programme_id(programme_id)
            check_runnable(period, datetime.now(UTC))
            wid, _ = await run_dispatch(h.client(request), h.task_queue, programme_id, str(period), s.user.username)
        except DispatchError as e:
            return back(programme_id, error=f"DispatchError: {e}")
        except WorkflowAlreadyStartedError:
            return back(programme_id, error=f"AlreadyDispatched: {programme_id} {period} 已调度 (already dispatched)")
        return back(programme_id, ok=f"dispatched {wid}")

    # ------------------------------------------------------------ JSON API

    async def api_access(request: Request) -> tuple[User, DispatchAccess]:
        user = await h.api_user(request)
        acc = access_of(request, user)
        if acc.denied:
            raise h.api_error(403, "NotAuthorizedError", DENIED)
        return user, acc

    def api_checked(programme_id: str, period: str | None = None) -> None:
        try:
            check_programme_id(programme_id)
            if period is not None:
                parse_period(period)
        except DispatchError as e:
            raise h.api_error(400, "InvalidInput", str(e)) from None

    @app.get("/api/v1/programmes/{programme_id:path}/dispatch")
    async def api_list(request: Request, programme_id: str) -> Response:
        _user, acc = await api_access(request)
        api_checked(programme_id)
        schedule = await sched.describe_dispatch_schedule(h.client(request), programme_id) if acc.units is None \
            else None
        return JSONResponse({"programme_id": programme_id, "schedule": schedule,
                             "reports": await list_reports(request, programme_id, acc)})

    @app.get("/api/v1/programmes/{programme_id:path}/dispatch/{name}")
    async def api_report(request: Request, programme_id: str, name: str) -> Response:
        _user, acc = await api_access(request)
        period, fmt = _split(name)
        api_checked(programme_id, period)
        try:
            figures, xlsx, html = await report(request, programme_id, period, acc)
        except DispatchNotFound:
            raise h.api_error(404, "NotFound", f"no dispatch report {programme_id} {period}") from None
        if fmt == "json":
            return JSONResponse(json.loads(figures.model_dump_json()))
        return _file(programme_id, period, fmt, figures, xlsx, html)

    @app.put("/api/v1/programmes/{programme_id:path}/dispatch/schedule")
    async def api_schedule(request: Request, programme_id: str) -> Response:
        _user, acc = await api_access(request)
        if not acc.may_run:
            raise h.api_error(403, "NotAuthorizedError", OFFICE_ONLY)
        body = await _body(request, h)
        try:
            out = await sched.ensure_dispatch_schedule(h.client(request), programme_id,
                                                       body.get("day_of_month"), h.task_queue)
        except DispatchError as e:
            raise h.api_error(400, "InvalidInput", str(e)) from None
        return JSONResponse({"schedule_id": out.schedule_id, "day_of_month": out.day_of_month, "status": out.status})

    @app.delete("/api/v1/programmes/{programme_id:path}/dispatch/schedule")
    async def api_unschedule(request: Request, programme_id: str) -> Response:
        _user, acc = await api_access(request)
        if not acc.may_run:
            raise h.api_error(403, "NotAuthorizedError", OFFICE_ONLY)
        api_checked(programme_id)
        deleted = await sched.delete_dispatch_schedule(h.client(request), programme_id)
        return JSONResponse({"deleted": deleted})

    @app.post("/api/v1/programmes/{programme_id:path}/dispatch/run")
    async def api_run(request: Request, programme_id: str) -> Response:
        user, acc = await api_access(request)
        if not acc.may_run:
            raise h.api_error(403, "NotAuthorizedError", OFFICE_ONLY)
        body = await _body(request, h)
        period = str(body.get("period") or "") or str(period_of(datetime.now(UTC)))
        api_checked(programme_id, period)
        try:
            check_runnable(parse_period(period), datetime.now(UTC))
            wid, result = await run_dispatch(h.client(request), h.task_queue, programme_id, period, user.username)
        except DispatchError as e:
            raise h.api_error(400, "InvalidInput", str(e)) from None
        except WorkflowAlreadyStartedError:
            raise h.api_error(409, "AlreadyDispatched",
                              f"{dispatch_workflow_id(programme_id, period)}: this month was dispatched "
                              "(or is running); a month is dispatched once") from None
        return JSONResponse({"workflow_id": wid, "result": result.model_dump(mode="json") if result else None},
                            status_code=200 if result else 202)


async def _body(request: Request, h: Hooks) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError as e:
        raise h.api_error(400, "InvalidInput", f"request body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise h.api_error(400, "InvalidInput", "request body must be a JSON object")
    return body
