"""The production template (Dockerfile, docker-compose.yml, .dockerignore) holds what a deployment
needs, checked without a Docker engine: the Dockerfile's COPY set builds a package that imports
and finds its migrations, and compose runs the migration and bootstrap jobs first, keeps the
simulators and demo data out, and publishes nothing beyond this host."""

import fnmatch
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import search_attributes as sa

ROOT = Path(__file__).resolve().parents[2]
JOBS = {"migrate", "bootstrap", "temporal-search-attributes"}  # run once, then exit


def _copied_sources() -> list[str]:
    """The build context paths the Dockerfile copies (COPY --from copies between stages)."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not parts[1].startswith("--from"):
            sources += parts[1:-1]
    return sources


def _packaged_roots() -> set[str]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {p.split(".")[0] for p in setuptools["packages"]} | {
        f"{m}.py" for m in setuptools.get("py-modules", [])
    }


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _service(name: str) -> dict[str, Any]:
    return _compose()["services"][name]


def _build(context: Path, out: Path) -> Path:
    """The package tree a wheel of `context` holds, built offline with the venv's own tools:
    `pip wheel --no-build-isolation` where the setuptools there builds wheels (70.1+, or with
    `wheel`), else setuptools' build_py, which puts the same packages and package data in place."""
    can_wheel = importlib.util.find_spec("wheel") is not None or _setuptools_at_least(70, 1)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if can_wheel:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "--wheel-dir", str(out / "wheels"), str(context)],
            check=True, capture_output=True, env=env, timeout=300,
        )  # fmt: skip
        (wheel,) = (out / "wheels").glob("opendom-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(out / "tree")
    else:
        subprocess.run(
            [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
             "--build-lib", str(out / "tree")],
            check=True, capture_output=True, env=env, cwd=context, timeout=300,
        )  # fmt: skip
    return out / "tree"


def _setuptools_at_least(major: int, minor: int) -> bool:
    import setuptools

    found = tuple(int(p) for p in re.findall(r"\d+", setuptools.__version__)[:2])
    return found >= (major, minor)


def test_the_dockerfile_copies_exactly_the_packages_pyproject_lists() -> None:
    copied = {source.rstrip("/") for source in _copied_sources()}
    assert copied - {"pyproject.toml"} == _packaged_roots()
    assert "pyproject.toml" in copied


def test_the_dockerignore_keeps_out_nothing_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in _copied_sources():
        for pattern in patterns:
            assert not fnmatch.fnmatch(source.rstrip("/"), pattern), (source, pattern)
    assert {".env", ".state", ".venv", ".git"} <= set(patterns)  # secrets and local state


def test_what_the_dockerfile_copies_builds_a_package_that_imports_and_migrates(
    tmp_path: Path,
) -> None:
    context = tmp_path / "context"
    context.mkdir()
    for source in _copied_sources():
        path = ROOT / source
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        if path.is_dir():
            shutil.copytree(path, context / source, ignore=ignore)
        else:
            shutil.copy2(path, context / source)
    tree = _build(context, tmp_path / "out")

    roots = sorted(r.removesuffix(".py") for r in _packaged_roots())
    check = (
        "import importlib, sys\n"
        f"tree = {str(tree)!r}\n"
        f"for name in {roots!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    assert module.__file__.startswith(tree), (name, module.__file__)\n"
        "from ledger import migrations\n"
        "assert (migrations.HERE / 'script.py.mako').exists()\n"
        "print(migrations.head())\n"
    )
    # Run away from the work tree, with the built tree first on the path: only what was built
    # can be imported as the project's packages.
    result = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tree)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    from ledger import migrations

    assert result.stdout.strip() == migrations.head()


def test_a_migration_job_runs_before_the_api_and_the_workers() -> None:
    assert _service("migrate")["command"] == ["opendom", "db", "upgrade"]
    for name in ("api", "worker", "bootstrap"):
        assert _service(name)["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }, name


def test_the_bootstrap_job_issues_the_first_admin_key_and_tolerates_a_rerun() -> None:
    assert _service("bootstrap")["command"] == ["opendom", "init", "--if-needed"]
    assert _service("bootstrap")["restart"] == "no"


def test_every_opendom_process_runs_in_production_mode() -> None:
    for name, service in _compose()["services"].items():
        if "opendom" in str(service.get("image", "")):
            assert service["environment"]["OPENDOM_MODE"] == "production", name


def test_no_demo_data_and_no_simulators_unless_their_profile_is_asked_for() -> None:
    for name, service in _compose()["services"].items():
        command = " ".join(map(str, service.get("command") or []))
        assert not re.search(r"\b(seed|demo|up)\b", command), (name, command)
        if "simulators" in command:
            assert service.get("profiles") == ["simulators"], name


def test_long_running_services_restart_and_jobs_do_not() -> None:
    for name, service in _compose()["services"].items():
        if name in JOBS:
            assert service["restart"] == "no", name
        else:
            assert service.get("restart") in ("always", "unless-stopped", "on-failure"), name


def test_healthchecks_ask_the_real_endpoints() -> None:
    from api.app import create_app

    paths = set(create_app().openapi()["paths"])
    assert {"/healthz", "/readyz"} <= paths
    api = " ".join(_service("api")["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/readyz" in api
    worker = _service("worker")["healthcheck"]["test"]
    assert worker[-2:] == ["-m", "cli.worker_health"]
    assert importlib.util.find_spec("cli.worker_health") is not None
    for name in ("temporal", "temporal-db", "ledger-db"):
        assert _service(name)["healthcheck"]["test"], name


def test_published_ports_are_bound_to_this_host_only() -> None:
    published = {name: service.get("ports", []) for name, service in _compose()["services"].items()}
    assert published["temporal"] == ["127.0.0.1:7233:7233"]
    assert published["temporal-ui"] == ["127.0.0.1:8233:8080"]
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_the_search_attribute_job_registers_the_workflows_attributes() -> None:
    script = _service("temporal-search-attributes")["command"][0]
    registered = set(
        re.findall(
            r"\b([A-Z][A-Za-z]+=(?:Keyword|KeywordList|Int|Text|Double|Bool|Datetime))\b", script
        )
    )
    flags = sa.server_flags()
    expected = {flags[i + 1] for i in range(0, len(flags), 2)}
    assert registered == expected
    assert {key.name for key in sa.ALL} == {pair.split("=")[0] for pair in registered}


def test_no_password_is_written_into_the_template() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text
    settings = list(re.finditer(r"^\s*\w*(?:PASSWORD|PWD)\w*:\s*(\S+)", text, re.MULTILINE))
    assert len(settings) >= 3  # both databases' passwords, and Temporal's copy of its own
    for match in settings:
        assert match.group(1).startswith("${") and ":?" in match.group(1), match.group(0)
    assert re.search(r"postgresql://opendom:\$\{LEDGER_DB_PASSWORD:\?", text)


@pytest.mark.parametrize("doc", ["docs/deploy.md"])
def test_the_deploy_guide_names_the_commands_the_template_runs(doc: str) -> None:
    text = (ROOT / doc).read_text()
    for command in ("docker compose up -d", "opendom db upgrade", "opendom init",
                    "opendom keys create", "opendom network import", "docker compose logs bootstrap"):  # fmt: skip
        assert command in text, command
