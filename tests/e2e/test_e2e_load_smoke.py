"""The end-to-end load benchmark's machinery on a handful of orders: every process starts, every
order and every bare ceiling workflow completes, and the report has its figures. Not a timing
claim: the benchmark itself is `python -m benchmarks.e2e_load`."""

from pathlib import Path

from benchmarks.e2e_load import Plan, run_benchmark


def test_e2e_load_benchmark_runs_orders_and_ceiling_to_completion(tmp_path: Path) -> None:
    report = run_benchmark(Plan(orders=5, concurrency=5, rounds=1, warmup=0, state_dir=tmp_path))
    (round_,) = report.rounds
    assert len(round_.orders.completed) == 5
    assert all(s.reserved is not None for s in round_.orders.samples)
    assert len(round_.ceiling.completed) == 5
    # The ceiling does what the orders did in the engine: activities of both kinds, signals.
    for shape, bare in zip(round_.shapes, round_.ceiling.samples, strict=True):
        assert shape.activities + shape.local_activities >= 5
        assert shape.signals >= 3
        assert bare.completed is not None
    assert round_.like_for_like is not None and len(round_.like_for_like.completed) == 5
    assert "of the ceiling" in report.text()
