"""The look-back pages (回头看 Look-backs, issue 14) and their JSON API.

    GET  /lookbacks                          list (campaigns the reader may see) + create form (office)
    POST /lookbacks                          create (office)
    GET  /lookbacks/{id}                     selection, unvisited cases, findings, proposals, ledger
    POST /lookbacks/{id}/{op}                select / finding / close (forms)
    GET  /lookbacks/{id}/report.{fmt}        the report as xlsx or pdf
    GET  /api/v1/lookbacks[/{id}]            the same for casectl
    POST /api/v1/lookbacks                   create
    POST /api/v1/lookbacks/{id}/{op}         select / finding / close
    GET  /api/v1/lookbacks/{id}/report.{fmt}

Who reads what: admin/lookbacks.py (domain/lookback_rules.py, deny by default): a campaign one may
not read answers 404 like one that does not exist. Who acts: domain/lookback.py, checked in the
workflow's validator before anything is recorded; refusals go to `refused_action` ("lookback:<id>").
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from activities.lookback_activities import load_lookback_policy
from admin.lookback_report import to_pdf, to_xlsx
from admin.lookbacks import FINDING_CHOICES, REOPEN_ZH, LookbackReads
from domain.enums import Role
from domain.lookback import (
    CampaignSpec,
    CloseRequest,
    FindingRequest,
    SelectionCriteria,
    SelectRequest,
    refusal_key,
)
from domain.lookback_rules import may_inspect
from domain.model import Actor
from workflows import lookback_client as lc
from workflows.client import ActionRefusedError, record_refusal

OPS = ("select", "finding", "close")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _errors(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}" for err in e.errors())


def _lines(v: Any) -> list[str]:
    if isinstance(v, list):
        return [str(x).strip() for x in v if str(x).strip()]
    return [x.strip() for x in str(v or "").replace("、", "\n").replace(",", "\n").splitlines() if x.strip()]


def _actor_for(user: Any, op: str, case_units: list[str] | None, policy: Any, item: Any = None) -> Actor:
    """The role the user acts under: the office for select/close; for a finding the first role that may inspect."""
    if op in ("select", "close", "create"):
        role = Role.RECTIFICATION_OFFICE if Role.RECTIFICATION_OFFICE in user.roles else user.roles[0]
        return user.actor(role)
    actors = [user.actor(r) for r in user.roles]
    if item is not None:
        for a in actors:
            if may_inspect(a, item, policy):
                return a
    return actors[0]


def build_request(user: Any, op: str, body: dict[str, Any], policy: Any, item: Any = None) -> Any:
    """A request model from a form or JSON body; raises ValidationError / ValueError with the field named."""
    rid = str(body.get("request_id") or f"console-{secrets.token_hex(8)}")
    actor = _actor_for(user, op, None, policy, item)
    if op == "select":
        size = str(body.get("sample_size") or "").strip()
        seed = str(body.get("seed") or "").strip()
        crit = SelectionCriteria(units=_lines(body.get("units")), county=str(body.get("county") or "").strip(),
                                 inspection_round=str(body.get("inspection_round") or "").strip(),
                                 programme_id=str(body.get("programme_id") or "").strip(),
                                 sample_size=int(size) if size else None, seed=int(seed) if seed else None)
        return SelectRequest(actor=actor, request_id=rid, criteria=crit)
    if op == "finding":
        due = str(body.get("new_due_date") or "").strip()
        return FindingRequest(actor=actor, request_id=rid, case_no=str(body.get("case_no") or ""),
                              finding=str(body.get("finding") or ""), evidence=str(body.get("evidence") or ""),
                              evidence_refs=_lines(body.get("evidence_refs")),
                              new_due_date=date.fromisoformat(due) if due else None)
    if op == "close":
        return CloseRequest(actor=actor, request_id=rid, reason=str(body.get("reason") or ""))
    raise ValueError(f"unknown look-back operation {op!r} (one of: {', '.join(OPS)})")


def spec_from(body: dict[str, Any]) -> CampaignSpec:
    data = dict(body)
    data["unannounced"] = str(data.get("unannounced") or "").lower() in ("1", "true", "on", "yes")
    for k in ("start", "end"):
        if not data.get(k):
            data.pop(k, None)
    data.pop("csrf_token", None)
    return CampaignSpec.model_validate(data)


def register(
    app: FastAPI, *, templates: Jinja2Templates, page: Callable[..., HTMLResponse], session: Callable,
    post_session: Callable, writer: Callable, api_user: Callable, api_error: type[Exception], svc: Callable,
    jsonable: Callable[[Any], Any], policy_file: str = "",
) -> None:
    state: dict[str, Any] = {}

    def policy() -> Any:
        if "policy" not in state:
            state["policy"] = load_lookback_policy(policy_file or None)
        return state["policy"]

    def lreads(request: Request) -> LookbackReads:
        return LookbackReads(svc(request).pool, policy())

    templates.env.globals["may_read_lookbacks"] = (
        lambda request, user: user is not None and LookbackReads(request.app.state.pool, policy()).may_read(user))

    async def refused(request: Request, cid: str, user: Any, op: str, body: dict[str, Any], et: str, msg: str) -> None:
        """A request refused before it reached the workflow (bad input, no role): recorded like the workflow's."""
        actor = SimpleNamespace(user_id=user.username, role=user.roles[0] if user.roles else "", unit=user.unit)
        req = SimpleNamespace(action=f"LOOKBACK_{op.upper()}"[:64], actor=actor,
                              request_id=str(body.get("request_id") or f"console-{secrets.token_hex(8)}"))
        await record_refusal(svc(request).pool, refusal_key(cid), req, et, msg)  # type: ignore[arg-type]

    async def perform(request: Request, user: Any, cid: str, op: str, body: dict[str, Any]) -> Any:
        """(result) or raises api-style tuples (status, error type, message)."""
        v = await lreads(request).view(user, cid)
        if v is None:  # as for a case: 404, and the attempt is still recorded
            await refused(request, cid, user, op, body, "CampaignNotFoundError", f"no look-back campaign {cid}")
            raise LookupError(f"no look-back campaign {cid}")
        item = None
        if op == "finding":
            from admin.lookbacks import Item

            row = next((i for i in v["items"] if i["case_no"] == body.get("case_no")), None)
            if row is not None:
                item = Item(case_no=row["case_no"], stage=row["stage_at_selection"],
                            lead_supervising_units=row["lead_supervising_units"])
        try:
            req = build_request(user, op, body, policy(), item)
        except (ValidationError, ValueError) as e:
            msg = _errors(e) if isinstance(e, ValidationError) else str(e)
            await refused(request, cid, user, op, body, "InvalidInput", msg)
            raise ValueError(msg) from None
        fn = {"select": lc.select_cases, "finding": lc.record_finding, "close": lc.close_campaign}[op]
        return await fn(svc(request).client, cid, req, pool=svc(request).pool)

    # ------------------------------------------------------------ pages

    @app.get("/lookbacks", response_class=HTMLResponse)
    async def lookbacks(request: Request, error: str = "") -> Response:
        s = await session(request)
        lr = lreads(request)
        if not lr.may_read(s.user):
            return page(request, "error.html", s, status=403, message="您的角色不能查看回头看 (your role reads no look-back)")
        return page(request, "lookbacks.html", s, nav="lookbacks", rows=await lr.list(s.user),
                    may_create=lr.may_create(s.user), error=error)

    @app.post("/lookbacks")
    async def lookback_create(request: Request) -> Response:
        s, form = await post_session(request)
        writer(s)
        body = dict(form)
        try:
            spec = spec_from(body)
            ok, why = await lc.create_campaign(svc(request).client, spec, _actor_for(s.user, "create", None, policy()),
                                               svc(request).task_queue, policy=None,
                                               office_unit=policy().office_unit, pool=svc(request).pool)
        except ValidationError as e:
            return RedirectResponse(f"/lookbacks?error={quote(_errors(e))}", status_code=303)
        except ActionRefusedError as e:
            return RedirectResponse(f"/lookbacks?error={quote(f'{e.error_type}: {e.message}')}", status_code=303)
        if not ok:
            return RedirectResponse(f"/lookbacks?error={quote(why)}", status_code=303)
        await _recorded(svc(request).pool, spec.campaign_id)
        return RedirectResponse(f"/lookbacks/{quote(spec.campaign_id)}?ok=CREATED", status_code=303)

    @app.get("/lookbacks/{campaign_id}", response_class=HTMLResponse)
    async def lookback_page(request: Request, campaign_id: str, ok: str = "", error: str = "") -> Response:
        s = await session(request)
        v = await lreads(request).view(s.user, campaign_id)
        if v is None:
            return page(request, "error.html", s, status=404, message=f"没有回头看 no look-back campaign {campaign_id}")
        office = lreads(request).may_create(s.user)
        return page(request, "lookback.html", s, nav="lookbacks", v=v, office=office, ok=ok, error=error,
                    FINDINGS=FINDING_CHOICES, REOPEN_ZH=REOPEN_ZH, read_only=s.user.read_only)

    @app.post("/lookbacks/{campaign_id}/{op}")
    async def lookback_op(request: Request, campaign_id: str, op: str) -> Response:
        s, form = await post_session(request)
        writer(s)
        back = f"/lookbacks/{quote(campaign_id)}"
        try:
            await perform(request, s.user, campaign_id, op, dict(form))
        except LookupError as e:
            return page(request, "error.html", s, status=404, message=str(e))
        except ValueError as e:
            return RedirectResponse(f"{back}?error={quote(str(e))}", status_code=303)
        except ActionRefusedError as e:
            return RedirectResponse(f"{back}?error={quote(f'{e.error_type}: {e.message}')}", status_code=303)
        return RedirectResponse(f"{back}?ok={quote(op)}", status_code=303)

    @app.get("/lookbacks/{campaign_id}/report.{fmt}")
    async def lookback_report(request: Request, campaign_id: str, fmt: str) -> Response:
        s = await session(request)
        v = await lreads(request).view(s.user, campaign_id)
        if v is None:
            return page(request, "error.html", s, status=404, message=f"没有回头看 no look-back campaign {campaign_id}")
        return _report(v, fmt) or page(request, "error.html", s, status=404, message=f"no report format {fmt}")

    # ------------------------------------------------------------ JSON API

    @app.get("/api/v1/lookbacks")
    async def api_lookbacks(request: Request) -> Response:
        user = await api_user(request)
        lr = lreads(request)
        if not lr.may_read(user):
            raise api_error(403, "NotAuthorizedError", "your role reads no look-back campaign")
        return JSONResponse({"lookbacks": jsonable(await lr.list(user))})

    @app.get("/api/v1/lookbacks/{campaign_id}")
    async def api_lookback(request: Request, campaign_id: str) -> Response:
        user = await api_user(request)
        v = await lreads(request).view(user, campaign_id)
        if v is None:
            raise api_error(404, "CampaignNotFoundError", f"no look-back campaign {campaign_id}")
        v["may_find"] = sorted(v["may_find"])
        return JSONResponse(jsonable(v))

    @app.get("/api/v1/lookbacks/{campaign_id}/report.{fmt}")
    async def api_report(request: Request, campaign_id: str, fmt: str) -> Response:
        user = await api_user(request)
        v = await lreads(request).view(user, campaign_id)
        if v is None:
            raise api_error(404, "CampaignNotFoundError", f"no look-back campaign {campaign_id}")
        out = _report(v, fmt)
        if out is None:
            raise api_error(400, "InvalidInput", f"report format {fmt!r}: xlsx or pdf")
        return out

    @app.post("/api/v1/lookbacks")
    async def api_create(request: Request) -> Response:
        user = await api_user(request)
        body = await request.json() if (await request.body()) else {}
        if not isinstance(body, dict):
            raise api_error(400, "InvalidInput", "request body must be a JSON object")
        if not lreads(request).may_create(user):
            raise api_error(403, "NotAuthorizedError", "only the rectification office (整改办) creates a look-back")
        try:
            spec = spec_from(body)
        except ValidationError as e:
            raise api_error(422, "InvalidInput", _errors(e)) from None
        try:
            ok, why = await lc.create_campaign(svc(request).client, spec, _actor_for(user, "create", None, policy()),
                                               svc(request).task_queue, office_unit=policy().office_unit,
                                               pool=svc(request).pool)
        except ActionRefusedError as e:
            raise api_error(403, e.error_type, e.message) from None
        if not ok:
            raise api_error(409, "AlreadyExists", why)
        await _recorded(svc(request).pool, spec.campaign_id)
        return JSONResponse({"campaign_id": spec.campaign_id, "created": True}, status_code=201)

    @app.post("/api/v1/lookbacks/{campaign_id}/{op}")
    async def api_op(request: Request, campaign_id: str, op: str) -> Response:
        user = await api_user(request)
        body = await request.json() if (await request.body()) else {}
        if not isinstance(body, dict):
            raise api_error(400, "InvalidInput", "request body must be a JSON object")
        try:
            result = await perform(request, user, campaign_id, op, body)
        except LookupError as e:
            raise api_error(404, "CampaignNotFoundError", str(e)) from None
        except ValueError as e:
            raise api_error(422, "InvalidInput", str(e)) from None
        except ActionRefusedError as e:
            status = {"NotAuthorizedError": 403, "CampaignNotFoundError": 404, "InvalidInput": 422,
                      "MissingInputError": 422, "InvalidDeadlineError": 422}.get(e.error_type, 409)
            raise api_error(status, e.error_type, e.message) from None
        return JSONResponse(result.model_dump(mode="json"))


async def _recorded(pool: Any, campaign_id: str, seconds: float = 10.0) -> None:
    """Wait (bounded) for the new campaign's first projection row, so its page opens at once."""
    import asyncio

    for _ in range(int(seconds / 0.1)):
        if await pool.fetchval("SELECT 1 FROM lookback_projection WHERE campaign_id = $1", campaign_id):
            return
        await asyncio.sleep(0.1)


def _report(v: dict[str, Any], fmt: str) -> Response | None:
    name = f"lookback-{v['campaign_id']}"
    if fmt == "xlsx":
        return Response(to_xlsx(v), media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    if fmt == "pdf":
        return Response(to_pdf(v), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})
    return None
