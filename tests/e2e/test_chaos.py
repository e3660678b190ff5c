"""The chaos harness's small default: orders through the whole stack while the worker is killed
three times, the Temporal dev server and the API once, 10 % of connector calls fail, some nodes
ship after a late cancel or reject after pick, the carrier is down for a while, the pulled ERP
feed carries a bad line and a completed order is re-sent after its workflow was deleted; every
invariant holds."""

from chaos.harness import ChaosPlan, run_chaos


def test_orders_survive_kills_restarts_partner_faults_and_a_resend_after_deletion(
    tmp_path,
) -> None:
    report = run_chaos(ChaosPlan(state_dir=tmp_path))
    print(report.text())

    happened = "\n".join(report.events)
    assert happened.count("killed the worker") == 3
    assert happened.count("killed the Temporal dev server") == 1
    assert happened.count("killed the API") == 1
    assert "the carrier went down" in happened
    assert "after `temporal workflow delete` (deleted)" in happened
    assert "received the purchase order" in happened  # the ship-partial orders' short lines
    injected = report.faults
    # every kind of fault really was injected (the draws are seeded by shipment id)
    assert injected["HTTP 503"] + injected["timeouts"] + injected["duplicate callbacks"] > 0
    assert injected["shipped despite a cancel"] > 0
    assert injected["rejected after pick"] > 0
    assert injected["carrier-down 503"] > 0
    assert injected["bad ERP lines"] == 1
    assert [i.line() for i in report.invariants if not i.holds] == []
