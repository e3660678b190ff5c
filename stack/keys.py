"""API keys for the embedded stack: issued once, kept in the state folder (mode 0600) so a
restart reuses them, and handed to the simulators and the demo through the environment."""

import json
import os
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from config.settings import Mode, load_settings
from ledger.db import transaction
from security.keys import authenticate
from security.roles import Role
from services import api_clients

ACTOR = "cli:opendom-up"  # the audit trail's name for the embedded stack's own keys

DEMO_KEYS = {
    "admin": (Role.ADMIN, None),
    "ops": (Role.OPS, None),
    "support": (Role.SUPPORT, None),
    "web": (Role.CHANNEL, "web"),
    "simulators": (Role.NODE, None),
}


def keys_file(state_dir: Path) -> Path:
    return state_dir / "keys.json"


class DemoKeysInProduction(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "OPENDOM_MODE=production: no demo key is ever issued; create the first admin key "
            "with `opendom init` and others with `opendom keys create`"
        )


def ensure_demo_keys(engine: Engine, state_dir: Path) -> dict[str, dict[str, str | None]]:
    """The demo keys of `opendom up` (and the harnesses built on it), issued and audited as
    `cli:opendom-up` like any other key. Refused in production mode."""
    if load_settings().mode == Mode.PRODUCTION:
        raise DemoKeysInProduction()
    path = keys_file(state_dir)
    if path.exists():
        keys = json.loads(path.read_text())
        with Session(engine) as session:
            if all(authenticate(session, k["key"] or "") for k in keys.values()):
                return keys
    keys = {}
    with transaction(engine) as session:
        for name, (role, channel) in DEMO_KEYS.items():
            issued = api_clients.issue(session, f"demo {name}", role, channel=channel, actor=ACTOR)
            keys[name] = {"key": issued.key, "signing_secret": issued.signing_secret}
    path.write_text(json.dumps(keys, indent=2))
    os.chmod(path, 0o600)
    return keys


def api_key_from_environment(state_dir: Path = Path(".state")) -> str | None:
    """OPENDOM_API_KEY, else the admin key of the embedded stack."""
    if os.environ.get("OPENDOM_API_KEY"):
        return os.environ["OPENDOM_API_KEY"]
    path = keys_file(state_dir)
    return json.loads(path.read_text())["admin"]["key"] if path.exists() else None
