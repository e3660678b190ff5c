"""Replay every recorded workflow history (tests/histories/<release>/*.json) against today's
workflow code.

A history is the exact sequence of commands a workflow once produced; the Replayer runs the
current code over it and raises if the code would now issue different commands (a
non-determinism error). An order in flight during a deploy would fail the same way, so a
change that breaks one of these goes behind `workflow.patched`, it does not replace the history
(docs/versioning.md). No server needed: replay is pure, so it lives with the fast unit tests.
See tests/histories/README.md; tests/unit/test_workflow_versioning.py shows the Replayer does
catch an incompatible change.

The Replayer compares commands only: a payload field renamed (with a default) would still
replay, and the recorded value would be dropped. So every payload a history holds is also read
back with today's contracts model, refusing fields the model does not have, at every level of
nested models: the workflow input and result, each activity's input (scheduled) and result
(completed), each local activity's result (its marker; a local activity's input is not
recorded), each signal's input, and each update's input (accepted) and result (completed). The
models are the ones the SDK decodes with: the worker's activity definitions and the workflows'
run, signal and update handlers.
"""

import base64
import json
from collections import Counter
from pathlib import Path
from types import UnionType
from typing import Any, Union, cast, get_args, get_origin

import pytest
from pydantic import BaseModel, TypeAdapter
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from config import Settings
from connectors.http import JsonHttpClient
from ledger.db import make_engine
from worker import WORKFLOWS, activity_methods, activity_objects

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
# The scenarios tests/e2e/capture_histories.py records, every workflow type and order path, as
# of both releases so far. A release folder recorded later lists its own set (a new scenario is
# in no older folder).
FIRST_SCENARIOS = frozenset(
    {
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
)
# Release 2026-12 (issue 12, Patch.ORDER_AUDIT_2026_12) adds the audit's order paths.
AUDIT_SCENARIOS = FIRST_SCENARIOS | {
    "order_shipped_after_move",
    "order_cancel_too_late",
    "order_late_marked_shipped",
    "order_force_cancelled",
    "order_delivered_before_shipped",
    "order_allocation_failed_retried",
    "order_cancelled_while_carrier_down",
}
# Release 2026-12 (issues 13 and 14) adds the promise at risk, backorders that resolve
# themselves, ship-partial, ship-complete and requested dates; `housekeeping` there sweeps.
ISSUE_14_SCENARIOS = AUDIT_SCENARIOS | {
    "bid_price_refresh",
    "order_promise_at_risk",
    "order_backorder_swept",
    "order_exclusion_expired",
    "order_ship_partial",
    "order_ship_complete_split",
    "order_ship_complete_ask",
    "order_requested_date_released",
    "order_cancelled_before_release_day",
}
# Issue 14 again: a line divided between nodes (ORDER_DIVIDED_LINES_2026_12) and orders grouped
# into one parcel (ORDER_CONSOLIDATION_2026_12).
DIVIDED_AND_GROUPED_SCENARIOS = ISSUE_14_SCENARIOS | {
    "order_line_divided_partial",
    "order_line_divided_piece_rejected",
    "order_grouped_parcel_first",
    "order_grouped_parcel_second",
    "order_grouped_then_cancelled",
}
# The review's fixes: a pre-order waits from its promised date (ORDER_PREORDER_WAIT_2026_12), a
# parcel is one carrier service, a parcel's leave waits out the ledger.
PREORDER_AND_PARCEL_FIXES_SCENARIOS = DIVIDED_AND_GROUPED_SCENARIOS | {
    "order_preorder_waits_for_its_date",
    "order_grouped_fast_apart",
    "order_parcel_leave_waits_for_the_ledger",
}
# Every history committed so far, by release folder (the commit it was recorded on): the set
# may grow, never silently shrink.
REQUIRED = {
    "5768968": FIRST_SCENARIOS,  # before the refactor of workflows/activities/contracts
    "74ca4d6": FIRST_SCENARIOS,  # after it; the first release with docs/versioning.md
    "107575e": AUDIT_SCENARIOS,  # the reliability audit's fixes, behind ORDER_AUDIT_2026_12
    # The BidPriceRefresh workflow type (issue 13): the audit release's scenarios and its run.
    "dfab430": AUDIT_SCENARIOS | {"bid_price_refresh"},
    # Issues 13 and 14 (ORDER_PROMISE_2026_12, ORDER_BACKORDERS_2026_12, ORDER_PARTIAL_2026_12,
    # HOUSEKEEPING_BACKORDER_SWEEP): everything again, on the new branches, and their paths.
    "57f0df4": ISSUE_14_SCENARIOS,
    # Divided lines and parcels: everything again, on the new branches, and their paths.
    "b6a3624": DIVIDED_AND_GROUPED_SCENARIOS,
    # The review's fixes: everything again, and their paths.
    "6b34e84": PREORDER_AND_PARCEL_FIXES_SCENARIOS,
}


def history_files() -> list[Path]:
    """Every committed history, in every release folder."""
    return sorted(HISTORIES.rglob("*.json"))


def history_id(path: Path) -> str:
    return path.relative_to(HISTORIES).with_suffix("").as_posix()


def load_history(path: Path) -> WorkflowHistory:
    text = path.read_text()
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    return WorkflowHistory.from_json(started.get("workflowId", path.stem), text)


@pytest.mark.parametrize("path", history_files(), ids=history_id)
async def test_recorded_history_replays_on_current_code(path: Path) -> None:
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    await replayer.replay_workflow(load_history(path))  # raises on non-determinism


def test_no_recorded_history_went_missing() -> None:
    present = {history_id(p) for p in history_files()}
    required = {f"{release}/{name}" for release, names in REQUIRED.items() for name in names}
    missing = required - present
    assert not missing, f"tests/histories/ lost {sorted(missing)}: restore them, do not delete"


def test_every_history_sits_in_a_release_folder_and_is_required() -> None:
    """`<release>/<scenario>.json`, one level deep, and listed in REQUIRED: a history nobody
    lists could be deleted without any test noticing."""
    for path in history_files():
        release, _, scenario = history_id(path).partition("/")
        assert scenario and "/" not in scenario, f"{path}: not in tests/histories/<release>/"
        assert scenario in REQUIRED.get(release, set()), f"add {history_id(path)} to REQUIRED"


# --- every recorded payload read back with today's contracts models ---


class _Models:
    """Payload models by Temporal name, as the worker and the workflows declare them."""

    def __init__(self) -> None:
        self.workflows: dict[str, tuple[type, type]] = {}
        self.signals: dict[tuple[str, str], type] = {}
        self.updates: dict[tuple[str, str], tuple[type, type]] = {}
        for cls in WORKFLOWS:
            defn = workflow._Definition.must_from_class(cls)
            assert defn.name and defn.arg_types and defn.ret_type
            self.workflows[defn.name] = (defn.arg_types[0], defn.ret_type)
            for name, signal in defn.signals.items():
                assert name and signal.arg_types
                self.signals[(defn.name, name)] = signal.arg_types[0]
            for name, update in defn.updates.items():
                assert name and update.arg_types and update.ret_type
                self.updates[(defn.name, name)] = (update.arg_types[0], update.ret_type)
        self.activities: dict[str, tuple[type, type]] = {}
        engine = make_engine("sqlite://")
        try:
            objects = activity_objects(
                engine, cast(Client, object()), Settings(), JsonHttpClient("replay-test")
            )
            for method in activity_methods(*objects):
                defn = activity._Definition.from_callable(method)
                assert defn and defn.name and defn.arg_types and defn.ret_type
                self.activities[defn.name] = (defn.arg_types[0], defn.ret_type)
        finally:
            engine.dispose()
        for model, _ in [*self.workflows.values(), *self.activities.values()]:
            assert model.__module__.startswith("contracts."), f"{model} is not a contracts model"


_MODELS = _Models()


def _unknown_fields(annotation: Any, value: Any, where: str) -> list[str]:
    """Keys of `value` that `annotation` (a model, or a list, dict or union of them) has no field
    for, at every level."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(value, dict):
            return []
        fields = annotation.model_fields
        found = [f"{where}.{key}" for key in value if key not in fields]
        for name, field in fields.items():
            if name in value:
                found += _unknown_fields(field.annotation, value[name], f"{where}.{name}")
        return found
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple, set, frozenset) and isinstance(value, list) and args:
        return [
            d
            for i, item in enumerate(value)
            for d in _unknown_fields(args[0], item, f"{where}[{i}]")
        ]
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return [
            d for k, item in value.items() for d in _unknown_fields(args[1], item, f"{where}[{k}]")
        ]
    if origin in (Union, UnionType):
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1 and isinstance(value, dict):
            return _unknown_fields(models[0], value, where)
    return []


def _decoded(payloads: dict[str, Any] | None) -> list[Any]:
    found = []
    for payload in (payloads or {}).get("payloads", []):
        encoding = base64.b64decode(payload["metadata"]["encoding"]).decode()
        assert encoding == "json/plain", f"unexpected payload encoding {encoding}"
        found.append(json.loads(base64.b64decode(payload.get("data", ""))))
    return found


def _check(model: type, payloads: dict[str, Any] | None, where: str) -> list[str]:
    values = _decoded(payloads)
    assert len(values) == 1, f"{where}: {len(values)} payloads, expected one"
    TypeAdapter(model).validate_json(json.dumps(values[0]))
    unknown = _unknown_fields(model, values[0], getattr(model, "__name__", str(model)))
    return [f"{where}: unknown field {field}" for field in unknown]


def _checked_payloads(path: Path) -> tuple[Counter[str], list[str]]:
    """What was checked, by kind, and every unknown field found."""
    events = json.loads(path.read_text())["events"]
    kinds: Counter[str] = Counter()
    problems: list[str] = []
    workflow_type = events[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
    run_input, run_result = _MODELS.workflows[workflow_type]
    scheduled: dict[str, str] = {}  # event id -> activity type
    updates: dict[str, str] = {}  # update id -> update name

    def check(kind: str, model: type, payloads: dict[str, Any] | None, event: dict) -> None:
        kinds[kind] += 1
        problems.extend(_check(model, payloads, f"event {event['eventId']} {kind}"))

    for event in events:
        kind = event["eventType"].removeprefix("EVENT_TYPE_")
        if kind == "WORKFLOW_EXECUTION_STARTED":
            attrs = event["workflowExecutionStartedEventAttributes"]
            check("workflow input", run_input, attrs.get("input"), event)
        elif kind == "WORKFLOW_EXECUTION_COMPLETED":
            attrs = event["workflowExecutionCompletedEventAttributes"]
            check("workflow result", run_result, attrs.get("result"), event)
        elif kind == "ACTIVITY_TASK_SCHEDULED":
            attrs = event["activityTaskScheduledEventAttributes"]
            name = attrs["activityType"]["name"]
            scheduled[event["eventId"]] = name
            check("activity input", _MODELS.activities[name][0], attrs.get("input"), event)
        elif kind == "ACTIVITY_TASK_COMPLETED":
            attrs = event["activityTaskCompletedEventAttributes"]
            name = scheduled[attrs["scheduledEventId"]]
            check("activity result", _MODELS.activities[name][1], attrs.get("result"), event)
        elif kind == "MARKER_RECORDED":
            attrs = event["markerRecordedEventAttributes"]
            if attrs["markerName"] != "core_local_activity" or "result" not in attrs["details"]:
                continue  # a failed local activity records a failure, no result
            [marker] = _decoded(attrs["details"]["data"])
            name = marker["activity_type"]
            check(
                "local activity result",
                _MODELS.activities[name][1],
                attrs["details"]["result"],
                event,
            )
        elif kind == "WORKFLOW_EXECUTION_SIGNALED":
            attrs = event["workflowExecutionSignaledEventAttributes"]
            model = _MODELS.signals[(workflow_type, attrs["signalName"])]
            check("signal input", model, attrs.get("input"), event)
        elif kind == "WORKFLOW_EXECUTION_UPDATE_ACCEPTED":
            request = event["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]
            name = request["input"]["name"]
            updates[request["meta"]["updateId"]] = name
            model = _MODELS.updates[(workflow_type, name)][0]
            check("update input", model, request["input"].get("args"), event)
        elif kind == "WORKFLOW_EXECUTION_UPDATE_COMPLETED":
            attrs = event["workflowExecutionUpdateCompletedEventAttributes"]
            if "success" not in attrs["outcome"]:
                continue  # a refused update records a failure, no result
            name = updates[attrs["meta"]["updateId"]]
            model = _MODELS.updates[(workflow_type, name)][1]
            check("update result", model, attrs["outcome"]["success"], event)
    return kinds, problems


@pytest.mark.parametrize("path", history_files(), ids=history_id)
def test_recorded_payloads_read_back_with_todays_contracts(path: Path) -> None:
    kinds, problems = _checked_payloads(path)
    assert kinds["workflow input"] == 1 and kinds["workflow result"] == 1
    assert not problems, (
        "a recorded payload has fields today's contracts model does not (renamed or removed: "
        "see tests/histories/README.md):\n" + "\n".join(problems)
    )


def test_every_kind_of_recorded_payload_is_checked() -> None:
    """The histories hold every kind of payload, so none of the branches above checks nothing."""
    total: Counter[str] = Counter()
    for path in history_files():
        total += _checked_payloads(path)[0]
    assert set(total) == {
        "workflow input",
        "workflow result",
        "activity input",
        "activity result",
        "local activity result",
        "signal input",
        "update input",
        "update result",
    }
