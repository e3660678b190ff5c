"""Which SKUs and nodes exist: one chunked query for every caller that refuses unknown ones
(order intake, the checkout check, availability, stock feeds).

Known and sellable differ: an inactive SKU is still known (stock feeds keep applying to it, its
positions stay in the ledger) but no longer sellable (no new order or checkout quote may use it)."""

from collections.abc import Iterable

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from ledger.tables import Node, Sku

# Values per IN list: stays under SQLite's limit on bound variables; one query for any cart,
# order or feed below it.
CHUNK = 5000


def known_skus(session: Session, skus: Iterable[str]) -> set[str]:
    """The SKUs of `skus` the catalogue has, active or not."""
    return _existing(session, col(Sku.sku), skus)


def sellable_skus(session: Session, skus: Iterable[str]) -> set[str]:
    """The SKUs of `skus` the catalogue has and still sells (active)."""
    return {sku for sku, active in sku_activity(session, skus).items() if active}


def sku_activity(session: Session, skus: Iterable[str]) -> dict[str, bool]:
    """Whether each SKU of `skus` the catalogue has is active; unknown ones are absent. One
    query for both questions a caller that refuses unknown and inactive SKUs asks."""
    wanted = sorted(set(skus))
    found: dict[str, bool] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows = session.exec(select(Sku.sku, Sku.active).where(col(Sku.sku).in_(chunk)))
        found.update((sku, bool(active)) for sku, active in rows)
    return found


def known_nodes(session: Session, node_ids: Iterable[str]) -> set[str]:
    """The node ids of `node_ids` the network has."""
    return _existing(session, col(Node.node_id), node_ids)


def _existing(session: Session, column: ColumnElement[str], values: Iterable[str]) -> set[str]:
    wanted = sorted(set(values))
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        found.update(session.exec(select(column).where(column.in_(chunk))).all())
    return found
