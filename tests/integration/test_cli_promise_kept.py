"""`opendom promise-kept` as ops run it: the real command in a subprocess, on a SQLite file of
projected order documents, printing the figures the API test predicts for the same history."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from ledger import orders_view
from ledger.db import make_engine, prepare_schema, transaction
from tests.integration.test_promise_kept_api import HISTORY, TODAY

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"


def _opendom(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": f"sqlite:///{database}"}
    env.pop("OPENDOM_MODE", None)
    return subprocess.run(
        [str(PYTHON if PYTHON.exists() else sys.executable), "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_promise_kept_prints_the_figures_per_channel_and_node(tmp_path: Path) -> None:
    database = tmp_path / "ledger.db"
    engine = make_engine(f"sqlite:///{database}")
    prepare_schema(engine, migrate=True)
    with transaction(engine) as tx:
        for document in HISTORY:
            orders_view.project(tx, document)
    engine.dispose()

    since = str(TODAY - timedelta(days=10))
    ran = _opendom(database, "promise-kept", "--since", since)
    by_store = _opendom(database, "promise-kept", "--since", since, "--channel", "store")

    assert ran.returncode == 0, ran.stderr
    lines = {line.split("  ")[0].strip(): line.split()[-8:] for line in ran.stdout.splitlines()[2:]}
    # due, shipped, on time, late days, overdue, delivered, on time, late days
    assert lines["all"] == ["5", "4", "75.0%", "2.0", "1", "3", "33.3%", "2.0"]
    assert lines["channel web"] == ["3", "3", "66.7%", "2.0", "0", "2", "50.0%", "3.0"]
    assert lines["node DC-A"] == ["2", "2", "50.0%", "2.0", "0", "2", "50.0%", "3.0"]
    assert lines["node ST-B"] == ["3", "2", "100.0%", "-", "1", "1", "0.0%", "1.0"]
    assert ran.stdout.splitlines()[0] == f"ship-by dates {since} to (no end)"
    assert [line.split()[0:2] for line in by_store.stdout.splitlines()[2:]] == [
        ["all", "2"],
        ["channel", "store"],
        ["node", "ST-B"],
    ]
