"""Refusing references the network does not know, for every unit of work that takes them."""

from collections.abc import Iterable

from sqlmodel import Session

from domain.errors import UnknownReference
from ledger.catalogue import known_skus


def refuse_unknown_skus(session: Session, skus: Iterable[str], field: str) -> None:
    """UnknownReference naming `field` and every unknown SKU, sorted."""
    wanted = set(skus)
    if unknown := sorted(wanted - known_skus(session, wanted)):
        raise UnknownReference(field, unknown)
