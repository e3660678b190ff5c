"""The README's tour, run as written against the stack `make run` starts, so it cannot go stale.

Every ```bash block after a `<!-- tour -->` line of README.md, then of docs/tour.md (the longer
walk-throughs the README points to), runs here, command by command and in order, in one bash
session, against `python -m cli up` on free ports and a state folder of
its own (so it never meets a running `make run` or another test). The session's working folder
shows the repository with that state folder as `.state/`; `localhost:8000` and `localhost:8100`
in a command become the test's ports. Each command runs once, as a person pasting the block runs
it: nothing is retried, so a command whose answer comes from a later state (an order that has
moved on) must follow a README line that waits for that state (its `wait_for`), never a bare
`sleep`. A command must exit 0 and each of its HTTP calls must answer below 400, unless the `# → `
line under it says otherwise (docs/testing.md):

- leading status codes: what every HTTP call of the command must answer;
- each `"key": value` pair: must appear in the output, spacing aside;
- otherwise the text (pieces separated by `…`): must appear in the output, spacing aside.

A call whose stderr the command throws away (`2>/dev/null`, as a README poll loop does while the
order is not visible yet) reports no status, so only the loop's own outcome counts.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stack.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LONGER_TOUR = ROOT / "docs" / "tour.md"
TOUR_MARK = "<!-- tour -->"
EXPECT = "# →"
README_PORTS = {"api": 8000, "simulators": 8100}
STACK_UP_SECONDS = 120
COMMAND_SECONDS = 120
CODE_MARK = "@@tour-http-status="  # curl writes each call's status to stderr behind this
BARE_SLEEP = re.compile(r"sleep\s+[\d.]+\w?")  # a step that only waits for time to pass
PAIR = re.compile(r'"[^"]+":\s*(?:"[^"]*"|-?\d+(?:\.\d+)?|true|false|null|\[[^\]]*\])')


@dataclass
class Step:
    line: int  # in its file, for the failure message
    command: str
    expected: str | None = None
    source: str = "README.md"


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    statuses: list[int]


def tour_steps(readme: str, mark: str = TOUR_MARK, source: str = "README.md") -> list[Step]:
    """The commands of the ```bash blocks that follow a `mark` line, in order."""
    lines = readme.splitlines()
    steps: list[Step] = []
    for number, line in enumerate(lines):
        if line.strip() != mark:
            continue
        fence = next(i for i in range(number + 1, len(lines)) if lines[i].strip())
        assert lines[fence].strip() == "```bash", f"{source}:{fence + 1}: {mark} needs ```bash"
        end = next(i for i in range(fence + 1, len(lines)) if lines[i].strip() == "```")
        steps += _steps_of(lines[fence + 1 : end], first_line=fence + 2, source=source)
    return steps


def whole_tour() -> list[Step]:
    """The README's tour, then the longer one's, which goes on in the same session."""
    return tour_steps(README.read_text()) + tour_steps(
        LONGER_TOUR.read_text(), source="docs/tour.md"
    )


def _steps_of(block: list[str], first_line: int, source: str) -> list[Step]:
    steps: list[Step] = []
    pending: list[str] = []
    for offset, line in enumerate(block):
        if not pending and line.lstrip().startswith(EXPECT):
            assert steps and steps[-1].expected is None, f"{source}:{first_line + offset}"
            steps[-1].expected = line.lstrip()[len(EXPECT) :].strip()
            continue
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue  # a comment for the reader
        pending.append(line)
        text = "\n".join(pending)
        if not text.endswith("\\") and _is_complete(text):
            steps.append(Step(first_line + offset - len(pending) + 1, text, source=source))
            pending = []
    assert not pending, f"{source}:{first_line}: unfinished command {pending}"
    return steps


def _is_complete(command: str) -> bool:
    """Whether bash can parse the lines so far (a quoted JSON body spans several)."""
    return (
        subprocess.run(["bash", "-n"], input=command, text=True, capture_output=True).returncode
        == 0
    )


def problem_with(outcome: Outcome, expected: str | None) -> str | None:
    """What is wrong with the outcome, or None when it is what the README says."""
    if outcome.exit_code != 0:
        return f"exit code {outcome.exit_code}"
    text = expected or ""
    codes = re.match(r"((?:\d{3}\s+)*\d{3})(?:\s|$)", text)
    wanted = {int(c) for c in codes.group(1).split()} if codes else None
    if wanted and not outcome.statuses:
        return f"expected HTTP {sorted(wanted)}, made no HTTP call"
    for status in outcome.statuses:
        if (status not in wanted) if wanted else not 100 <= status < 400:
            return f"HTTP {status}" + (f", expected {sorted(wanted)}" if wanted else "")
    rest = text[codes.end() :] if codes else text
    pieces = PAIR.findall(rest) or rest.split("…")
    output = _squash(outcome.stdout)
    for piece in pieces:
        piece = piece.strip(" ,")
        if re.search(r"[\w]", piece) and _squash(piece) not in output:
            return f"output lacks {piece!r}"
    return None


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


class BashSession:
    """One bash, fed one command at a time, so variables and functions carry over as they do in
    a terminal; each command's output goes to files the test reads."""

    def __init__(self, cwd: Path, env: dict[str, str], scratch: Path) -> None:
        self.scratch = scratch
        self.count = 0
        self.bash = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            text=True,
            start_new_session=True,
        )
        # Every curl, also one inside a README function, reports its status code on stderr.
        self._send(
            "set -o pipefail\n"
            f"curl() {{ command curl -w '%{{stderr}}{CODE_MARK}%{{http_code}}\\n' \"$@\"; }}\n"
        )

    def _send(self, text: str) -> None:
        assert self.bash.stdin is not None
        self.bash.stdin.write(text)
        self.bash.stdin.flush()

    def run(self, command: str) -> Outcome:
        self.count += 1
        out, err, rc = (self.scratch / f"{self.count}.{kind}" for kind in ("out", "err", "rc"))
        self._send(
            f"{{\n{command}\n}} >{out} 2>{err} </dev/null; echo $? >{rc}.part; mv {rc}.part {rc}\n"
        )
        deadline = time.monotonic() + COMMAND_SECONDS
        while not rc.exists():
            assert self.bash.poll() is None, f"bash exited while running:\n{command}"
            assert time.monotonic() < deadline, (
                f"still running after {COMMAND_SECONDS} s:\n{command}"
            )
            time.sleep(0.05)
        stderr = err.read_text()
        return Outcome(
            exit_code=int(rc.read_text()),
            stdout=out.read_text(),
            stderr=re.sub(rf"{CODE_MARK}\d+\n?", "", stderr),
            statuses=[int(code) for code in re.findall(rf"{CODE_MARK}(\d+)", stderr)],
        )

    def close(self) -> None:
        if self.bash.poll() is None:
            os.killpg(self.bash.pid, signal.SIGKILL)
        self.bash.wait()


@dataclass
class TourStack:
    state_dir: Path
    env: dict[str, str]  # the settings every process of the stack reads
    ports: dict[str, int]


def _environment_without_settings() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPENDOM_") and k not in ("DATABASE_URL", "PYTHONPATH")
    }


def _distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


@pytest.fixture(scope="module")
def tour_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TourStack]:
    """`make run`'s `python -m cli up`, demo orders included, on ports of its own."""
    base = tmp_path_factory.mktemp("readme-tour")
    state_dir = base / "state"
    api, simulators, temporal, ui = _distinct_free_ports(4)
    settings = {
        "OPENDOM_API_URL": f"http://127.0.0.1:{api}",
        "OPENDOM_CARRIER_URL": f"http://127.0.0.1:{simulators}",
        "OPENDOM_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}",
        "DATABASE_URL": f"sqlite:///{state_dir}/opendom.db",
    }
    log_path = base / "up.log"
    with open(log_path, "wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "cli", "up", "--state-dir", str(state_dir),
             "--ui-port", str(ui)],
            cwd=ROOT, env=_environment_without_settings() | settings,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STACK_UP_SECONDS
        while "press Ctrl-C to stop everything" not in log_path.read_text(errors="replace"):
            assert up.poll() is None, f"the stack exited:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not up in time:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.2)
        yield TourStack(state_dir, settings, {"api": api, "simulators": simulators})
    finally:
        up.send_signal(signal.SIGTERM)  # the launcher stops its children, as on Ctrl-C
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


def _checkout_with_state(state_dir: Path, folder: Path) -> Path:
    """The repository as the session sees it: every entry linked, `.state` the stack's own."""
    folder.mkdir()
    for entry in ROOT.iterdir():
        if entry.name != ".state":
            (folder / entry.name).symlink_to(entry)
    (folder / ".state").symlink_to(state_dir)
    return folder


def test_the_tour_is_there_and_names_only_the_ports_the_test_replaces() -> None:
    readme = README.read_text()
    assert len(readme.encode()) <= 15_000, "the README is a guide of at most 15 KB"
    assert len(tour_steps(readme)) >= 15, "the README lost its tour blocks or their marks"
    steps = whole_tour()
    commands = "\n".join(step.command for step in steps)
    assert len(steps) >= 30, "the tour lost its blocks or their <!-- tour --> marks"
    assert sum(step.expected is not None for step in steps) >= 20
    assert "order-web-1002/cancel" in commands  # the cancel example stays in the tour
    sleeps = [
        f"{step.source}:{step.line}" for step in steps if BARE_SLEEP.fullmatch(step.command.strip())
    ]
    assert not sleeps, f"{sleeps}: wait for the state the next command needs, not a time"
    named = {int(port) for port in re.findall(r"(?:localhost|127\.0\.0\.1):(\d+)", commands)}
    assert named <= set(README_PORTS.values()), f"the tour names ports {named}"


def test_the_readme_tour_runs_as_written(tour_stack: TourStack, tmp_path: Path) -> None:
    steps = whole_tour()
    cwd = _checkout_with_state(tour_stack.state_dir, tmp_path / "checkout")
    scratch = tmp_path / "outputs"
    scratch.mkdir()
    session = BashSession(cwd, _environment_without_settings() | tour_stack.env, scratch)
    try:
        for step in steps:
            command = step.command
            for name, port in README_PORTS.items():
                command = command.replace(
                    f"localhost:{port}", f"localhost:{tour_stack.ports[name]}"
                )
            started = time.monotonic()
            outcome = session.run(command)  # once: a person pasting the block gets one answer
            problem = problem_with(outcome, step.expected)
            elapsed = time.monotonic() - started
            print(f"{step.source}:{step.line} {elapsed:5.1f} s {problem or 'ok'}")
            assert problem is None, (
                f"{step.source}:{step.line}: {problem}\n$ {step.command}\n"
                f"expected: {step.expected}\nstdout: {outcome.stdout[-2000:]}\n"
                f"stderr: {outcome.stderr[-2000:]}\nHTTP: {outcome.statuses}"
            )
    finally:
        session.close()
