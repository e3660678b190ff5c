"""services.orders on real SQLite and PostgreSQL: what order intake refuses before a workflow
starts, and in which order."""

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from domain.errors import UnknownReference
from domain.orders import DeliveryMethod, OrderLine
from ledger.db import transaction
from ledger.tables import Node
from services.orders import InvalidOrder, refuse_invalid_order
from tests.support.ledger_fixtures import seed

HOME, PICKUP = DeliveryMethod.HOME, DeliveryMethod.PICKUP


def _lines(*skus: str) -> list[OrderLine]:
    return [OrderLine(line_no=i, sku=sku, quantity=1) for i, sku in enumerate(skus, start=1)]


@pytest.fixture
def network(ledger_engine: Engine) -> Engine:
    seed(ledger_engine, {"WH-A": 5, "ST-B": 5})
    with transaction(ledger_engine) as session:
        store = session.get(Node, "ST-B")
        assert store is not None
        store.can_pickup = True
        session.add(store)
    return ledger_engine


def test_an_order_that_breaks_the_rules_is_refused_naming_every_rule(network: Engine) -> None:
    twice = [OrderLine(line_no=1, sku="TEE", quantity=1)] * 2
    with Session(network) as session, pytest.raises(InvalidOrder) as refused:
        refuse_invalid_order(session, twice, PICKUP, None, None)

    assert str(refused.value) == (
        "lines: line_no 1 appears more than once; "
        "pickup_node_id: required when delivery_method is pickup"
    )


def test_unknown_skus_are_named_together_and_sorted(network: Engine) -> None:
    with Session(network) as session, pytest.raises(UnknownReference) as refused:
        refuse_invalid_order(session, _lines("ZZZ", "TEE", "HAT"), HOME, None, None)

    assert (refused.value.field, refused.value.values) == ("lines.sku", ["HAT", "ZZZ"])


def test_a_hold_or_pickup_node_the_network_does_not_know_is_refused(network: Engine) -> None:
    with Session(network) as session:
        with pytest.raises(UnknownReference, match="hold_id: unknown H-1"):
            refuse_invalid_order(session, _lines("TEE"), HOME, None, "H-1")
        with pytest.raises(UnknownReference, match="WH-A \\(not a pickup node\\)"):
            refuse_invalid_order(session, _lines("TEE"), PICKUP, "WH-A", None)
        refuse_invalid_order(session, _lines("TEE"), PICKUP, "ST-B", None)  # accepted


def test_a_deactivated_channel_takes_no_new_order(network: Engine) -> None:
    from ledger.tables import Channel
    from services.references import RetiredChannel

    with transaction(network) as session:
        session.add(Channel(channel="b2b", name="B2B", channel_type="b2b", active=False))

    with Session(network) as session:
        with pytest.raises(RetiredChannel, match="channel: b2b is deactivated"):
            refuse_invalid_order(session, _lines("TEE"), HOME, None, None, channel="b2b")
        refuse_invalid_order(session, _lines("TEE"), HOME, None, None, channel="web")  # no row
