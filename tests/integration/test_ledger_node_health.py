"""The ledger's side of node health on real SQLite and PostgreSQL: incidents recorded once per
shipment, a node's record counted since its last status change, and the nodes the rule (not a
person) degraded."""

from datetime import UTC, datetime, timedelta

from domain.node_status import NodeStatus
from ledger.db import transaction
from ledger.network import set_node_status
from ledger.node_health import automatically_degraded, record_incident, records_of_up_nodes
from tests.support.ledger_fixtures import seed


def test_the_ledger_reads_a_nodes_record_since_its_last_status_change(ledger_engine) -> None:
    seed(ledger_engine, {"A": 10, "B": 10})
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with transaction(ledger_engine) as tx:
        for n in range(3):
            assert record_incident(tx, f"O{n}", "A", f"O{n}-S1", "rejected", "no stock")
        assert not record_incident(tx, "O0", "A", "O0-S1", "rejected", "retried")  # once only
        record_incident(tx, "O9", "B", "O9-S1", "timed_out", "late")
    with transaction(ledger_engine) as tx:
        records = {r.node_id: r for r in records_of_up_nodes(tx, hour_ago)}
        set_node_status(tx, "A", NodeStatus.DEGRADED, "automatically degraded", automatic=True)
        set_node_status(tx, "B", NodeStatus.DOWN, "power cut")
    with transaction(ledger_engine) as tx:
        degraded = automatically_degraded(tx)
        set_node_status(tx, "A", NodeStatus.UP, "fixed")
    with transaction(ledger_engine) as tx:
        after_up = records_of_up_nodes(tx, hour_ago)
        still_degraded = automatically_degraded(tx)

    assert (records["A"].incidents, records["A"].rejections) == (3, 3)
    assert (records["B"].incidents, records["B"].missed_slas) == (1, 1)
    assert [d.node_id for d in degraded] == ["A"]  # B is down by a person, not by the rule
    assert after_up == [] and still_degraded == []  # back up: a clean record
