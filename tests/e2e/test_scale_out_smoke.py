"""The scale-out load test at a small size: two APIs and two `worker.py` on one ledger, a burst
of concurrent submissions and order reads to each API. Every request answered (2xx, or a 503 /
429 that says why), /healthz answered throughout, no connection left idle in transaction. Not
a timing claim: the full size is `python -m benchmarks.scale_out` (benchmarks/README.md)."""

from pathlib import Path

import pytest

from benchmarks.scale_out import Plan, run_scale_out

PER_API = 40


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_two_apis_and_two_workers_answer_every_request_of_a_concurrent_burst(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if database == "postgres":
        request.getfixturevalue("postgres_url")  # skipped, or failed when required, if absent
    plan = Plan(
        database=database, submissions=PER_API, reads=PER_API, read_targets=5, state_dir=tmp_path
    )
    report = run_scale_out(plan)
    assert report.problems == [], report.text()
    for api in report.apis:
        assert api.submissions.answered == PER_API and api.reads.answered == PER_API
        assert api.health.latencies_ms, "/healthz was never polled"
    # Every accepted order settled; a submission answered 503 may have started its workflow
    # all the same (Temporal's deadline passed after the start), which a resend would find.
    accepted = sum(api.submissions.ok for api in report.apis)
    assert accepted <= sum(report.settled.values()) <= 2 * PER_API
    if database == "postgres":
        # Both counts taken, and they saw the processes' own connections.
        assert report.idle_in_transaction == [0, 0]
        assert all(n > 0 for n in report.connections)
