"""`opendom up --network examples/network --simulators`: the embedded stack on an adopter's own
network files instead of the demo. Only HTTP from here on, as a person with the admin key would:
a channel key for the example's web shop, its order, COMPLETED from one of the example's nodes.
The README's "Your own network" block runs here too, as written."""

import csv
import json
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stack.demo_data import DEMO_NODES
from tests.e2e.test_readme_tour import BashSession, problem_with, tour_steps
from tests.support.opendom_up import (
    ROOT,
    RunningUp,
    distinct_free_ports,
    environment_without_settings,
    opendom_up,
    opendom_up_exit,
)

NETWORK = ROOT / "examples" / "network"
ORDER = ROOT / "examples" / "eu-order.json"
COMPLETED_WITHIN_SECONDS = 90


def _example_node_ids() -> set[str]:
    with open(NETWORK / "nodes.csv", newline="") as rows:
        return {row["node_id"] for row in csv.DictReader(rows)}


@pytest.fixture(scope="module")
def own_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUp]:
    base = tmp_path_factory.mktemp("own-network")
    with opendom_up(base, "--network", str(NETWORK), "--simulators") as running:
        yield running


def _admin(running: RunningUp) -> httpx.Client:
    keys = json.loads((running.state_dir / "keys.json").read_text())
    return httpx.Client(
        base_url=running.api_url,
        headers={"authorization": f"Bearer {keys['admin']['key']}"},
        timeout=30,
    )


def test_only_an_admin_key_and_the_simulators_gateway_key_are_issued(
    own_network: RunningUp,
) -> None:
    keys_file = own_network.state_dir / "keys.json"
    assert set(json.loads(keys_file.read_text())) == {"admin", "simulators"}
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert "demo network seeded" not in own_network.output()
    assert "demo orders" not in own_network.output()


def test_the_network_is_the_files_and_no_demo_node_exists(own_network: RunningUp) -> None:
    with _admin(own_network) as admin:
        response = admin.get("/v1/nodes")
    assert response.status_code == 200, response.text
    nodes = {node["node_id"] for node in response.json()}
    assert nodes == _example_node_ids()
    assert not nodes & {demo.node_id for demo in DEMO_NODES}


def test_an_order_on_a_channel_key_completes_from_one_of_the_networks_nodes(
    own_network: RunningUp,
) -> None:
    with _admin(own_network) as admin:
        issued = admin.post(
            "/v1/api-clients",
            json={"name": "web shop Europe", "role": "channel", "channel": "web-eu"},
        )
    assert issued.status_code == 201, issued.text
    channel_key = issued.json()["key"]
    with httpx.Client(
        base_url=own_network.api_url,
        headers={"authorization": f"Bearer {channel_key}"},
        timeout=30,
    ) as web_eu:
        submitted = web_eu.post("/v1/orders", json=json.loads(ORDER.read_text()))
        assert submitted.status_code == 201, submitted.text
        order_id = submitted.json()["order_id"]
        deadline = time.monotonic() + COMPLETED_WITHIN_SECONDS
        while True:
            order = web_eu.get(f"/v1/orders/{order_id}").json()
            if order.get("status") == "COMPLETED":
                break
            assert time.monotonic() < deadline, (
                f"{order_id} not COMPLETED in {COMPLETED_WITHIN_SECONDS} s: {order}\n"
                f"{own_network.output()[-2000:]}"
            )
            time.sleep(0.5)
    shipped_from = {shipment["node_id"] for shipment in order["shipments"]}
    assert shipped_from, order
    assert shipped_from <= _example_node_ids()


def test_no_demo_starts_an_empty_network_with_an_admin_key_only(tmp_path: Path) -> None:
    with opendom_up(tmp_path, "--no-demo") as running, _admin(running) as admin:
        nodes = admin.get("/v1/nodes")
        keys = json.loads((running.state_dir / "keys.json").read_text())
        output = running.output()
    assert nodes.status_code == 200, nodes.text
    assert nodes.json() == []
    assert set(keys) == {"admin"}
    assert "simulators" not in output.split("OpenDOM is up", 1)[1]  # none started, none shown


def test_a_refused_network_file_stops_the_stack_naming_the_line(tmp_path: Path) -> None:
    network = tmp_path / "network"
    shutil.copytree(NETWORK, network)
    nodes = (network / "nodes.csv").read_text().splitlines()
    nodes[2] = nodes[2].replace(",warehouse,", ",warehouse-ish,", 1)
    (network / "nodes.csv").write_text("\n".join(nodes) + "\n")
    code, output = opendom_up_exit(tmp_path, "--network", str(network), "--simulators")
    assert code != 0
    assert "nodes.csv:3: node_type: unknown node type 'warehouse-ish'" in output
    assert "nothing imported" in output
    assert "OpenDOM is up" not in output


def test_the_readmes_own_network_block_runs_as_written(tmp_path: Path) -> None:
    """Its bash block, command by command in one bash (the README tour's rules: docs/testing.md),
    in a checkout of its own; `localhost:8000`/`8100` become free ports, as do Temporal's and
    its UI's, so it never meets `make run`."""
    readme = ROOT / "README.md"
    steps = tour_steps(readme.read_text(), mark="<!-- own-network -->")
    assert any("opendom up --network examples/network" in step.command for step in steps)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".state"):
            (checkout / entry.name).symlink_to(entry)
    api, simulators, temporal, ui = distinct_free_ports(4)
    settings = {
        "OPENDOM_API_URL": f"http://127.0.0.1:{api}",
        "OPENDOM_CARRIER_URL": f"http://127.0.0.1:{simulators}",
        "OPENDOM_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}",
    }
    scratch = tmp_path / "outputs"
    scratch.mkdir()
    session = BashSession(checkout, environment_without_settings() | settings, scratch)
    try:
        for step in steps:
            command = (
                step.command.replace("localhost:8000", f"localhost:{api}")
                .replace("localhost:8100", f"localhost:{simulators}")
                .replace("opendom up ", f"opendom up --ui-port {ui} ")
            )
            outcome = session.run(command)
            problem = problem_with(outcome, step.expected)
            log = checkout / ".state" / "eu" / "up.log"
            assert problem is None, (
                f"{readme.relative_to(ROOT)}:{step.line}: {problem}\n$ {step.command}\n"
                f"expected: {step.expected}\nstdout: {outcome.stdout[-2000:]}\n"
                f"stderr: {outcome.stderr[-2000:]}\nHTTP: {outcome.statuses}\n"
                f"up.log: {log.read_text()[-2000:] if log.exists() else '(none)'}"
            )
    finally:
        session.close()  # kills what is left of the block's stack with the session
