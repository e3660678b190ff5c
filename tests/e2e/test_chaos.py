"""The chaos harness's small default: orders through the whole stack while the worker is killed
three times, the Temporal dev server once, and 10 % of connector calls fail; every invariant holds."""

from chaos.harness import ChaosPlan, run_chaos


def test_orders_survive_worker_kills_a_server_restart_and_connector_faults(tmp_path) -> None:
    report = run_chaos(ChaosPlan(state_dir=tmp_path))
    print(report.text())

    assert len(report.events) == 4  # 3 worker kills + 1 server restart really happened
    assert sum(report.faults.values()) > 0  # faults really were injected
    assert [i.name for i in report.invariants if not i.holds] == []
