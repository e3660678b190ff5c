"""The network import benchmark's machinery at a tiny scale: files generated, imported in a child
process, re-imported without a change, the API started on them and answering checkout checks.
Not a timing claim: the benchmark itself is `python -m benchmarks.network_import_bench`."""

from pathlib import Path

from benchmarks.network_import_bench import run_benchmark


def test_network_import_benchmark_imports_reimports_and_serves_checkout_checks(
    tmp_path: Path,
) -> None:
    report = run_benchmark("sqlite", factor=0.002, checks=20, workdir=tmp_path)
    stock = report.first["files"][-1]
    assert stock["name"] == "stock.csv" and stock["created"] == report.scale.positions
    assert report.first["changed"] and not report.again["changed"]
    assert len(report.latencies) == 20 and report.errors == 0
    assert report.api_hwm_mib > 0 and report.first["vm_hwm_mib"] > 0
    assert "checkout checks: 20" in report.text()
