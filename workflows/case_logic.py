"""The case workflow's behaviour: state, waiting, deciding through `domain/`, performing.

`workflows/case_workflow.py` defines the workflow (`CaseWorkflow(CaseLogic)`: its run method,
Updates, signals and queries, each one line into this class). The split is for cost (issue 15):
the SDK's sandbox re-imports a workflow's own module for every new or rebuilt case, so that
module stays small, while this module, like `domain/`, is passed through and imported once per
process. It waits (for handler Updates and for the clock), asks `domain.decide` what happens, and
performs: local activities read the policy and the calendar, the record activity writes ledger,
projection and outbox in one transaction. Every change that could alter a running case's history
must go behind `workflow.patched` (here or in case_workflow.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import decide as d
    from domain import escalation as esc
    from domain import fanout
    from domain import followup as fu
    from domain import reopen as rp
    from domain.blocking import (
        BlockedStep,
        CaseBlockedError,
        UnblockMode,
        UnblockRequest,
        authorize_unblock,
    )
    from domain.enums import Action, Stage
    from domain.errors import CaseError
    from domain.fanout_types import ChildStatus
    from domain.followup_model import ScheduleResult
    from domain.model import (
        ActionRequest,
        Actor,
        CaseFiling,
        CaseState,
        ComputedDeadline,
    )
    from domain.policy import Policy
    from domain.screening import screen
    from domain.shared_policy import shared_policy
    from workflows.activity_options import ACTIVITY_RETRY, ACTIVITY_TIMEOUT, SIDE_TABLE_RETRY
    from workflows.case_clock import ClockMixin
    from workflows.case_fanout import FanoutMixin
    from workflows.contracts import (
        CASE_BLOCKED,
        CASE_DUE_AT,
        CASE_KIND,
        CASE_STAGE,
        ESCALATION_RUNG,
        INSPECTION_ROUND,
        RESPONSIBLE_UNITS,
        ActionResult,
        ArchivedStateRecord,
        CaseBlockRecord,
        CaseWorkflowInput,
        CaseWorkflowResult,
        PolicyRequest,
        RecordInput,
    )


# Issue 9: a step that fails non-retryably blocks the case visibly instead of failing the
# workflow task for ever. Only reached on such a failure, which no stored history has.
BLOCKED_PATCH = "case-blocked-v1"


_R = TypeVar("_R")
# Set by file_case at the start (CaseStage, CaseKind, ResponsibleUnits, InspectionRound) or carried
# over by continue-as-new: with LOCAL_ACTIVITIES_PATCH the run knows them and upserts only changes.
SEEDED_SEARCH_ATTRIBUTES = (CASE_STAGE, CASE_KIND, RESPONSIBLE_UNITS, INSPECTION_ROUND, CASE_DUE_AT, ESCALATION_RUNG)


# Issue 9 escalation rules (rung modes, proposals, profile order, resume): runs begun before
# it keep the old ladder until they continue-as-new (domain/escalation.py adopt_rules).
ESCALATION_RULES_PATCH = "escalation-rules-2"
# Issue 13: the TRANSFER of an item that fans out (domain/fanout.py) loads the county list, splits
# the item and starts its child cases. Runs begun earlier transfer such an item as one case.
FANOUT_PATCH = "fanout-v1"
# Issue 13: measure milestones and the monthly progress report as timers (domain/followup.py).
# Runs begun before keep no follow-up state until they continue-as-new.
FOLLOWUP_PATCH = "milestones-timers-1"
# Issue 14: a run that ends ARCHIVED keeps its final state in PostgreSQL (record_archived_state),
# so that the case can be reopened as a new run after the server's retention removed this one.
ARCHIVE_SNAPSHOT_PATCH = "reopen-archive-snapshot-1"
# Issue 15: fewer workflow tasks per action. The policy and the calendar computations (deadline,
# follow-up schedule) run as local activities: a marker in the same workflow task instead of a
# scheduled activity and one more workflow task. The search attributes the run starts with (set
# by file_case, carried over by continue-as-new) are not upserted again, and the older patches
# are implied instead of recorded (`_patched`).
LOCAL_ACTIVITIES_PATCH = "local-calendar-activities-1"
# What a run that took LOCAL_ACTIVITIES_PATCH takes without asking (`_patched`).
IMPLIED_BY_LOCAL = (BLOCKED_PATCH, ESCALATION_RULES_PATCH, FANOUT_PATCH, FOLLOWUP_PATCH, ARCHIVE_SNAPSHOT_PATCH)
# Issue 9 (lag): what the clock decides (an escalation rung, a reminder, a posting that ended) is
# written by a local activity inside the woken workflow task, not by a scheduled activity and a
# second task: a woken case then costs the server what a plain timer costs (case_clock.py).
# Asked before LOCAL_ACTIVITIES_PATCH, which it implies (and with it IMPLIED_BY_LOCAL).
CLOCK_LEDGER_PATCH = "clock-ledger-local-1"
IMPLIED_BY_CLOCK = (*IMPLIED_BY_LOCAL, LOCAL_ACTIVITIES_PATCH)


def _new_case(filing: CaseFiling, policy: Policy, filed_by: Actor) -> d.Decision:
    try:
        return d.new_case(filing, policy, workflow.now(), filed_by)
    except CaseError as e:  # e.g. an unknown ladder profile: the case cannot exist
        raise ApplicationError(str(e), type=type(e).__name__, non_retryable=True) from None


class CaseLogic(ClockMixin, FanoutMixin):
    """Carries one case from filing to 销号 and beyond; `CaseWorkflow` is its workflow definition."""

    def _setup(self, inp: CaseWorkflowInput) -> None:
        # Issue 15: equal policy snapshots share one object across the worker's cases.
        if inp.state is not None:
            inp.state.policy = shared_policy(inp.state.policy)
        if inp.policy is not None:
            inp.policy = shared_policy(inp.policy)
        self._state: CaseState | None = inp.state
        self._lock = asyncio.Lock()
        self._dirty = False
        self._sa: dict[str, object] = {}
        self._filing: d.Decision | None = None
        self._blocked: BlockedStep | None = None
        self._held: d.Decision | None = None  # the decision a blocked case could not record
        self._unblock: UnblockRequest | None = None
        self._blocks = 0
        self._followup = False  # set by run() from workflow.patched(FOLLOWUP_PATCH)
        self._local: bool | None = None  # workflow.patched(LOCAL_ACTIVITIES_PATCH), on first use
        self._clock_local = False  # workflow.patched(CLOCK_LEDGER_PATCH), asked with it
        self._waiting_for_clock = False  # the main loop waits for the clock (or an action)
        if inp.state is None and inp.policy is not None:
            # With the policy in the input the case exists from the first instant,
            # so an action sent right after the start is validated, not bounced.
            self._filing = _new_case(inp.filing, inp.policy, inp.filed_by)
            self._state = self._filing.state
        self._filed = inp.state is not None
        self._pending: dict[object, ActionRequest] = {}  # accepted `act` Updates not yet applied
        # Issue 13 (county fan-out): reports of child cases waiting to be applied (parent), and
        # what this case last reported to its parent (child).
        self._child_updates: list[ChildStatus] = []
        self._reported: tuple[object, ...] | None = None
        # Issue 14: a new run of an archived case applies this REOPEN first (domain/reopen.py).
        self._reopen: rp.ArchivedReopen | None = inp.reopen
        self._reopen_done = inp.reopen is None
        self._reopen_refused: str | None = None

    async def _run(self, inp: CaseWorkflowInput) -> CaseWorkflowResult:
        self._esc_rules = self._patched(ESCALATION_RULES_PATCH)
        self._followup = self._patched(FOLLOWUP_PATCH)
        if self._state is not None:
            esc.adopt_rules(self._state, self._esc_rules)
            fu.adopt(self._state, self._followup, workflow.now())
        if not self._filed:
            if self._filing is None:
                # Shared at once: this frame keeps `policy` alive for the whole run.
                policy = shared_policy(await self._read_activity(
                    "load_policy",
                    PolicyRequest(case_no=inp.filing.case_no, ladder_profile=inp.filing.ladder_profile),
                    Policy,
                    local=self._uses_local_activities(),
                ))
                self._filing = _new_case(inp.filing, policy, inp.filed_by)
                esc.adopt_rules(self._filing.state, self._esc_rules)
                fu.adopt(self._filing.state, self._followup, workflow.now())
            async with self._lock:
                await self._perform_or_block(self._filing, origin="FILING")
            await self._settle_block()
            if inp.transfer is not None:  # a child case of a fanned-out item: transferred at once
                await self._child_transfer(inp.transfer)
            self._filed = True
        else:
            self._upsert_search_attributes()
            if self._reopen is not None:
                await self._reopen_archived(self._reopen)
        while True:
            await self._settle_block()
            await self._apply_child_updates()
            state = self._require_state()
            if state.stage is Stage.ARCHIVED:
                if self._patched(ARCHIVE_SNAPSHOT_PATCH):
                    await workflow.execute_activity(
                        "record_archived_state",
                        ArchivedStateRecord(case_no=state.case_no, workflow_run_id=workflow.info().run_id,
                                            state=state),
                        start_to_close_timeout=ACTIVITY_TIMEOUT,
                        retry_policy=ACTIVITY_RETRY,
                    )
                break
            if self._continue_as_new_due():
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() and not self._lock.locked()
                )
                if self._child_updates:  # a child's report came meanwhile: apply it first
                    continue
                state = self._require_state()
                state.runs += 1
                workflow.continue_as_new(
                    CaseWorkflowInput(filing=state.filing, filed_by=inp.filed_by, state=state)
                )
            if self._followup and fu.schedule_request(state, workflow.now()) is not None:
                async with self._lock:  # timers wanted but not dated yet (e.g. after continue-as-new)
                    await self._perform_or_block(d.Decision(state=self._require_state()), origin="FOLLOWUP")
                continue
            await self._wait_for_clock_or_action()
            if self._blocked is not None:
                continue
            async with self._lock:
                if self._clock_local:
                    await self._clock_step()
                elif (decision := d.on_wakeup(self._require_state(), workflow.now())) is not None:
                    await self._perform_or_block(decision, origin="CLOCK")
        await workflow.wait_condition(workflow.all_handlers_finished)
        s = self._require_state()
        return CaseWorkflowResult(case_no=s.case_no, stage=s.stage, seq=s.seq, reopen_refused=self._reopen_refused)

    async def _reopen_archived(self, reopen: rp.ArchivedReopen) -> None:
        """Issue 14: the first act of a new run of an archived case: its REOPEN, checked again.

        Refused (e.g. the new due date is no longer after today): nothing is recorded, the run
        ends ARCHIVED again with the reason in its result and the `reopen_outcome` Update.
        """
        req = reopen.request
        async with self._lock:
            try:
                decision = rp.decide_archived_reopen(self._require_state(), reopen, workflow.now())
            except CaseError as e:
                self._reopen_refused = f"{type(e).__name__}: {e}"
            else:
                await self._perform_or_block(
                    decision, origin=f"REOPEN (archived) by {req.actor.user_id}", request_id=req.request_id
                )
        await self._settle_block()
        self._reopen_done = True

    async def _wait_for_clock_or_action(self) -> None:
        wake = d.next_wakeup(self._require_state())
        self._dirty = False
        woken = lambda: self._dirty or self._continue_as_new_due() or bool(self._child_updates)  # noqa: E731
        if wake is None:
            await workflow.wait_condition(woken)
            return
        delay = (wake - workflow.now()).total_seconds()
        if delay <= 0:
            return
        self._waiting_for_clock = True
        try:
            await workflow.wait_condition(woken, timeout=delay, timeout_summary="case-deadline")
        except TimeoutError:
            pass
        finally:
            self._waiting_for_clock = False

    def _continue_as_new_due(self) -> bool:
        info = workflow.info()
        state = self._state
        if state is None or state.pending_deadline is not None or self._blocked is not None:
            return False
        if self._child_updates:
            return False
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= state.policy.max_history_events
        )

    def _require_state(self) -> CaseState:
        if self._state is None:
            raise ApplicationError("case is still being filed; retry", type="CaseNotReadyError")
        return self._state

    # ------------------------------------------------------------ performing

    async def _perform_or_block(
        self, decision: d.Decision, origin: str, request_id: str | None = None, clock_at: datetime | None = None
    ) -> bool:
        """Perform `decision`; on a failure retrying cannot fix, block the case and hold it.

        Returns False when the case was blocked: its state is then the last recorded one and
        the decision waits for the office's UNBLOCK (`_settle_block`).
        """
        before = self._state
        try:
            await self._perform(decision, clock_at)
            return True
        except ActivityError as e:
            cause = e.cause
            if not (isinstance(cause, ApplicationError) and cause.non_retryable):
                raise
            if not self._patched(BLOCKED_PATCH):
                raise
            self._state = before
            self._held = decision
            self._blocks += 1
            self._blocked = BlockedStep(
                at=workflow.now(),
                activity=e.activity_type or "",
                error_type=cause.type or type(cause).__name__,
                message=cause.message,
                origin=origin,
                request_id=request_id,
                block_no=self._blocks,
            )
            self._upsert_search_attributes()
            self._dirty = True
            await self._side_table("record_case_block", CaseBlockRecord(
                case_no=decision.state.case_no, workflow_run_id=workflow.info().run_id, blocked=self._blocked,
            ))
            return False

    async def _side_table(self, activity: str, rec: CaseBlockRecord) -> None:
        try:
            await workflow.execute_activity(
                activity, rec, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=SIDE_TABLE_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("case_block side-table write failed for %s", rec.case_no)

    async def _settle_block(self) -> None:
        """While blocked: wait for the office's UNBLOCK, then retry or drop the held decision."""
        while self._blocked is not None:
            await workflow.wait_condition(lambda: self._unblock is not None)
            blocked, held, u = self._blocked, self._held, self._unblock
            assert u is not None and blocked is not None
            self._blocked = None
            self._held = None
            self._upsert_search_attributes()
            await self._side_table("resolve_case_block", CaseBlockRecord(
                case_no=held.state.case_no if held else "", workflow_run_id=workflow.info().run_id,
                blocked=blocked, unblock=u, at=workflow.now(),
            ))
            if u.mode is UnblockMode.RETRY and held is not None:
                async with self._lock:
                    await self._perform_or_block(held, origin=blocked.origin, request_id=blocked.request_id)
            self._unblock = None  # the UNBLOCK Update answers now: UNBLOCKED, or BLOCKED again
            self._dirty = True

    async def _perform(self, decision: d.Decision, clock_at: datetime | None = None) -> None:
        """Adopt a decision: compute its deadline, then record everything once.

        `clock_at`: the clock decided it at that time (CLOCK_LEDGER_PATCH): it is recorded by a
        local activity in this task. What the calendar adds (a deadline, follow-up dates) is the
        same in a retried task unless the calendar changed meanwhile: its rows carry no time of
        computation (`computed_at` stays in the state), so the ledger check compares like with like.
        """
        now = clock_at or workflow.now()
        self._state = decision.state
        entries, notices = list(decision.entries), list(decision.notices)
        local = self._uses_local_activities()
        if decision.deadline_request is not None:
            computed = await self._read_activity(
                "compute_deadline", decision.deadline_request, ComputedDeadline, local=local
            )
            applied = d.apply_deadline(self._state, computed, now)
            self._state = applied.state
            entries += applied.entries
            notices = d.attach_deadline(notices, computed) + applied.notices
        if self._followup and (fu_req := fu.schedule_request(self._state, now)) is not None:
            dated = await self._read_activity("compute_followup_schedule", fu_req, ScheduleResult, local=local)
            timed = d.apply_followup_schedule(self._state, dated, now)
            self._state = timed.state
            entries += timed.entries
            notices += timed.notices
        # Not during replay (the SDK's default); ops.context puts case_no/workflow_id/run_id on it.
        workflow.logger.debug("case_events_decided")
        if entries:
            record = RecordInput(
                entries=entries,
                notices=notices,
                projection=d.projection(
                    self._state, with_filing=any(e.event in d.FILING_EVENTS for e in entries)
                ),
                workflow_run_id=workflow.info().run_id,
            )
            if clock_at is not None:
                await self._record_clock(record, clock_at)
            else:
                await workflow.execute_activity(
                    "record_case_events", record, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY,
                )
        self._upsert_search_attributes()
        self._dirty = True
        if self._state.filing.parent_case_no:
            await self._report_to_parent()

    def _patched(self, patch_id: str) -> bool:
        """`workflow.patched(patch_id)` for a patch older than LOCAL_ACTIVITIES_PATCH.

        A run that took LOCAL_ACTIVITIES_PATCH started under code that has every older patch, so
        it takes them all without recording their markers: each marker costs two history events
        (the marker and an upsert of TemporalChangeVersion) in every run. Runs without it (older
        histories, or the patch left inactive by WORKER_INACTIVE_PATCHES) ask as before.
        """
        return self._uses_local_activities() or workflow.patched(patch_id)

    def _uses_local_activities(self) -> bool:
        """Issue 15's patch, asked once per run: at the start of run(), or earlier by an Update
        delivered with the first workflow task of a continued run."""
        if self._local is None:
            # The newer patch first: a run that takes it records only its marker (it implies
            # LOCAL_ACTIVITIES_PATCH); runs recorded before it find no marker and ask the older one.
            self._clock_local = workflow.patched(CLOCK_LEDGER_PATCH)
            self._local = self._clock_local or workflow.patched(LOCAL_ACTIVITIES_PATCH)
            if self._local:
                sa = workflow.info().typed_search_attributes
                self._sa = {key.name: sa.get(key) for key in SEEDED_SEARCH_ATTRIBUTES}
        return self._local

    async def _read_activity(self, name: str, arg: object, result_type: type[_R], *, local: bool) -> _R:
        """An activity that only reads configuration (policy, calendar): local when `local` (issue 15).

        Safe as a local activity because it writes nothing: a workflow task that fails after it
        only runs it again. Its result is recorded either way (marker or completed activity).
        """
        if local:
            return await self._local_activity(name, arg, result_type)
        return await workflow.execute_activity(
            name, arg, result_type=result_type, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY,
        )

    async def _local_activity(self, name: str, arg: object, result_type: type[_R]) -> _R:
        try:
            return await workflow.execute_local_activity(
                name, arg, result_type=result_type, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY,
            )
        except ApplicationError as e:
            # A local activity's final failure arrives unwrapped (SDK 1.35): wrap it as a
            # scheduled activity's is, so that one path classifies both (_perform_or_block).
            raise ActivityError(
                f"local activity {name} failed", scheduled_event_id=0, started_event_id=0, identity="",
                activity_type=name, activity_id="", retry_state=None,
            ) from e

    def _upsert_search_attributes(self) -> None:
        updates = []
        s = self._state
        if s is not None:
            f = s.filing
            wanted: list[tuple[SearchAttributeKey, object]] = [
                (CASE_STAGE, s.stage.value),
                (CASE_KIND, f.kind.value),
                (RESPONSIBLE_UNITS, list(f.responsible_units)),
                (INSPECTION_ROUND, f.inspection_round or None),
                (CASE_DUE_AT, s.deadline.due_at if s.deadline else None),
                (ESCALATION_RUNG, s.escalation.level),
            ]
            for key, value in wanted:
                if self._sa.get(key.name, "<unset>") == value:
                    continue
                self._sa[key.name] = value
                updates.append(key.value_unset() if value is None else key.value_set(value))  # type: ignore[arg-type]
        blocked = self._blocked.error_type if self._blocked is not None else None
        if blocked is not None or CASE_BLOCKED.name in self._sa:
            if self._sa.get(CASE_BLOCKED.name, "<unset>") != blocked:
                self._sa[CASE_BLOCKED.name] = blocked
                updates.append(CASE_BLOCKED.value_unset() if blocked is None else CASE_BLOCKED.value_set(blocked))
        if updates:
            workflow.upsert_search_attributes(updates)

    # ------------------------------------------------------------ messages

    async def _act_update(self, req: ActionRequest) -> ActionResult:
        """Take one handler action; refused actions raise a named ApplicationError."""
        # Noted before the first await: validators of Updates delivered in the same task see it.
        key = object()
        self._pending[key] = req
        try:
            return await self._act(req, key)
        finally:
            self._pending.pop(key, None)

    async def _act(self, req: ActionRequest, key: object) -> ActionResult:
        # FILED is always ledger row 1; a due clock decides first (CLOCK_LEDGER_PATCH).
        await workflow.wait_condition(lambda: self._filed and not self._clock_first())
        async with self._lock:
            fans_out = False
            try:
                state = self._require_state()
                fans_out = req.action is Action.TRANSFER and fanout.applies(state) and self._patched(FANOUT_PATCH)
                if fans_out:
                    decision = await self._fanout_transfer(state, req)
                else:
                    decision = d.decide(state, req, workflow.now())
            except CaseError as e:
                # Validated earlier, but another action may have moved the case since.
                raise ApplicationError(str(e), type=type(e).__name__, non_retryable=True) from None
            finally:
                self._pending.pop(key, None)  # from here on the state itself holds it
            if not await self._perform_or_block(
                decision, origin=f"{req.action.value} by {req.actor.user_id}", request_id=req.request_id
            ):
                b = self._blocked
                assert b is not None
                raise ApplicationError(
                    f"case {decision.state.case_no} is blocked: {b.activity} failed with {b.error_type}: "
                    f"{b.message} (nothing of this action was recorded; the office must UNBLOCK the case)",
                    type=CaseBlockedError.__name__, non_retryable=True,
                )
            if fans_out and self._require_state().fanout is not None:
                await self._start_children(req)
            return self._result()

    def _check_act(self, req: ActionRequest) -> None:
        state = self._require_state()
        if not self._reopen_done:
            raise ApplicationError(f"case {state.case_no} is being reopened from the archive; retry",
                                   type="CaseNotReadyError", non_retryable=True)
        if self._blocked is not None:
            b = self._blocked
            raise ApplicationError(
                f"case {state.case_no} is blocked since {b.at:%Y-%m-%d %H:%M} UTC: {b.activity} failed with "
                f"{b.error_type}: {b.message}; the office must UNBLOCK it first",
                type=CaseBlockedError.__name__, non_retryable=True,
            )
        try:
            d.validate(state, req, workflow.now())
            screen(state, req, workflow.now(), list(self._pending.values()))  # validator only: replay-safe
        except CaseError as e:
            raise ApplicationError(str(e), type=type(e).__name__, non_retryable=True) from None

    async def _reopen_outcome_update(self, update_id: str) -> ActionResult:
        """Issue 14: the outcome of the REOPEN this run of an archived case was started with."""
        await workflow.wait_condition(lambda: self._reopen_done or self._blocked is not None)
        if not self._reopen_done or self._reopen_refused is not None:  # refused, or blocked meanwhile
            why = self._reopen_refused or f"{CaseBlockedError.__name__}: the case is blocked; the office must UNBLOCK it"
            error_type, _, message = why.partition(": ")
            raise ApplicationError(message, type=error_type, non_retryable=True)
        return self._result()

    def _result(self) -> ActionResult:
        s = self._require_state()
        return ActionResult(case_no=s.case_no, stage=s.stage, seq=s.seq,
                            due_date=s.deadline.due_date.isoformat() if s.deadline else None)

    def _check_reopen_outcome(self, update_id: str) -> None:
        r = self._reopen
        if r is None or update_id != f"{r.request.actor.user_id}/{r.request.request_id}":
            raise ApplicationError("this run was not started by that reopen request", type="NotThisReopen",
                                   non_retryable=True)

    async def _unblock_update(self, req: UnblockRequest) -> str:
        """The office's UNBLOCK (domain/blocking.py): retry or drop the held decision."""
        self._unblock = req
        await workflow.wait_condition(lambda: self._unblock is None and not self._lock.locked())
        return "BLOCKED" if self._blocked is not None else "UNBLOCKED"

    def _check_unblock(self, req: UnblockRequest) -> None:
        try:
            authorize_unblock(self._blocked, req)
        except CaseError as e:
            raise ApplicationError(str(e), type=type(e).__name__, non_retryable=True) from None
        if self._unblock is not None:
            raise ApplicationError("an UNBLOCK is already in progress", type="InvalidTransitionError",
                                   non_retryable=True)

    def _on_child_update(self, status: ChildStatus) -> None:
        """A child case of this fanned-out item reports its stage (issue 13; applied in the main loop)."""
        self._child_updates.append(status)
        self._dirty = True

    def _on_nudge(self, reason: str) -> None:
        """The escalation watchdog's nudge: re-evaluate the clock now (harmless when nothing is due)."""
        workflow.logger.info("nudged: %s", reason)
        self._dirty = True


__all__ = ["CaseLogic"]
