"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis): whatever it
generates, the API answers without a 5xx."""

import asyncio
import re
import shutil
import sys
from pathlib import Path

import pytest

CASES_PER_OPERATION = 60  # x ~20 operations and both modes: well over 1,000 cases per run


async def test_generated_requests_never_get_a_server_error(stack) -> None:
    cli = Path(sys.executable).parent / "schemathesis"
    if not cli.exists() and shutil.which("schemathesis") is None:
        pytest.fail("schemathesis is a dev dependency: install the project with '.[dev]'")
    process = await asyncio.create_subprocess_exec(
        str(cli),
        "run",
        f"{stack.api_url}/openapi.json",
        "--checks", "not_a_server_error",
        "--max-examples", str(CASES_PER_OPERATION),
        "--seed", "20261125",
        "--request-timeout", "30",
        "--generation-database", "none",
        "--header", f"Authorization: Bearer {stack.admin.key}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    report = output.decode(errors="replace")
    print(report[-3000:])
    assert process.returncode == 0, report[-6000:]
    generated = sum(int(n) for n in re.findall(r"(\d+) generated", report))
    assert generated >= 1000, f"only {generated} cases generated"
