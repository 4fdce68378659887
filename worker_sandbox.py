"""The workflow sandbox, without its cost per payload (issue 9, the lag target).

temporalio 1.35's sandboxed runner answers two questions about every payload of every
activation by *executing a code string inside the sandbox*: which serialization context the
payload belongs to (`get_serialization_context`) and which external-storage context
(`get_external_store_context`). The payload visitor asks them once per payload on each of its
passes (three on the way in, three on the way out), so an activation with a dozen payloads
compiles and runs some 40 small `exec`s, each entering the sandbox's import and builtins
restrictions. Profiled replaying a stored case history (`escalation_clock_ledger`, 30 workflow
tasks): `_runner._run_code` for these questions took a third of the profiled time (7.8 of
23.3 s), more than the workflow code itself (bench/README.md, "The sandbox's cost per payload").

Both answers are computed by the SDK's own workflow instance from its bookkeeping (the
pending activity, child workflow, signal or Nexus operation with that command's sequence
number); no workflow code runs and nothing is imported. `ContextDirectSandboxRunner` asks the
same SDK object for the same answer directly, from the thread that asked before, so the
sandbox still runs every line of workflow code under its restrictions and only these two
look-ups leave it. Where the SDK's private layout is not what this was written against (no
`__temporal_in_sandbox` in the instance's globals), the SDK's own path is taken.
tests/replay/test_worker_sandbox.py replays stored histories with both runners and checks
that every answer is the SDK's.
"""

from __future__ import annotations

from typing import Any

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import _runner as _sandbox_runner

_IN_SANDBOX = "__temporal_in_sandbox"


class _ContextDirectInstance(_sandbox_runner._Instance):
    """A sandboxed workflow instance whose context look-ups skip the `exec` round trip."""

    def _in_sandbox(self) -> Any | None:
        return self.globals_and_locals.get(_IN_SANDBOX)

    def get_serialization_context(self, command_info: Any) -> Any:
        inner = self._in_sandbox()
        if inner is None:
            return super().get_serialization_context(command_info)
        return inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        inner = self._in_sandbox()
        if inner is None:
            return super().get_external_store_context(command_info)
        return inner.get_external_store_context(command_info)


class ContextDirectSandboxRunner(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner` whose instances answer the payload-context look-ups directly."""

    def create_instance(self, det: Any) -> _sandbox_runner._Instance:
        return _ContextDirectInstance(det, self.runner_class, self.restrictions)
