"""The office's publication page for a programme (公开设置 Publication, issue 14, part "public").

    GET  /programmes/{id}/publication          what is public, the lagging units, 曝光 decisions,
                                               the public-site objections, the publication ledger
    POST /programmes/{id}/publication/options  the office sets what is public
    POST /programmes/{id}/publication/name     曝光: name a lagging unit, with a reason
    POST /programmes/{id}/publication/revoke   revoke a naming, with a reason

Readable by the rectification office (from its home unit) and auditors; only the office decides.
The rules are domain/disclosure.py; refusals are recorded in refused_action
(case_no `publication:<id>`), like the programme's.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from admin import publication as pubdb
from domain import disclosure as d
from domain.enums import Role
from workflows.client import record_refusal


def _may_read(user: Any, office_unit: str) -> bool:
    if Role.AUDITOR in user.roles:
        return True
    return Role.RECTIFICATION_OFFICE in user.roles and (not office_unit or user.unit == office_unit)


def default_public_url() -> str:
    """Where the public site is: PUBLIC_URL, else the address `make run` / `python -m admin.public` uses."""
    if os.environ.get("PUBLIC_URL"):
        return os.environ["PUBLIC_URL"].rstrip("/") + "/"
    from admin.public.app import PublicSettings

    p = PublicSettings.from_env()
    return f"http://{p.host}:{p.port}/"


def register(app: FastAPI, *, page: Callable[..., HTMLResponse], session: Callable, post_session: Callable,
             writer: Callable, svc: Callable, public_url: Callable[[], str] = default_public_url) -> None:
    @app.get("/programmes/{programme_id}/publication", response_class=HTMLResponse)
    async def publication_page(request: Request, programme_id: str, ok: str = "", error: str = "") -> Response:
        s = await session(request)
        pool, office = svc(request).pool, svc(request).office_unit
        if not _may_read(s.user, office):
            return page(request, "error.html", s, status=403,
                        message="只有整改办和审计人员可查看公开设置 (only the office and auditors read the publication settings)")
        prog = await pubdb.programme_row(pool, programme_id)
        if prog is None:
            return page(request, "error.html", s, status=404, message=f"没有整改方案 no programme {programme_id}")
        pub = await pubdb.publication(pool, programme_id)
        rows = await pubdb.item_rows(pool, programme_id)
        return page(request, "publication.html", s, nav="programmes", prog=prog, pub=pub,
                    lagging=d.lagging_units(rows, pubdb.today()), ledger=await pubdb.ledger_rows(pool, programme_id),
                    objections=await pubdb.office_objections(pool, programme_id), ok=ok, error=error,
                    OPTION_LABELS=d.OPTION_LABELS, EVENT_LABELS=d.EVENT_LABELS,
                    may_decide=Role.RECTIFICATION_OFFICE in s.user.roles and not s.user.read_only,
                    public_url=public_url())

    async def decide(request: Request, programme_id: str, event: str) -> Response:
        s, form = await post_session(request)
        writer(s)
        svc_ = svc(request)
        request_id = str(form.get("request_id") or f"console-{secrets.token_hex(8)}")[:128]
        back = f"/programmes/{quote(programme_id)}/publication"
        try:
            await pubdb.decide(
                svc_.pool, programme_id, event=event, user=s.user.username,
                roles=[str(r) for r in s.user.roles], unit=s.user.unit, office_unit=svc_.office_unit,
                request_id=request_id, reason=str(form.get("reason") or ""),
                options=d.PublicationOptions(**{k: form.get(k) == "on" for k in d.OPTION_LABELS}),
                unit_named=str(form.get("unit") or ""), naming_id=str(form.get("naming_id") or ""))
        except (d.PublicationError, LookupError) as e:
            actor = SimpleNamespace(user_id=s.user.username, role=s.user.roles[0] if s.user.roles else "",
                                    unit=s.user.unit)
            req = SimpleNamespace(action=event, actor=actor, request_id=request_id)
            await record_refusal(svc_.pool, f"publication:{programme_id}", req,  # type: ignore[arg-type]
                                 "NotAuthorizedError" if "office" in str(e) else "InvalidInput", str(e))
            return RedirectResponse(f"{back}?error={quote(str(e))}", status_code=303)
        return RedirectResponse(f"{back}?ok={quote(d.EVENT_LABELS[event])}", status_code=303)

    @app.post("/programmes/{programme_id}/publication/options")
    async def set_options(request: Request, programme_id: str) -> Response:
        return await decide(request, programme_id, "SET_OPTIONS")

    @app.post("/programmes/{programme_id}/publication/name")
    async def name_unit(request: Request, programme_id: str) -> Response:
        return await decide(request, programme_id, "NAME_UNIT")

    @app.post("/programmes/{programme_id}/publication/revoke")
    async def revoke(request: Request, programme_id: str) -> Response:
        return await decide(request, programme_id, "REVOKE_NAMING")
