"""Which SKUs and nodes exist: one chunked query for every caller that refuses unknown ones
(order intake, the checkout check, availability, stock feeds)."""

from collections.abc import Iterable

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from ledger.tables import Node, Sku

# Values per IN list: stays under SQLite's limit on bound variables; one query for any cart,
# order or feed below it.
CHUNK = 5000


def known_skus(session: Session, skus: Iterable[str]) -> set[str]:
    """The SKUs of `skus` the catalogue has."""
    return _existing(session, col(Sku.sku), skus)


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
