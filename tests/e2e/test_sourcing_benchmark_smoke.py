"""The sourcing benchmark's machinery at a tiny scale: the live allocation decision
(`services.allocation.plan_allocation`) driven over one seed of 200 orders beside the baselines,
with LP re-solves, and the 200-node decision timing. Not a cost or speed claim: the benchmark
itself is `python -m benchmarks.sourcing.run`."""

import re

import pytest

from benchmarks.sourcing import run

ROW = re.compile(r"^  (?P<policy>\S.*?)\s+(?P<ratio>\d+\.\d{4})\s+(?P<packages>\d+\.\d{3})\s")


def test_sourcing_benchmark_runs_the_live_path_and_reports_ratios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        run.main(
            ["--seeds", "1", "--orders", "200", "--resolve-every", "0.25", "--latency-orders", "20"]
        )
        == 0
    )
    out = capsys.readouterr().out

    rows = {m["policy"]: m for m in map(ROW.match, out.splitlines()) if m}
    assert set(rows) == {
        "nearest node per item (baseline)",
        "myopic per-order optimum (baseline)",
        run.MYOPIC,
        run.BID_PRICES,
    }
    # Every policy pays at least the fluid LP bound of its expected demand, give or take the
    # noise of 200 orders, and the live myopic decision matches the brute-force optimum.
    assert all(float(r["ratio"]) > 0.8 for r in rows.values())
    assert rows[run.MYOPIC]["ratio"] == rows["myopic per-order optimum (baseline)"]["ratio"]
    bid_row = next(line for line in out.splitlines() if line.startswith(f"  {run.BID_PRICES}"))
    assert re.search(r"\d+ in \d+ s$", bid_row), "the bid-price policy re-solved its LP"
    assert "plan_allocation with a bid price on every node/SKU pair, 200 candidate nodes" in out
    assert f"{run.BID_PRICES}: cost/LP" in out and "LP re-solve" in out
    grouping = re.search(
        r"parcels per order, (\d+) orders .*: ([\d.]+) without grouping, ([\d.]+)", out
    )
    assert grouping and float(grouping[3]) <= float(grouping[2])
