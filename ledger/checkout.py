"""The checkout check as a unit of work: read the channel's view, decide (sourcing.checkout), and
optionally hold the stock the chosen option relies on, all in one transaction."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from domain.geo import GeoPoint
from domain.orders import OrderLine
from ledger import holds
from ledger.availability import channel_pool
from ledger.stock import candidate_nodes
from ledger.tables import CheckoutHold
from sourcing.checkout import CheckoutAnswer, DeliveryOptionCode, check_cart


@dataclass(frozen=True)
class HoldRequest:
    hold_id: str
    option: DeliveryOptionCode
    ttl: timedelta


class OptionUnavailable(Exception):
    def __init__(self, option: DeliveryOptionCode) -> None:
        self.option = option
        super().__init__(f"hold_option: {option} is not available for this cart")


def run_checkout_check(
    session: Session,
    channel: str,
    lines: list[OrderLine],
    destination: GeoPoint,
    now: datetime,
    hold: HoldRequest | None = None,
) -> tuple[CheckoutAnswer, CheckoutHold | None]:
    pool = channel_pool(session, channel)
    candidates = candidate_nodes(session, {ln.sku for ln in lines}, pool)
    answer = check_cart(lines, destination, candidates, now)
    if hold is None:
        return answer, None
    option = next((o for o in answer.options if o.code == hold.option), None)
    if option is None:
        raise OptionUnavailable(hold.option)
    hold_lines = [
        holds.HoldRequestLine(ln.line_no, shipment.node_id, ln.sku, ln.quantity)
        for shipment in option.shipments
        for ln in shipment.lines
    ]
    placed = holds.place_hold(session, hold.hold_id, channel, hold_lines, now + hold.ttl)
    return answer, placed
