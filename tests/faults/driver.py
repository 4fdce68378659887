"""Moves N cases through the lifecycle like handlers would, through any fault, and then counts.

Every case runs the same script of handler actions (transfer, acknowledge, reports, measures,
submission, preliminary review: each writes ledger rows, and most compute a deadline and queue
notices). An action whose answer is lost (a server down, a worker killed) is sent again with the
same request id, which is also the Update id: it runs once. `check()` then compares what the
driver saw accepted with what the workflows, the ledger, the outbox, the inbox and the SMTP relay
hold, and returns the losses (all zero when nothing was lost).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from domain.enums import Action, Stage
from domain.model import ActionRequest, Actor
from tests.faults.cluster import Cluster
from tests.harness import LEAD, OFFICE, RU, make_filing
from workflows import client as ops

# (action, actor, fields, stage after it)
SCRIPT: list[tuple[Action, Actor, dict[str, Any], Stage]] = [
    (Action.TRANSFER, OFFICE, {}, Stage.TRANSFERRED),
    (Action.ACKNOWLEDGE, RU, {}, Stage.RECTIFYING),
    (Action.REPORT_PROGRESS, RU, {"reason": "本月进展:管网完成60%"}, Stage.RECTIFYING),
    (Action.HELP_VISIT, LEAD, {"reason": "现场帮扶"}, Stage.RECTIFYING),
    (Action.COMPLETE_MEASURE, RU, {"measure_seq": 1, "evidence": ["doc:m1"]}, Stage.RECTIFYING),
    (Action.COMPLETE_MEASURE, RU, {"measure_seq": 2, "evidence": ["doc:m2"]}, Stage.RECTIFYING),
    (Action.SUBMIT_COMPLETION, RU, {"evidence": ["doc:report"]}, Stage.PRELIM_REVIEW),
    (Action.PRELIM_PASS, LEAD, {}, Stage.PUBLIC_POSTING),
]
# Errors that mean "the answer did not arrive": send the same request again.
TRANSIENT = {"RPCError", "CaseNotReadyError", "TimeoutError", "EngineUnavailable"}


@dataclass
class CaseRun:
    case_no: str
    accepted: list[str] = field(default_factory=list)  # request ids, in order
    expected_stage: Stage = Stage.REGISTERED
    refused: list[str] = field(default_factory=list)
    filed: bool = False
    done: bool = False


@dataclass
class FaultReport:
    fault: str
    injected: str = ""
    cases: int = 0
    cases_in_flight: int = 0
    actions_in_flight: int = 0
    activities_in_flight: int = 0
    accepted_actions: int = 0
    resent_after_fault: int = 0
    lost: dict[str, int] = field(default_factory=dict)
    notices: int = 0
    emails: int = 0
    seconds: float = 0.0
    resent_same_message_id: int = 0
    note: str = ""

    def line(self) -> str:
        lost = ", ".join(f"{k} {v}" for k, v in self.lost.items())
        return (f"[fault] {self.fault}: injected {self.injected}; {self.cases} cases, {self.cases_in_flight} in flight "
                f"({self.actions_in_flight} actions awaiting an answer, {self.activities_in_flight} activities running); {self.accepted_actions} actions accepted "
                f"({self.resent_after_fault} re-sent after the fault), {self.notices} notices, {self.emails} e-mails; "
                f"lost: {lost}; e-mails re-sent with the same Message-ID: {self.resent_same_message_id}; "
                f"{self.seconds:.0f} s" + (f"; {self.note}" if self.note else ""))

    @property
    def nothing_lost(self) -> bool:
        return not any(self.lost.values())


class Driver:
    def __init__(self, cluster: Cluster, n_cases: int, concurrency: int | None = None) -> None:
        self.cluster = cluster
        tag = uuid.uuid4().hex[:6]
        self.filings = [make_filing(f"F{tag}-{i:04d}", due=date(2030, 6, 30)) for i in range(n_cases)]
        self.runs = {f.case_no: CaseRun(f.case_no) for f in self.filings}
        self.sem = asyncio.Semaphore(concurrency or n_cases)  # by default every case moves at once
        self.total_steps = n_cases * (len(SCRIPT) + 1)
        self.steps_done = 0
        self.pending = 0  # actions sent and not yet answered
        self.resent = 0
        self._threshold: tuple[int, asyncio.Event] | None = None
        self.fault_at: float | None = None

    @property
    def units(self) -> list[str]:
        f = self.filings[0]
        return [*f.responsible_units, *f.lead_supervising_units, *f.assisting_units, "整改办", "纪委监委"]

    def when_progress(self, fraction: float) -> asyncio.Event:
        """An event set once `fraction` of all steps (filings and actions) are done."""
        ev = asyncio.Event()
        self._threshold = (int(self.total_steps * fraction), ev)
        return ev

    def in_flight(self) -> tuple[int, int]:
        """(cases filed and not through their script yet, actions sent and not yet answered)."""
        return sum(1 for r in self.runs.values() if r.filed and not r.done), self.pending

    async def activities_running(self) -> int:
        """Activities the server has scheduled or started and not yet seen finish, over all cases."""
        client = self.cluster.client
        assert client is not None

        async def one(case_no: str) -> int:
            try:
                d = await client.get_workflow_handle(f"case-{case_no}").describe()
            except RPCError:
                return 0
            return len(d.raw_description.pending_activities)

        return sum(await asyncio.gather(*(one(c) for c, r in self.runs.items() if r.filed)))

    def _step_done(self) -> None:
        self.steps_done += 1
        if self._threshold and self.steps_done >= self._threshold[0]:
            self._threshold[1].set()

    async def run(self) -> None:
        await asyncio.gather(*(self._one(f) for f in self.filings))

    async def _retrying(self, what: str, call) -> Any:
        delay, first = 0.2, True
        while True:
            self.pending += 1
            try:
                return await call()
            except ops.ActionRefusedError as e:
                if e.error_type not in TRANSIENT:
                    raise
            except (RPCError, RPCTimeoutOrCancelledError, RuntimeError, TimeoutError, OSError):
                pass  # e.g. the server went away while the Update was waiting for its result
            finally:
                self.pending -= 1
            if first and self.fault_at is not None:
                self.resent += 1
            first = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)

    async def _one(self, filing) -> None:
        run = self.runs[filing.case_no]
        client = self.cluster.client
        assert client is not None
        async with self.sem:
            outcome = await self._retrying("file", lambda: ops.file_case(client, filing, OFFICE, self.cluster.task_queue))
            if not outcome.filed and "already filed" not in outcome.reason:
                raise AssertionError(outcome.reason)
            run.filed = True
            self._step_done()
            for action, actor, fields, stage_after in SCRIPT:
                req = ActionRequest(action=action, actor=actor, request_id=f"{run.case_no}-{action.value}-"
                                    f"{fields.get('measure_seq', 0)}", **fields)
                try:
                    await self._retrying(action.value, lambda req=req: ops.act(client, run.case_no, req))
                except ops.ActionRefusedError as e:
                    if e.error_type != "DuplicateRequestError":  # applied before its answer was lost
                        run.refused.append(f"{req.request_id}: {e.error_type}: {e.message}")
                        continue
                run.accepted.append(req.request_id)
                run.expected_stage = stage_after
                self._step_done()
            run.done = True

    # ------------------------------------------------------------------ counting

    async def settle(self, timeout: float) -> None:
        """Wait until every notice of the accepted actions is delivered (in-app and by e-mail)."""
        pool = self.cluster.pool
        assert pool is not None
        deadline = time.monotonic() + timeout
        cases = list(self.runs)
        while True:
            pending = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE case_no = ANY($1) AND status <> 'DELIVERED'", cases)
            if pending == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{pending} notices still undelivered after {timeout:.0f} s\n"
                                     + self.cluster.worker_logs())
            await asyncio.sleep(1)

    async def check(self, report: FaultReport) -> FaultReport:
        """Count what was lost: every figure in `report.lost` must be 0."""
        pool, client = self.cluster.pool, self.cluster.client
        assert pool is not None and client is not None
        cases = list(self.runs)
        wrong_stage = refused = missing_rows = duplicate_rows = gaps = stray_rows = 0
        projection_behind = 0
        expected_keys: set[str] = set()
        for case_no, run in self.runs.items():
            state = await self._retrying("query", lambda c=case_no: ops.get_state(client, c))
            wrong_stage += state.stage is not run.expected_stage
            refused += len(run.refused)
            rows = await pool.fetch("SELECT seq, event, request_id, data FROM ledger WHERE case_no = $1 ORDER BY seq",
                                    case_no)
            seqs = [r["seq"] for r in rows]
            gaps += seqs != list(range(1, len(seqs) + 1)) or len(seqs) != state.seq
            by_request: dict[str, int] = {}
            for r in rows:
                if r["request_id"]:
                    by_request[r["request_id"]] = by_request.get(r["request_id"], 0) + 1
                data = json.loads(r["data"]) if isinstance(r["data"], str) else (r["data"] or {})
                expected_keys.update(f"{case_no}:{r['seq']}:{u}" for u in data.get("notified", []))
            missing_rows += sum(1 for rid in run.accepted if rid not in by_request)
            duplicate_rows += sum(n - 1 for n in by_request.values() if n > 1)
            stray_rows += sum(1 for rid in by_request if rid not in run.accepted)
            last_seq = await pool.fetchval("SELECT last_seq FROM case_projection WHERE case_no = $1", case_no)
            projection_behind += last_seq != state.seq
        outbox = {r["notice_key"]: r for r in await pool.fetch(
            "SELECT notice_key, status, email_sent_at FROM outbox WHERE case_no = ANY($1)", cases)}
        inbox = {r["notice_key"] for r in await pool.fetch(
            "SELECT notice_key FROM inbox WHERE case_no = ANY($1)", cases)}
        mails: dict[str, set[str]] = {}
        mail_count: dict[str, int] = {}
        for key, mid in self.cluster.smtp.messages:
            if key.split(":", 1)[0] in self.runs:
                mails.setdefault(key, set()).add(mid)
                mail_count[key] = mail_count.get(key, 0) + 1
        report.cases = len(self.runs)
        report.accepted_actions = sum(len(r.accepted) for r in self.runs.values())
        report.resent_after_fault = self.resent
        report.notices = len(expected_keys)
        report.emails = sum(mail_count.values())
        # A notice whose e-mail left just before its sender was killed (before the commit that
        # marks it sent) goes again with the same Message-ID (activities/notices.py): counted
        # apart, as `resent_same_message_id`; a second message with another id would be a bug.
        twice = sum(len(ids) - 1 for ids in mails.values())
        report.resent_same_message_id = sum(n - len(mails[k]) for k, n in mail_count.items())
        report.lost = {
            "cases off their expected stage": wrong_stage,
            "actions refused": refused,
            "accepted actions missing from the ledger": missing_rows,
            "ledger rows twice": duplicate_rows,
            "ledger rows not accepted": stray_rows,
            "cases with a ledger gap": gaps,
            "projections behind": projection_behind,
            "notices missing from the outbox": len(expected_keys - set(outbox)),
            "notices undelivered": sum(1 for k in expected_keys if k in outbox and outbox[k]["status"] != "DELIVERED"),
            "notices missing from the inbox": len(expected_keys - inbox),
            "notices never e-mailed": len(expected_keys - set(mails)),
            "notices e-mailed twice": twice,
        }
        return report
