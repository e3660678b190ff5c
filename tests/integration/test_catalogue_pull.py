"""Pulling a PIM's catalogue (connectors.pim + services.catalogue) from the simulated PIM served
over real HTTP, into SQLite and PostgreSQL: pages applied with their cursor, a page with a bad
item refused whole with the cursor left on it, and the pull carrying on once the PIM fixes it."""

import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from connectors.errors import PermanentConnectorError
from connectors.pim import PimConnector
from ledger.catalogue import known_skus
from ledger.db import transaction
from ledger.tables import FeedSource, Sku
from services import catalogue
from simulators.app import DEMO_SKU_SIZES, SimulatorConfig, create_simulator_app
from stack.servers import ServerThread


@pytest.fixture(scope="module")
def pim_url() -> Iterator[str]:
    server = ServerThread(create_simulator_app(SimulatorConfig(latency_seconds=0))).start()
    yield server.url
    server.stop()


@pytest.fixture
def connector() -> Iterator[PimConnector]:
    pim = PimConnector(attempts=1)
    yield pim
    pim.close()


def _catalogue(pim_url: str, items: list[dict], page_size: int = 2) -> str:
    """A fresh simulated catalogue holding `items`; its name."""
    name = f"pim-{uuid.uuid4().hex[:8]}"
    _change(pim_url, name, items, page_size)
    return name


def _change(pim_url: str, name: str, items: list[dict], page_size: int | None = None) -> None:
    """The PIM adds or changes `items`: each becomes its latest change."""
    params = {"page_size": page_size} if page_size else None
    httpx.put(f"{pim_url}/sim/pim/{name}/items", params=params, json=items).raise_for_status()


def _source(engine: Engine, url: str) -> str:
    with transaction(engine) as session:
        catalogue.set_catalogue_source(session, "pim", url, "cli:tester")
    return "pim"


def _cursor(engine: Engine, source: str) -> str | None:
    with Session(engine) as session:
        return session.get(FeedSource, source).cursor  # type: ignore[union-attr]


def _items(*skus: str) -> list[dict]:
    return [{"sku": sku, "name": f"Item {sku}", "weight_kg": 1.0} for sku in skus]


def test_the_demo_catalogue_is_pulled_page_by_page_with_weights_and_sizes(
    ledger_engine: Engine, pim_url: str, connector: PimConnector
) -> None:
    source = _source(ledger_engine, f"{pim_url}/pim")

    pull = catalogue.pull_catalogue(ledger_engine, source, connector.fetch_page)
    again = catalogue.pull_catalogue(ledger_engine, source, connector.fetch_page)

    assert len(pull.created) == len(DEMO_SKU_SIZES) and pull.pages > 1 and not pull.refused
    assert again.pages == 1 and not again.changed  # caught up: an empty page after the cursor
    with Session(ledger_engine) as session:
        tee = session.get(Sku, "TEE-WHT-M")
    assert tee is not None
    assert (tee.weight_kg, tee.length_cm, tee.width_cm, tee.height_cm) == DEMO_SKU_SIZES[
        "TEE-WHT-M"
    ]


def test_a_page_with_a_bad_item_applies_nothing_and_keeps_the_cursor(
    ledger_engine: Engine, pim_url: str, connector: PimConnector
) -> None:
    bad = {"sku": "C", "name": "Item C", "weight_kg": -2}
    name = _catalogue(pim_url, [*_items("A", "B"), bad, *_items("D")])
    source = _source(ledger_engine, f"{pim_url}/pim/{name}")

    pull = catalogue.pull_catalogue(ledger_engine, source, connector.fetch_page)

    assert pull.created == ["A", "B"] and pull.pages == 1
    assert pull.refused is not None and "items[0].weight_kg" in pull.refused
    assert _cursor(ledger_engine, source) == "2"  # after B: the refused page is asked again
    with Session(ledger_engine) as session:
        assert known_skus(session, ["A", "B", "C", "D"]) == {"A", "B"}

    stuck = catalogue.pull_catalogue(ledger_engine, source, connector.fetch_page)
    assert stuck.refused and not stuck.changed and _cursor(ledger_engine, source) == "2"

    _change(pim_url, name, _items("C"))  # fixed: now the PIM's latest change, after D
    fixed = catalogue.pull_catalogue(ledger_engine, source, connector.fetch_page)

    assert sorted(fixed.created) == ["C", "D"] and not fixed.refused
    with Session(ledger_engine) as session:
        assert known_skus(session, ["A", "B", "C", "D"]) == {"A", "B", "C", "D"}


def test_a_sku_changed_in_the_pim_comes_back_and_is_updated(
    ledger_engine: Engine, pim_url: str, connector: PimConnector
) -> None:
    name = _catalogue(pim_url, _items("A", "B", "C"))
    source = _source(ledger_engine, f"{pim_url}/pim/{name}")
    catalogue.pull_catalogue(ledger_engine, source, connector.fetch_page)

    _change(pim_url, name, [{"sku": "B", "name": "Item B", "weight_kg": 1.0, "active": False}])
    pull = catalogue.pull_catalogue(ledger_engine, source, connector.fetch_page)

    assert pull.updated == ["B"] and pull.created == []
    with Session(ledger_engine) as session:
        assert session.get(Sku, "B").active is False  # type: ignore[union-attr]


def test_a_pim_that_is_not_there_is_a_connector_error_and_moves_nothing(
    ledger_engine: Engine, pim_url: str, connector: PimConnector
) -> None:
    source = _source(ledger_engine, f"{pim_url}/pim/no-such-catalogue")

    with pytest.raises(PermanentConnectorError, match="HTTP 404"):
        catalogue.pull_catalogue(ledger_engine, source, connector.fetch_page)

    assert _cursor(ledger_engine, source) is None
