"""The worker side of signed action requests (see domain.signing).

The keys reach the workflow through this worker interceptor rather than through
workflow code or its input: a secret must not enter history, and the check runs only
in the Update validator, which the SDK does not run on replay. Rotating or adding a
key therefore never changes how a recorded history replays.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from domain.errors import CaseError
from domain.model import ActionRequest
from domain.signing import verify

ACT_UPDATE = "act"
CASE_ID_PREFIX = "case-"


class ActionSigningInterceptor(Interceptor):
    """Refuses an unsigned or badly signed `act` Update in its validator, when keys are given."""

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        self.keys = keys

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        keys = self.keys
        if not keys:
            return None

        class _VerifySignature(WorkflowInboundInterceptor):
            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                if input.update == ACT_UPDATE and input.args:
                    _check(input.args[0], keys)
                super().handle_update_validator(input)

        return _VerifySignature


def _check(req: Any, keys: tuple[bytes, ...]) -> None:
    if not isinstance(req, ActionRequest):
        raise ApplicationError("the act Update takes an ActionRequest", type="InvalidInput", non_retryable=True)
    case_no = workflow.info().workflow_id.removeprefix(CASE_ID_PREFIX)
    try:
        verify(case_no, req, keys)
    except CaseError as e:
        raise ApplicationError(str(e), type=type(e).__name__, non_retryable=True) from None
