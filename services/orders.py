"""Order intake's checks (what an order must satisfy before its workflow starts), and the
read model's updates for orders whose workflow has closed.

The rules a schema cannot express (domain.validation) and the references the network must know:
every SKU, the checkout hold it converts, the pickup node. The workflow re-checks the rules, so an
order started by another client is held to the same ones."""

from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from domain.errors import DomainError, UnknownReference
from domain.orders import (
    DeliveryMethod,
    DeliveryOptionCode,
    FulfilmentPolicy,
    OrderLine,
    OrderState,
)
from domain.validation import order_problems
from ledger import orders_view
from ledger.db import transaction
from ledger.tables import Channel, CheckoutHold, Node
from services.catalogue import refuse_unsellable_skus
from services.references import refuse_retired_channel


class InvalidOrder(DomainError):
    code = "invalid_order"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def refuse_invalid_order(
    session: Session,
    lines: list[OrderLine],
    delivery_method: DeliveryMethod,
    pickup_node_id: str | None,
    hold_id: str | None,
    channel: str | None = None,
) -> None:
    """InvalidOrder naming every broken rule, else UnknownReference for the first reference
    the network does not know (SKUs, then the hold, then the pickup node); a SKU the catalogue
    no longer sells is refused as unknown is (InactiveSkus)."""
    if problems := order_problems(lines, delivery_method, pickup_node_id):
        raise InvalidOrder(problems)
    if channel is not None:
        refuse_retired_channel(session, channel)
    refuse_unsellable_skus(session, {line.sku for line in lines}, "lines.sku")
    if hold_id:
        hold = session.get(CheckoutHold, hold_id)
        # Another channel's hold is refused as unknown, as its release route does: a key for
        # one channel must neither take nor probe another channel's held stock.
        if hold is None or (channel is not None and hold.channel != channel):
            raise UnknownReference("hold_id", [hold_id])
    if delivery_method == DeliveryMethod.PICKUP:
        node = session.get(Node, pickup_node_id)
        if node is None or not node.can_pickup:
            raise UnknownReference("pickup_node_id", [f"{pickup_node_id} (not a pickup node)"])


def existing_order(session: Session, order_id: str) -> OrderState | None:
    """The order as the read model keeps it, None if this id was never accepted. The read model
    is permanent, unlike Temporal's closed runs (deleted after the namespace's retention): an
    order re-sent after that must still be a duplicate, not a second fulfilment."""
    return orders_view.get_order(session, order_id)


def admit_order(
    session: Session,
    order_id: str,
    lines: list[OrderLine],
    delivery_method: DeliveryMethod,
    pickup_node_id: str | None,
    hold_id: str | None,
    channel: str | None = None,
) -> OrderState | None:
    """Intake's decision: the existing order when this id was accepted before (a duplicate,
    whatever has changed in the catalogue or the channel since), else None once the order
    passes refuse_invalid_order."""
    if (existing := existing_order(session, order_id)) is not None:
        return existing
    refuse_invalid_order(session, lines, delivery_method, pickup_node_id, hold_id, channel)
    return None


def promise_of_hold(
    session: Session, hold_id: str
) -> tuple[DeliveryOptionCode | None, date | None]:
    """The option a checkout hold was placed on and the date it promised (None, None for a hold
    placed before holds kept them, or none at all): what an order converting it was sold with."""
    hold = session.get(CheckoutHold, hold_id)
    if hold is None or hold.option is None:
        return None, None
    return DeliveryOptionCode(hold.option), hold.promised_date


def channel_fulfilment(session: Session, channel: str) -> dict[str, Any]:
    """The channel's fulfilment settings, for the order fields a submission leaves out: its
    policy (None for a channel with no configuration row, as channels predate their
    configuration: reserved whole, as before) and its ship-complete rule."""
    configured = session.get(Channel, channel)
    if configured is None:
        return {"fulfilment_policy": None}
    return {
        "fulfilment_policy": FulfilmentPolicy(configured.fulfilment_policy),
        "ship_complete_wait_seconds": configured.ship_complete_wait_seconds,
        "ship_complete_then": configured.ship_complete_then,
        "consolidation_window_seconds": configured.consolidation_window_seconds,
    }


def record_delivery_scan(engine: Engine, order_id: str, shipment_id: str, carrier: str) -> None:
    """A carrier's delivery scan for an order whose workflow has closed: the read model is the
    only record left to update."""
    with transaction(engine) as tx:
        orders_view.record_delivery(tx, order_id, shipment_id, carrier)


class NothingToAcknowledge(DomainError):
    code = "nothing_to_acknowledge"

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"nothing on order {order_id} needs attention")


def acknowledge_closed_order(engine: Engine, order_id: str, reason: str, actor: str) -> OrderState:
    """Clear the attention of an order whose workflow has closed (a late shipment flagged after
    it completed): only the read model holds it. NothingToAcknowledge if there is none."""
    with transaction(engine) as session:
        state = orders_view.clear_attention(session, order_id, f"{reason} ({actor})")
    if state is None:
        raise NothingToAcknowledge(order_id)
    return state
