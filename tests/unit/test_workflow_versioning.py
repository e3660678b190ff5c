"""The versioning rule (docs/versioning.md) holds only if the replay test would catch a change
that breaks running workflows. So: variants of today's OrderWorkflow, registered under its name,
each making one change of the kind the rule says needs a patch, replayed over the committed
happy-path histories of every release folder.

- unpatched, the change is refused with a non-determinism error (the test asserts the error,
  so it fails if the Replayer stopped detecting the change);
- behind `workflow.patched`, the same change replays the old histories cleanly: they hold no
  marker, so the old branch runs;
- with `workflow.deprecate_patch` (the new branch only), the old histories fail again: why a
  patch is deprecated only once every workflow started before it has closed.

tests/e2e/test_workflow_patch_marker.py records a run that takes the new branch and replays it.
Also: every workflow type the worker registers, and every scenario the capture script records,
has a committed history; patch ids come from contracts/patches.py only. No server: replay is
pure.
"""

import ast
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from contracts.names import WorkflowName
from contracts.order import OrderWorkflowInput, OrderWorkflowResult
from contracts.patches import RETIRED, Patch
from domain.orders import Shipment
from domain.sla import NodeSla
from tests.unit.test_workflow_histories_replay import HISTORIES, history_files, load_history
from worker import WORKFLOWS
from workflows.order import OrderWorkflow

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_CODE = ROOT / "workflows"
CAPTURE = ROOT / "tests" / "e2e" / "capture_histories.py"
# The variants are test code, so their patch id is the test's own; product code takes its ids
# from contracts.patches.Patch (test_workflow_code_names_patches_by_contracts_member).
PROOF_PATCH = "order-proof-extra-step"
# An activity the change would add. Replay never runs an activity (the history holds its
# result), so no worker needs to register it.
NEW_ACTIVITY = "verify_address"
HAPPY_PATHS = sorted(HISTORIES.glob("*/order_completed_home.json"))

# ---- the changes, each an extra command on a path every order history takes, and how each is
# shipped: unpatched, behind `patched`, or with the patch deprecated (new branch only)


async def _extra_timer() -> None:
    await workflow.sleep(timedelta(seconds=1))


async def _extra_activity() -> None:
    await workflow.execute_activity(
        NEW_ACTIVITY, "address", start_to_close_timeout=timedelta(seconds=30)
    )


async def _shipped(shipping: str, change: Callable[[], Awaitable[None]]) -> None:
    if shipping == "unpatched":
        await change()
    elif shipping == "patched":
        if workflow.patched(PROOF_PATCH):
            await change()
    else:
        workflow.deprecate_patch(PROOF_PATCH)
        await change()


class _TimerAtStart(OrderWorkflow):
    shipping = ""

    async def _run_changed(self, input: OrderWorkflowInput) -> OrderWorkflowResult:
        await _shipped(self.shipping, _extra_timer)
        return await super().run(input)


class _ActivityBeforeRelease(OrderWorkflow):
    shipping = ""

    async def _release_to_node(self, shipment: Shipment, sla: NodeSla) -> None:
        await _shipped(self.shipping, _extra_activity)
        await super()._release_to_node(shipment, sla)


# Registered under OrderWorkflow's name, as a deploy of the change would be. Unsandboxed: the
# sandbox would re-import this test module as workflow code; the determinism check is the SDK
# core's either way. (Temporal wants each `@workflow.run` on a module-level class, hence six.)
_VARIANT = workflow.defn(name=WorkflowName.ORDER, sandboxed=False)


@_VARIANT
class TimerAtStartUnpatched(_TimerAtStart):
    shipping = "unpatched"

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderWorkflowResult:
        return await self._run_changed(input)


@_VARIANT
class TimerAtStartPatched(_TimerAtStart):
    shipping = "patched"

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderWorkflowResult:
        return await self._run_changed(input)


@_VARIANT
class TimerAtStartDeprecated(_TimerAtStart):
    shipping = "deprecated"

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderWorkflowResult:
        return await self._run_changed(input)


@_VARIANT
class ActivityBeforeReleaseUnpatched(_ActivityBeforeRelease):
    shipping = "unpatched"

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderWorkflowResult:
        return await super().run(input)


@_VARIANT
class ActivityBeforeReleasePatched(_ActivityBeforeRelease):
    shipping = "patched"

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderWorkflowResult:
        return await super().run(input)


@_VARIANT
class ActivityBeforeReleaseDeprecated(_ActivityBeforeRelease):
    shipping = "deprecated"

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderWorkflowResult:
        return await super().run(input)


CHANGES: dict[str, dict[str, type[OrderWorkflow]]] = {
    "timer_at_start": {
        "unpatched": TimerAtStartUnpatched,
        "patched": TimerAtStartPatched,
        "deprecated": TimerAtStartDeprecated,
    },
    "activity_before_release": {
        "unpatched": ActivityBeforeReleaseUnpatched,
        "patched": ActivityBeforeReleasePatched,
        "deprecated": ActivityBeforeReleaseDeprecated,
    },
}


async def _replay_failure(cls: type, path: Path) -> Exception | None:
    replayer = Replayer(
        workflows=[cls],
        data_converter=pydantic_data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    result = await replayer.replay_workflow(load_history(path), raise_on_replay_failure=False)
    return result.replay_failure


def test_every_release_has_a_happy_path_history() -> None:
    releases = {p.parent.name for p in history_files()}
    assert releases and {p.parent.name for p in HAPPY_PATHS} == releases


@pytest.mark.parametrize("path", HAPPY_PATHS, ids=lambda p: p.parent.name)
async def test_unchanged_workflow_replays_the_happy_path(path: Path) -> None:
    """The baseline the other tests compare with: a failure below is the change's."""
    assert await _replay_failure(OrderWorkflow, path) is None


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("path", HAPPY_PATHS, ids=lambda p: p.parent.name)
async def test_unpatched_extra_command_is_a_nondeterminism_error(path: Path, change: str) -> None:
    failure = await _replay_failure(CHANGES[change]["unpatched"], path)
    assert isinstance(failure, NondeterminismError), failure
    assert "[TMPRL1100] Nondeterminism error" in str(failure)


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("path", HAPPY_PATHS, ids=lambda p: p.parent.name)
async def test_patched_extra_command_replays_histories_without_the_marker(
    path: Path, change: str
) -> None:
    assert await _replay_failure(CHANGES[change]["patched"], path) is None


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("path", HAPPY_PATHS, ids=lambda p: p.parent.name)
async def test_deprecated_patch_breaks_histories_started_before_the_patch(
    path: Path, change: str
) -> None:
    failure = await _replay_failure(CHANGES[change]["deprecated"], path)
    assert isinstance(failure, NondeterminismError), failure
    assert "[TMPRL1100] Nondeterminism error" in str(failure)


# ---- every workflow type has a history; patch ids are contracts members


def _workflow_type(path: Path) -> str:
    started = load_history(path).events[0].workflow_execution_started_event_attributes
    return started.workflow_type.name


def test_every_registered_workflow_type_has_a_committed_history() -> None:
    """A new workflow type cannot ship without a recording to replay (docs/versioning.md)."""
    recorded = {_workflow_type(p) for p in history_files()}
    registered = {workflow._Definition.must_from_class(w).name for w in WORKFLOWS}
    missing = registered - recorded
    assert not missing, f"record a history of {sorted(missing)} (tests/histories/README.md)"


def _captured_scenarios() -> set[str]:
    """The names capture_histories.py exports: `_export(stack, "<scenario>", ...)`."""
    return {
        node.args[1].value
        for node in ast.walk(ast.parse(CAPTURE.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_export"
        and isinstance(node.args[1], ast.Constant)
    }


def test_some_release_holds_every_scenario_the_capture_script_records() -> None:
    """A scenario added to the script is recorded and committed, not only written."""
    scenarios = _captured_scenarios()
    assert len(scenarios) >= 13, scenarios
    by_release: dict[str, set[str]] = {}
    for path in history_files():
        by_release.setdefault(path.parent.name, set()).add(path.stem)
    complete = [release for release, held in by_release.items() if scenarios <= held]
    assert complete, f"no release folder holds all of {sorted(scenarios)}: record them"


_PATCH_CALLS = {"patched", "deprecate_patch"}


def _patch_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _PATCH_CALLS
    ]


def _workflow_modules() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text()) for p in sorted(WORKFLOW_CODE.glob("*.py"))}


def test_workflow_code_names_patches_by_contracts_member() -> None:
    """`workflow.patched(Patch.X)`, never a string: the id is in histories for good."""
    wrong = []
    for path, tree in _workflow_modules().items():
        for call in _patch_calls(tree):
            arg = call.args[0] if call.args else None
            named = (
                isinstance(arg, ast.Attribute)
                and isinstance(arg.value, ast.Name)
                and arg.value.id == "Patch"
                and arg.attr in Patch.__members__
            )
            if not named:
                wrong.append(f"{path.name}:{call.lineno}: {ast.unparse(call)}")
    assert not wrong, "patch ids come from contracts.patches.Patch:\n" + "\n".join(wrong)


def test_every_patch_id_is_used_well_formed_and_never_retired() -> None:
    used = {
        call.args[0].attr
        for tree in _workflow_modules().values()
        for call in _patch_calls(tree)
        if call.args and isinstance(call.args[0], ast.Attribute)
    }
    for patch in Patch:
        assert patch.name in used, f"{patch.name}: no workflow calls it; retire it (RETIRED)"
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)+", patch.value), f"{patch.value}: kebab case"
        assert patch.value not in RETIRED, f"{patch.value} was retired: pick a new id"
    assert len({p.value for p in Patch}) == len(Patch)


def test_patch_call_finder_sees_a_patched_call() -> None:
    """The two tests above read workflow code for these calls; with no patch in it yet, this
    keeps them from passing because the finder sees nothing."""
    tree = ast.parse("if workflow.patched(Patch.X):\n    workflow.deprecate_patch('y')\n")
    assert [ast.unparse(c.args[0]) for c in _patch_calls(tree)] == ["Patch.X", "'y'"]
