"""Refusing references the network does not know, for every unit of work that takes them."""

from collections.abc import Iterable

from sqlmodel import Session

from domain.errors import DomainError, UnknownReference
from ledger.catalogue import known_skus
from ledger.tables import Channel


def refuse_unknown_skus(session: Session, skus: Iterable[str], field: str) -> None:
    """UnknownReference naming `field` and every unknown SKU, sorted."""
    wanted = set(skus)
    if unknown := sorted(wanted - known_skus(session, wanted)):
        raise UnknownReference(field, unknown)


class RetiredChannel(DomainError):
    code = "inactive_channel"

    def __init__(self, channel: str) -> None:
        self.field = "channel"
        self.channel = channel
        super().__init__(f"channel: {channel} is deactivated (no new orders or quotes)")


def refuse_retired_channel(session: Session, channel: str) -> None:
    """A configured channel set `active: false` takes no new order or quote. A channel with no
    configuration row is not refused: channels predate their configuration (issue 11)."""
    configured = session.get(Channel, channel)
    if configured is not None and not configured.active:
        raise RetiredChannel(channel)
