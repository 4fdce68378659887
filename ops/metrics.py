"""Prometheus metrics: the Temporal SDK runtime's own, plus the engine's application metrics.

One Prometheus endpoint per process (`METRICS_BIND`, e.g. `0.0.0.0:9464`; empty = off), served by
the SDK runtime (temporalio `Runtime` with `PrometheusConfig`). The engine's metrics are created
on the same runtime's metric meter, so one scrape gets both:

* SDK metrics, prefixed `temporal_` (durations in seconds), e.g.
  `temporal_workflow_task_schedule_to_start_latency` and `temporal_activity_execution_failed`.
* `case_engine_activity_failures` (counter, per process): activity attempts that raised, by
  `activity_type` and `error_type` (counted by `ops.context.EngineInterceptor`).
* Gauges read from PostgreSQL by `DbMetrics` every `METRICS_DB_POLL_SECONDS` in each worker
  (every worker reports the same database figures: aggregate with `max`, never `sum`):
  `case_engine_cases{stage}`, `case_engine_cases_overdue`, `case_engine_escalations{kind}`
  (fired / proposed, from the ledger), `case_engine_outbox_pending`,
  `case_engine_outbox_oldest_pending_seconds`, `case_engine_refused_actions{reason}`,
  `case_engine_metrics_db_up` (1 when the last read worked),
  `case_engine_outbox_webhook_refused` (notices whose webhook answered a permanent 4xx: never
  retried, an operator looks at `casectl admin webhook failed`) and
  `case_engine_outbox_webhook_retrying` (webhook failed at least once, not yet sent, still tried).
* Issue 9's runtime figures, from the same read: `case_engine_cases_blocked` (cases held by a
  failure retrying cannot fix, awaiting the office's UNBLOCK: `case_block`),
  `case_engine_watchdog_nudges{state}` (the escalation watchdog's findings: `unhealed` = nudged and
  no ledger row seen since, `healed` = all healed so far), `case_engine_watchdog_oldest_unhealed_seconds`
  (since the oldest unhealed finding was detected; 0 when none),
  `case_engine_escalation_proposals_pending` (拟采取措施 awaiting confirmation or dismissal) and
  `case_engine_escalation_oldest_proposal_seconds` (age of the oldest of them; 0 when none). Alert
  on blocked > 0, unhealed > 0 for longer than a watchdog pass or two, and on a proposal
  older than the office's own rule for deciding one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
import structlog
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from domain.enums import Stage

log = structlog.get_logger(__name__)

# Ledger events that are escalations taking effect, and escalations proposed for confirmation
# (issue 9: automatic rungs, manual APPLY_RUNG, confirmed proposals; proposals by the engine or a person).
ESCALATION_EVENTS = {
    "fired": ("ESCALATED", "APPLY_RUNG", "CONFIRM_ESCALATION"),
    "proposed": ("ESCALATION_PROPOSED", "PROPOSE_RUNG"),
}
OPEN_STAGES_EXCLUDED = (Stage.CLOSED.value, Stage.ARCHIVED.value)
_STAGE_VALUES = frozenset(s.value for s in Stage)

_runtimes: dict[str, Runtime] = {}


def runtime_for(bind: str) -> Runtime:
    """The process's SDK runtime: with a Prometheus endpoint on `bind`, or the default one.

    One runtime per bind address and process (each runtime has its own thread pool and a
    second one on the same address could not bind), so every client of the process shares it.
    """
    if not bind:
        return Runtime.default()
    rt = _runtimes.get(bind)
    if rt is None:
        rt = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind, durations_as_seconds=True)))
        _runtimes[bind] = rt
        log.info("metrics_endpoint", bind=bind, path="/metrics")
    return rt


@dataclass
class DbFigures:
    cases_by_stage: dict[str, int]
    overdue: int
    escalations: dict[str, int]
    outbox_pending: int
    oldest_pending_seconds: float
    refused_by_reason: dict[str, int]
    webhook_refused: int = 0
    webhook_retrying: int = 0
    blocked_cases: int = 0
    nudges_unhealed: int = 0
    nudges_healed: int = 0
    oldest_unhealed_seconds: float = 0.0
    proposals_pending: int = 0
    oldest_proposal_seconds: float = 0.0


# Pending escalation proposals live in the projection's detail (domain.model.EscalationState);
# the same JSON path as the office's work list (admin/readmodel.py).
_PENDING_PROPOSALS = "'$.escalation.proposals[*] ? (@.status == \"PENDING\")'"
_RUNTIME_SQL = f"""
SELECT
  (SELECT count(DISTINCT case_no)::int FROM case_block WHERE resolved_at IS NULL) AS blocked,
  (SELECT count(*)::int FROM watchdog_nudge WHERE healed_at IS NULL) AS unhealed,
  (SELECT count(*)::int FROM watchdog_nudge WHERE healed_at IS NOT NULL) AS healed,
  (SELECT coalesce(extract(epoch FROM clock_timestamp() - min(detected_at)), 0)
     FROM watchdog_nudge WHERE healed_at IS NULL) AS unhealed_age,
  p.n AS proposals, p.age AS proposal_age
FROM (
  SELECT count(*)::int AS n,
         coalesce(extract(epoch FROM clock_timestamp() - min((x->>'proposed_at')::timestamptz)), 0) AS age
  FROM case_projection, jsonb_path_query(detail, {_PENDING_PROPOSALS}) AS x
) p
"""


async def read_figures(pool: asyncpg.Pool) -> DbFigures:
    """The application figures, from the projection, the ledger, the outbox and refused_action."""
    async with pool.acquire() as conn:
        stages = {r["stage"]: r["n"] for r in await conn.fetch(
            "SELECT stage, count(*)::int AS n FROM case_projection GROUP BY stage")}
        overdue = await conn.fetchval(
            "SELECT count(*)::int FROM case_projection WHERE due_at < clock_timestamp() "
            "AND NOT suspended AND stage <> ALL($1::text[])", list(OPEN_STAGES_EXCLUDED))
        escalations = {}
        for kind, events in ESCALATION_EVENTS.items():
            escalations[kind] = await conn.fetchval(
                "SELECT count(*)::int FROM ledger WHERE event = ANY($1::text[])", list(events))
        row = await conn.fetchrow(
            "SELECT count(*)::int AS n, coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) AS age "
            "FROM outbox WHERE status = 'PENDING'")
        refused = {r["error_type"]: r["n"] for r in await conn.fetch(
            "SELECT error_type, count(*)::int AS n FROM refused_action GROUP BY error_type")}
        hooks = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE webhook_failed_at IS NOT NULL)::int AS refused, "
            "count(*) FILTER (WHERE status = 'PENDING' AND webhook_attempts > 0 AND webhook_sent_at IS NULL "
            "AND webhook_failed_at IS NULL)::int AS retrying FROM outbox "
            "WHERE webhook_failed_at IS NOT NULL OR status = 'PENDING'")
        rt = await conn.fetchrow(_RUNTIME_SQL)
    return DbFigures(stages, overdue, escalations, row["n"], float(row["age"]), refused,
                     hooks["refused"], hooks["retrying"],
                     blocked_cases=rt["blocked"], nudges_unhealed=rt["unhealed"], nudges_healed=rt["healed"],
                     oldest_unhealed_seconds=float(rt["unhealed_age"]), proposals_pending=rt["proposals"],
                     oldest_proposal_seconds=float(rt["proposal_age"]))


class DbMetrics:
    """Sets the database gauges on a metric meter; `run()` refreshes them until stopped."""

    def __init__(self, pool: asyncpg.Pool, meter: MetricMeter, poll_seconds: float = 30.0) -> None:
        self._pool = pool
        self._poll = poll_seconds
        self._cases = meter.create_gauge("case_engine_cases", "Cases by stage (case_projection)")
        self._overdue = meter.create_gauge("case_engine_cases_overdue", "Open, not suspended cases past their due time")
        self._escalations = meter.create_gauge(
            "case_engine_escalations", "Escalations in the ledger: kind=fired (took effect) or proposed")
        self._pending = meter.create_gauge("case_engine_outbox_pending", "Notices waiting in the outbox")
        self._oldest = meter.create_gauge_float(
            "case_engine_outbox_oldest_pending_seconds", "Age of the oldest pending notice (0 when none)")
        self._refused = meter.create_gauge(
            "case_engine_refused_actions", "Refused actions recorded in refused_action, by reason (error type)")
        self._up = meter.create_gauge("case_engine_metrics_db_up", "1 if the last read of the database figures worked")
        self._hook_refused = meter.create_gauge(
            "case_engine_outbox_webhook_refused", "Notices whose webhook was refused for good (a 4xx), not retried")
        self._hook_retrying = meter.create_gauge(
            "case_engine_outbox_webhook_retrying", "Notices whose webhook failed and is being retried")
        self._blocked = meter.create_gauge(
            "case_engine_cases_blocked", "Cases blocked by a failure retrying cannot fix, awaiting UNBLOCK")
        self._nudges = meter.create_gauge(
            "case_engine_watchdog_nudges", "Escalation watchdog findings: state=unhealed (no ledger row since) or healed")
        self._nudge_age = meter.create_gauge_float(
            "case_engine_watchdog_oldest_unhealed_seconds", "Since the oldest unhealed watchdog finding (0 when none)")
        self._proposals = meter.create_gauge(
            "case_engine_escalation_proposals_pending", "Escalation proposals awaiting confirmation or dismissal")
        self._proposal_age = meter.create_gauge_float(
            "case_engine_escalation_oldest_proposal_seconds", "Age of the oldest pending escalation proposal (0 when none)")
        self._reasons: set[str] = set()

    def publish(self, f: DbFigures) -> None:
        for stage in Stage:
            self._cases.set(f.cases_by_stage.get(stage.value, 0), {"stage": stage.value})
        for stage, n in f.cases_by_stage.items():
            if stage not in _STAGE_VALUES:
                self._cases.set(n, {"stage": stage})
        self._overdue.set(f.overdue)
        for kind in ESCALATION_EVENTS:
            self._escalations.set(f.escalations.get(kind, 0), {"kind": kind})
        self._pending.set(f.outbox_pending)
        self._oldest.set(f.oldest_pending_seconds)
        self._hook_refused.set(f.webhook_refused)
        self._hook_retrying.set(f.webhook_retrying)
        self._blocked.set(f.blocked_cases)
        self._nudges.set(f.nudges_unhealed, {"state": "unhealed"})
        self._nudges.set(f.nudges_healed, {"state": "healed"})
        self._nudge_age.set(f.oldest_unhealed_seconds)
        self._proposals.set(f.proposals_pending)
        self._proposal_age.set(f.oldest_proposal_seconds)
        self._reasons |= set(f.refused_by_reason)
        for reason in self._reasons:
            self._refused.set(f.refused_by_reason.get(reason, 0), {"reason": reason})

    async def collect_once(self) -> DbFigures | None:
        try:
            figures = await read_figures(self._pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
            self._up.set(0)
            log.warning("metrics_db_error", error=str(e))
            return None
        self.publish(figures)
        self._up.set(1)
        return figures

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.collect_once()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._poll)
            except TimeoutError:
                pass
