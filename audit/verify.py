"""`audit verify`: the ledger's hash chains, and the ledger against the workflow histories.

Per case:
  * the chain (audit.chain.verify_chain): an edited, deleted or hand-inserted row;
  * the tail: the projection's last_seq against the last ledger row (a deleted last row
    leaves no gap in the chain);
  * the cross-check: every ledger entry the workflow handed to the record activity
    (in the history) is in the ledger with the same content, every ledger row is in
    the history, and every human action (an accepted, completed Update) and every
    escalation in the history has its ledger row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from audit.archive import load_histories
from audit.chain import ChainBreak, ChainReport, ChainRow, verify_chain
from audit.history import HistoryError, RunHistory, clock_record, decode
from domain.model import ActionRequest
from workflows.contracts import CaseWorkflowInput, RecordInput


@dataclass
class Finding:
    case_no: str
    seq: int | None
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"case {self.case_no}" + (f" seq {self.seq}" if self.seq is not None else "")
        return f"{where}: {self.kind}: {self.detail}"

    def as_dict(self) -> dict:
        return {"case_no": self.case_no, "seq": self.seq, "kind": self.kind, "detail": self.detail}


@dataclass
class CaseVerdict:
    case_no: str
    rows: int
    legacy_rows: int = 0
    runs: int = 0
    history_checked: bool = False
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict:
        return {"case_no": self.case_no, "rows": self.rows, "legacy_rows": self.legacy_rows, "runs": self.runs,
                "history_checked": self.history_checked, "ok": self.ok,
                "findings": [f.as_dict() for f in self.findings]}


@dataclass
class HistoryFacts:
    """What the histories say the ledger must hold."""

    entries: dict[int, ChainRow] = field(default_factory=dict)  # seq -> expected row
    pending: set[int] = field(default_factory=set)  # seqs whose record activity has not completed yet
    actions: list[tuple[str, str, str]] = field(default_factory=list)  # (request_id, action, actor) accepted+done
    complete: bool = True  # the first run (the filing) is present
    gaps: list[str] = field(default_factory=list)


def history_facts(runs: Iterable[RunHistory]) -> HistoryFacts:
    facts = HistoryFacts()
    runs = list(runs)
    if runs:
        first = runs[0].history.events[0].workflow_execution_started_event_attributes
        if decode(first.input, CaseWorkflowInput).state is not None:
            facts.complete = False
            facts.gaps.append(f"the runs before {runs[0].run_id} are neither archived nor on the server")
    for run in runs:
        scheduled: dict[int, RecordInput] = {}
        completed: set[int] = set()
        accepted: dict[str, ActionRequest] = {}
        for ev in run.history.events:
            et = ev.event_type
            if et == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                a = ev.activity_task_scheduled_event_attributes
                if a.activity_type.name == "record_case_events":
                    scheduled[ev.event_id] = decode(a.input, RecordInput)
            elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                completed.add(ev.activity_task_completed_event_attributes.scheduled_event_id)
            elif (clock := clock_record(ev)) is not None:  # issue 9: written inside the task, echoed
                scheduled[ev.event_id] = clock
                completed.add(ev.event_id)
            elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                a = ev.workflow_execution_update_accepted_event_attributes
                if a.accepted_request.input.name == "act":  # not unblock, reopen_outcome (issue 14)
                    accepted[a.accepted_request.meta.update_id] = decode(a.accepted_request.input.args, ActionRequest)
            elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
                a = ev.workflow_execution_update_completed_event_attributes
                req = accepted.get(a.meta.update_id)
                if req is not None and a.outcome.HasField("success"):
                    facts.actions.append((req.request_id, req.action.value, req.actor.user_id))
        for sid, inp in scheduled.items():
            for e in inp.entries:
                facts.entries[e.seq] = ChainRow.from_entry(e, inp.workflow_run_id)
                if sid not in completed:
                    facts.pending.add(e.seq)
    return facts


def cross_check(case_no: str, rows: list[asyncpg.Record], facts: HistoryFacts) -> list[Finding]:
    out: list[Finding] = []
    ledger = {int(r["seq"]): ChainRow.from_record(r) for r in rows}
    for seq, want in sorted(facts.entries.items()):
        got = ledger.get(seq)
        if got is None:
            if seq not in facts.pending:
                out.append(Finding(case_no, seq, "HISTORY_ENTRY_NOT_IN_LEDGER",
                                   f"history records {want.event} by {want.actor_user} at {want.content()['at']} "
                                   "but the ledger has no such row (deleted?)"))
            continue
        a, b = want.content(), got.content()
        diff = [k for k in a if a[k] != b[k]]
        if diff:
            shown = "; ".join(f"{k}: ledger {b[k]!r} vs history {a[k]!r}" for k in diff)
            out.append(Finding(case_no, seq, "LEDGER_DIFFERS_FROM_HISTORY", shown))
    for seq, got in sorted(ledger.items()):
        if seq in facts.entries:
            continue
        if facts.complete:
            out.append(Finding(case_no, seq, "LEDGER_ROW_NOT_IN_HISTORY",
                               f"ledger row {got.event} by {got.actor_user} appears in no workflow history "
                               "(inserted outside the engine?)"))
    by_request = {(g.request_id, g.event) for g in ledger.values() if g.request_id}
    for request_id, action, actor in facts.actions:
        if (request_id, action) not in by_request:
            out.append(Finding(case_no, None, "ACTION_NOT_IN_LEDGER",
                               f"{action} by {actor} (request {request_id}) was accepted in the history "
                               "but has no ledger row"))
    return out


async def case_numbers(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch("SELECT DISTINCT case_no FROM ledger ORDER BY case_no")
    return [r["case_no"] for r in rows]


async def verify_case(
    pool: asyncpg.Pool, client: Client | None, case_no: str, *, with_history: bool = True
) -> CaseVerdict:
    rows = await pool.fetch("SELECT * FROM ledger WHERE case_no = $1 ORDER BY seq", case_no)
    v = CaseVerdict(case_no=case_no, rows=len(rows))
    chain: ChainReport = verify_chain(case_no, list(rows))
    v.legacy_rows = chain.legacy_rows
    v.findings += [_from_break(b) for b in chain.breaks]
    last_seq = await pool.fetchval("SELECT last_seq FROM case_projection WHERE case_no = $1", case_no)
    top = int(rows[-1]["seq"]) if rows else 0
    if last_seq is not None and last_seq > top:
        missing = f"{top + 1}" if last_seq == top + 1 else f"{top + 1}..{last_seq}"
        v.findings.append(Finding(case_no, top + 1, "MISSING_ROW",
                                  f"the case projection says the last row is seq {last_seq}, "
                                  f"the ledger ends at seq {top}: row(s) {missing} absent (deleted?)"))
    if not rows and last_seq is None:
        v.findings.append(Finding(case_no, None, "UNKNOWN_CASE", "no ledger rows and no projection for this case"))
    if with_history:
        try:
            runs = await load_histories(pool, client, case_no)
        except HistoryError as e:
            v.findings.append(Finding(case_no, None, "ARCHIVE_ALTERED", str(e)))
            return v
        v.runs = len(runs)
        if not runs:
            v.findings.append(Finding(case_no, None, "NO_HISTORY",
                                      "no workflow history in the archive or on the server to cross-check with"))
            return v
        facts = history_facts(runs)
        v.history_checked = True
        for g in facts.gaps:
            v.findings.append(Finding(case_no, None, "HISTORY_INCOMPLETE", g))
        v.findings += cross_check(case_no, list(rows), facts)
    return v


def _from_break(b: ChainBreak) -> Finding:
    return Finding(b.case_no, b.seq, b.kind, b.detail)
