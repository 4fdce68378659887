"""Inputs and results of the monthly dispatch workflows and activities (contracts with running
and recorded workflows: add fields with defaults, never rename)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from domain.dispatch import DispatchFigures

DISPATCH_WORKFLOW = "Dispatch"  # one run per programme and month: dispatch-<programme>-<YYYY-MM>
DISPATCH_TICK_WORKFLOW = "DispatchTick"  # what the Schedule starts; it starts the month's Dispatch
SCHEDULED_START_TIME = "TemporalScheduledStartTime"  # set by the server on runs a Schedule starts


class DispatchInput(BaseModel):
    programme_id: str
    period: str  # YYYY-MM
    trigger: str = "MANUAL"  # SCHEDULE, or MANUAL:<user>
    scheduled_at: datetime | None = None  # the Schedule's nominal time, when it started the run


class DispatchResult(BaseModel):
    programme_id: str
    period: str
    workflow_id: str
    inserted: bool  # False: the month's report was there already (a retried write)
    units: int
    cases: int
    notices: int  # outbox rows inserted by this run


class DispatchTickInput(BaseModel):
    programme_id: str


class DispatchTickResult(BaseModel):
    programme_id: str
    period: str
    dispatch_workflow_id: str
    status: str  # DISPATCHED, or ALREADY_DISPATCHED (the month's Dispatch exists: refused by id)
    result: DispatchResult | None = None


class ProgrammeCasesRequest(BaseModel):
    programme_id: str
    period: str
    as_of: datetime


class DispatchReportWrite(BaseModel):
    figures: DispatchFigures
    workflow_id: str
    workflow_run_id: str
    trigger: str = ""


class DispatchReportWritten(BaseModel):
    inserted: bool
    notices: int
