"""Replay every recorded workflow history (tests/histories/*.json) against today's workflow code.

A history is the exact sequence of commands a workflow once produced; the Replayer runs the
current code over it and raises if the code would now issue different commands (a
non-determinism error). An order in flight during a deploy would fail the same way, so a
change that breaks one of these goes behind `workflow.patched`, it does not replace the history.
No server needed: replay is pure, so it lives with the fast unit tests. See tests/histories/README.md.
"""

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.housekeeping import InventoryHousekeepingWorkflow
from workflows.order import OrderWorkflow
from workflows.outage import NodeOutageWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
# Every scenario recorded so far: the set may grow, never silently shrink.
REQUIRED = {
    "order_completed_home",
    "order_split_delivered_in_flight",
    "order_click_and_collect",
    "order_cancelled",
    "order_rejected_reallocated",
    "order_sla_timed_out",
    "order_backordered_retried",
    "order_label_refused_cancelled",
    "order_support_reallocate",
    "order_with_checkout_hold",
    "order_moved_by_outage",
    "node_outage",
    "housekeeping",
}


def _history_files() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def _load(path: Path) -> WorkflowHistory:
    text = path.read_text()
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    return WorkflowHistory.from_json(started.get("workflowId", path.stem), text)


@pytest.mark.parametrize("path", _history_files(), ids=lambda p: p.stem)
async def test_recorded_history_replays_on_current_code(path: Path) -> None:
    replayer = Replayer(
        workflows=[OrderWorkflow, NodeOutageWorkflow, InventoryHousekeepingWorkflow],
        data_converter=pydantic_data_converter,
    )
    await replayer.replay_workflow(_load(path))  # raises on non-determinism


def test_no_recorded_history_went_missing() -> None:
    present = {p.stem for p in _history_files()}
    missing = REQUIRED - present
    assert not missing, f"tests/histories/ lost {sorted(missing)}: restore them, do not delete"
