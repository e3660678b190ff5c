"""What the worker registers is exactly what contracts/names.py names: a workflow calls an
activity, and the API a workflow, signal, update or query, by those enums, so a name missing on
the worker's side would only show as a task that never runs. No server: the definitions are
read from temporalio's decorators."""

from typing import cast

from temporalio import activity, workflow
from temporalio.client import Client

from config import Settings
from connectors.http import JsonHttpClient
from contracts.names import ActivityName, OrderQuery, OrderSignal, OrderUpdate, WorkflowName
from ledger.db import make_engine
from worker import WORKFLOWS, activity_methods, activity_objects
from workflows.order import OrderWorkflow


def _registered_activity_names() -> list[str]:
    engine = make_engine("sqlite://")
    try:
        # Building the activity objects connects to nothing: the client is only stored.
        objects = activity_objects(
            engine, cast(Client, object()), Settings(), JsonHttpClient("names-test")
        )
        names = []
        for method in activity_methods(*objects):
            definition = activity._Definition.from_callable(method)
            assert definition is not None and definition.name is not None
            names.append(definition.name)
        return names
    finally:
        engine.dispose()


def test_worker_registers_every_activity_name_once() -> None:
    names = _registered_activity_names()
    assert len(names) == len(set(names)), f"an activity name registered twice: {sorted(names)}"
    assert set(names) == set(ActivityName)


def test_worker_registers_every_workflow_name() -> None:
    names = [workflow._Definition.must_from_class(w).name for w in WORKFLOWS]
    assert len(names) == len(set(names))
    assert set(names) == set(WorkflowName)


def test_order_workflow_handlers_are_the_contract_names() -> None:
    definition = workflow._Definition.must_from_class(OrderWorkflow)
    assert set(definition.signals) == set(OrderSignal)
    assert set(definition.updates) == set(OrderUpdate)
    assert set(definition.queries) == set(OrderQuery)
