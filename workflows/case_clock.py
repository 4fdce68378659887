"""What the clock decides, written inside the woken workflow task (issue 9, CLOCK_LEDGER_PATCH):
a mixin of `CaseLogic`, passed through the sandbox like it.

`record_clock_events` runs as a local activity, so its rows commit before the task completes. A
task that fails afterwards is retried with a later workflow time and perhaps an action that
arrived meanwhile; two rules make the retry decide what the failed attempt wrote: an action waits
while a clock decision is due (`_clock_first`), and a decision the ledger already holds at another
time is taken again at that time (`_clock_step`). The methods use CaseLogic's state (`_state`,
`_clock_local`, `_waiting_for_clock`) and its `_perform_or_block` / `_local_activity`.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import decide as d
    from workflows.contracts import ClockRecordInput, ClockRecordResult, RecordInput


class _Redecide(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The ledger holds this run's clock decision taken at `at` (a failed task wrote it)."""

    def __init__(self, at: datetime) -> None:
        super().__init__(at)
        self.at = at


class ClockMixin:
    """The clock's step of the main loop, and the rule that actions wait for a due clock."""

    async def _clock_step(self) -> None:
        """What the clock makes happen now, recorded inside this task (CLOCK_LEDGER_PATCH).

        When the ledger already holds this run's decision at the same seq, written by a workflow
        task that failed after its local activity, decide again at that decision's time: the same
        state at the same time decides the same rows, which the ledger then keeps. Anything else
        the activity refuses (LEDGER_DIVERGENCE) and the case blocks.
        """
        state = self._require_state()
        now = workflow.now()
        for _ in range(2):
            decision = d.on_wakeup(state, now)
            if decision is None:
                return
            try:
                await self._perform_or_block(decision, origin="CLOCK", clock_at=now)
                return
            except _Redecide as r:
                self._state = state
                now = r.at
        # record_clock_events refuses a second difference at the time it named: never reached.
        raise AssertionError(f"case {state.case_no}: the clock's decision differs from the ledger twice")

    def _clock_first(self) -> bool:
        """An action waits while the main loop has a due clock decision to take first.

        With CLOCK_LEDGER_PATCH a retried task must decide what the failed one wrote. An action
        that arrived meanwhile is delivered before the timer in the retried task's activation
        (sdk-core orders Updates and signals first); were it applied first, the clock's decision
        could differ from the rows already in the ledger. The clock's decision comes first, as it
        did in the failed task, whenever the clock is due at this task's time.
        """
        if not (self._clock_local and self._waiting_for_clock):
            return False
        wake = d.next_wakeup(self._require_state())
        return wake is not None and wake <= workflow.now()

    async def _record_clock(self, record: RecordInput, clock_at: datetime) -> None:
        """The clock's write as a local activity; `_Redecide` when the ledger holds this decision
        taken at another time."""
        done = await self._local_activity(
            "record_clock_events", ClockRecordInput(record=record, decided_at=clock_at), ClockRecordResult
        )
        if done.redecide_at is not None:
            raise _Redecide(done.redecide_at)


__all__ = ["ClockMixin"]
