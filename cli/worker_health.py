"""The worker's health check: `python -m cli.worker_health` exits 0 when Temporal has seen a
worker of this host poll the order task queue, for workflow and for activity tasks, within
POLL_MAX_AGE_SECONDS; 1 otherwise, saying why.

The worker serves no HTTP, so the check asks the one party that knows whether it is working:
Temporal. A worker's identity is `<pid>@<hostname>` (the SDK's default), so in a container
(its own hostname) this is the container's own worker, not a sibling replica. A stuck worker
stops polling and turns unhealthy; a dead one ends its container."""

import asyncio
import socket
import sys
import time

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from config import Settings, load_settings

# A long poll waits up to about a minute before the worker polls again; two of those is late.
POLL_MAX_AGE_SECONDS = 130
KINDS = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


async def problems(settings: Settings, host: str | None = None) -> list[str]:
    """What is wrong with this host's worker; nothing when it is polling."""
    host = host or socket.gethostname()
    try:
        client = await asyncio.wait_for(
            Client.connect(settings.temporal_address, namespace=settings.temporal_namespace), 10
        )
    except (RuntimeError, TimeoutError) as exc:
        return [f"Temporal unreachable at {settings.temporal_address}: {exc}"]
    found = []
    for kind, task_queue_type in KINDS.items():
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.task_queue),
                task_queue_type=task_queue_type,
            )
        )
        ages = [
            time.time() - p.last_access_time.ToSeconds()
            for p in described.pollers
            if p.identity.endswith(f"@{host}")
        ]
        if not ages or min(ages) > POLL_MAX_AGE_SECONDS:
            found.append(
                f"no {kind} poll of {settings.task_queue} from {host} in the last "
                f"{POLL_MAX_AGE_SECONDS} s"
            )
    return found


def main() -> None:
    found = asyncio.run(problems(load_settings()))
    if found:
        print("; ".join(found), file=sys.stderr)
        raise SystemExit(1)
    print("worker polling")


if __name__ == "__main__":
    main()
