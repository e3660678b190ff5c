"""`opendom init` and `opendom keys` as a deployment runs them: subprocesses on a fresh SQLite
DATABASE_URL, the first run printing a key that authenticates, later ones issuing nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session

from ledger.db import make_engine
from security.keys import authenticate

ROOT = Path(__file__).resolve().parents[2]


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "OPENDOM_MODE": "embedded"}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip


def test_init_prints_a_working_admin_key_once_then_refuses_or_with_if_needed_succeeds(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = _cli(url, "init", "--json")
    second = _cli(url, "init")
    if_needed = _cli(url, "init", "--if-needed")
    assert first.returncode == 0, first.stderr
    issued = json.loads(first.stdout)
    assert issued["initialised"] is True and issued["role"] == "admin"
    engine = make_engine(url)
    with Session(engine) as session:
        client = authenticate(session, issued["key"])
        assert client is not None and client.role == "admin"
        assert client.created_by is not None and client.created_by.startswith("cli:")
        assert client.signing_secret == issued["signing_secret"]
    engine.dispose()

    assert second.returncode == 2
    assert "admin key exists" in second.stderr and "opendom keys create" in second.stderr
    assert if_needed.returncode == 0, if_needed.stderr
    assert issued["key"] not in if_needed.stdout + second.stdout + second.stderr
    assert issued["signing_secret"] not in if_needed.stdout


def test_keys_create_list_rotate_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    refused = _cli(url, "keys", "create", "--role", "channel", "--name", "web shop")
    created = _cli(
        url, "keys", "create", "--role", "channel", "--channel", "web", "--name", "web shop"
    )
    gateway = json.loads(
        _cli(url, "keys", "create", "--role", "node", "--name", "gw", "--json").stdout
    )
    rotated = _cli(url, "keys", "rotate", gateway["key_id"], "--json")
    listed = _cli(url, "keys", "list")

    assert refused.returncode == 2 and "channel:" in refused.stderr
    assert created.returncode == 0 and "odk_" in created.stdout
    assert rotated.returncode == 0
    assert json.loads(rotated.stdout)["signing_secret"] != gateway["signing_secret"]
    assert listed.returncode == 0
    assert "web shop" in listed.stdout and "channel" in listed.stdout and "gw" in listed.stdout
    assert "odk_" not in listed.stdout and gateway["signing_secret"] not in listed.stdout
