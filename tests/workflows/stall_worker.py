"""A real worker process (`worker._main`) plus a test-only workflow that stalls its activation.

`StallWorkflow` blocks its first activation for `STALL_SECONDS` in a call the SDK cannot
interrupt (time.sleep, a C call; in the evidence of issue 9 the SDK's interrupt was swallowed
inside a long pydantic deep copy the same way), so the SDK declares TMPRL1101 after 2 s and then
tries to evict a run whose activation is still running. It blocks only while the marker file
does not exist yet, so after a restart the same run replays and completes.

Usage: python -m tests.workflows.stall_worker MARKER_FILE   (settings from the environment)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

STALL_TASK_QUEUE = os.environ.get("STALL_TASK_QUEUE", "stall-test")
STALL_SECONDS = float(os.environ.get("STALL_SECONDS", "6"))
MARKER = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/nonexistent/stall-marker")


@workflow.defn(name="StallWorkflow", sandboxed=False)
class StallWorkflow:
    @workflow.run
    async def run(self) -> str:
        if not MARKER.exists():  # test-only, deliberately outside determinism: stall once per marker
            MARKER.write_text("stalled once")
            time.sleep(STALL_SECONDS)
        await workflow.sleep(0.05)
        return "done"


def main() -> int:
    import worker

    def extra(client):  # type: ignore[no-untyped-def]
        return [Worker(client, task_queue=STALL_TASK_QUEUE, workflows=[StallWorkflow],
                       workflow_runner=UnsandboxedWorkflowRunner())]

    return asyncio.run(worker._main(extra_workers=extra))


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
