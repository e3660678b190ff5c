"""`opendom node|channel|carrier|changes` as a user runs them: the real command in a subprocess,
on a SQLite file named by DATABASE_URL."""

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"


def _opendom(
    database: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": f"sqlite:///{database}"}
    env.pop("OPENDOM_MODE", None)
    return subprocess.run(
        [str(PYTHON if PYTHON.exists() else sys.executable), "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _node(node_id: str, **fields: object) -> dict[str, object]:
    return {
        "node_id": node_id,
        "name": f"Node {node_id}",
        "node_type": "warehouse",
        "lat": 45.7,
        "lon": 4.9,
        "connector_kind": "simulator",
    } | fields


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


def test_node_put_creates_then_reports_unchanged_and_show_round_trips(
    database: Path, tmp_path: Path
) -> None:
    nodes = tmp_path / "nodes.json"
    nodes.write_text(json.dumps([_node("WH-LYON"), _node("ST-PARIS", node_type="store")]))

    first = _opendom(database, "node", "put", str(nodes))
    again = _opendom(database, "node", "put", str(nodes))
    shown = _opendom(database, "node", "show", "WH-LYON")
    put_back = _opendom(database, "node", "put", "-", stdin=shown.stdout)

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["created WH-LYON", "created ST-PARIS"]
    assert again.stdout.splitlines() == ["unchanged WH-LYON", "unchanged ST-PARIS"]
    assert json.loads(shown.stdout)["node_type"] == "warehouse"
    assert put_back.stdout.splitlines() == ["unchanged WH-LYON"], put_back.stderr
    changes = _opendom(database, "changes", "--entity", "node", "--id", "WH-LYON")
    [line] = changes.stdout.splitlines()
    assert f"cli:{getpass.getuser()}" in line and "create" in line


def test_a_file_with_bad_fields_names_each_and_applies_nothing(
    database: Path, tmp_path: Path
) -> None:
    nodes = tmp_path / "nodes.json"
    nodes.write_text(
        json.dumps([_node("WH-OK"), _node("WH-BAD", timezone="Mars/Base", cutoff_time="25:00")])
    )

    refused = _opendom(database, "node", "put", str(nodes))

    assert refused.returncode == 2
    assert refused.stdout == ""
    problems = refused.stderr.splitlines()
    assert any(p.startswith(f"{nodes}: [1] timezone: ") for p in problems), problems
    assert any(p.startswith(f"{nodes}: [1] cutoff_time: ") for p in problems), problems
    assert _opendom(database, "node", "list").stdout == ""


def test_a_single_object_names_the_field_without_an_index(database: Path, tmp_path: Path) -> None:
    node = tmp_path / "node.json"
    node.write_text(json.dumps(_node("WH-1", node_type="shop")))

    refused = _opendom(database, "node", "put", str(node))

    assert refused.returncode == 2
    assert refused.stderr.startswith(f"{node}: node_type: "), refused.stderr


def test_deactivate_takes_a_node_out_and_a_second_time_changes_nothing(
    database: Path, tmp_path: Path
) -> None:
    node = tmp_path / "node.json"
    node.write_text(json.dumps(_node("WH-1")))
    _opendom(database, "node", "put", str(node))

    first = _opendom(database, "node", "deactivate", "WH-1", "--reason", "lease ended")
    second = _opendom(database, "node", "deactivate", "WH-1", "--reason", "again")
    unknown = _opendom(database, "node", "deactivate", "WH-9", "--reason", "?")
    listed = _opendom(database, "node", "list")

    assert (first.stdout, second.stdout) == ("deactivated WH-1\n", "unchanged WH-1\n")
    assert unknown.returncode == 1 and "WH-9" in unknown.stderr
    assert "out of sourcing (deactivated)" in listed.stdout


def test_channels_and_carriers_put_and_list(database: Path, tmp_path: Path) -> None:
    (tmp_path / "node.json").write_text(json.dumps(_node("DC-1", node_type="dc")))
    channels = tmp_path / "channels.json"
    channels.write_text(
        json.dumps(
            {"channel": "b2b", "name": "B2B", "channel_type": "b2b", "pool_node_ids": ["DC-1"]}
        )
    )
    carriers = tmp_path / "carriers.json"
    carriers.write_text(
        json.dumps(
            {
                "carrier": "DPD",
                "service": "classic",
                "name": "DPD Classic",
                "transit_bands": [{"max_km": 300, "days": 1}, {"max_km": 1e9, "days": 4}],
            }
        )
    )
    unknown_pool = tmp_path / "unknown.json"
    unknown_pool.write_text(
        json.dumps({"channel": "b2c", "name": "?", "channel_type": "dtc", "pool_node_ids": ["X"]})
    )

    _opendom(database, "node", "put", str(tmp_path / "node.json"))
    channel = _opendom(database, "channel", "put", str(channels))
    refused = _opendom(database, "channel", "put", str(unknown_pool))
    carrier = _opendom(database, "carrier", "put", str(carriers))
    channel_list = _opendom(database, "channel", "list")
    carrier_list = _opendom(database, "carrier", "list")

    assert channel.stdout == "created b2b\n", channel.stderr
    assert refused.returncode == 2 and "pool_node_ids: unknown X" in refused.stderr
    assert carrier.stdout == "created DPD/classic\n", carrier.stderr
    assert "nodes DC-1" in channel_list.stdout and "b2c" not in channel_list.stdout
    assert "DPD/classic" in carrier_list.stdout and "300:1|1e+09:4" in carrier_list.stdout
