"""services.catalogue on SQLite and PostgreSQL: SKU specs applied set-based and audited once per
real change, a PIM's pushed event applied once, and inactive SKUs refused where they would be
sold but still fed stock."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from domain.configuration import SkuSpec
from domain.errors import UnknownReference
from ledger.catalogue import known_skus, sellable_skus
from ledger.config_audit import changes_of
from ledger.db import transaction
from ledger.tables import ConfigChange, FeedSource, Sku
from services import catalogue, housekeeping
from services.catalogue import (
    DuplicateSkus,
    InactiveSkus,
    InvalidSkuSpecs,
    SourceMismatch,
    apply_skus,
    parse_sku_specs,
    sku_spec,
)
from services.feeds import push_deltas
from tests.support.ledger_fixtures import seed

ACTOR = "cli:tester"


@dataclass(frozen=True)
class Delta:
    event_id: str
    node_id: str
    sku: str
    delta: int
    as_of: datetime


def _apply(engine: Engine, specs: list[SkuSpec], actor: str = ACTOR):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return apply_skus(session, specs, actor)


def _tee(**fields: object) -> SkuSpec:
    return SkuSpec.model_validate({"sku": "TEE", "name": "Tee", **fields})


def _audit_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count()).select_from(ConfigChange).where(col(ConfigChange.entity) == "sku")
        ).one()


def test_new_skus_are_created_each_with_one_audit_entry(ledger_engine: Engine) -> None:
    applied = _apply(ledger_engine, [_tee(weight_kg=0.2), _tee(sku="CAP", name="Cap")])

    assert applied.created == ["TEE", "CAP"] and not applied.updated
    with Session(ledger_engine) as session:
        assert session.get(Sku, "TEE").weight_kg == 0.2  # type: ignore[union-attr]
        [entry] = changes_of(session, "sku", "TEE")
    assert (entry.action, entry.actor) == ("create", ACTOR)
    assert entry.changes["weight_kg"] == [None, 0.2] and entry.changes["name"] == [None, "Tee"]


def test_the_same_specs_applied_again_write_nothing(ledger_engine: Engine) -> None:
    _apply(ledger_engine, [_tee(weight_kg=0.2, length_cm=30)])
    with Session(ledger_engine) as session:
        stamped = session.get(Sku, "TEE").updated_at  # type: ignore[union-attr]

    again = _apply(ledger_engine, [_tee(weight_kg=0.2, length_cm=30)])

    assert (again.created, again.updated, again.unchanged) == ([], [], 1)
    assert _audit_count(ledger_engine) == 1
    with Session(ledger_engine) as session:
        assert session.get(Sku, "TEE").updated_at == stamped  # type: ignore[union-attr]


def test_a_changed_field_is_recorded_before_and_after(ledger_engine: Engine) -> None:
    _apply(ledger_engine, [_tee(unit_price=19)])

    applied = _apply(ledger_engine, [_tee(unit_price=21, oversize=True)], actor="key:k1 pim")

    assert applied.updated == ["TEE"]
    with Session(ledger_engine) as session:
        latest = changes_of(session, "sku", "TEE")[0]
        assert session.get(Sku, "TEE").unit_price == 21  # type: ignore[union-attr]
    assert latest.action == "update" and latest.actor == "key:k1 pim"
    assert latest.changes == {"unit_price": [19.0, 21.0], "oversize": [False, True]}


def test_deactivating_keeps_the_sku_known_but_no_longer_sellable(ledger_engine: Engine) -> None:
    _apply(ledger_engine, [_tee(), _tee(sku="CAP", name="Cap")])

    _apply(ledger_engine, [_tee(active=False)])

    with Session(ledger_engine) as session:
        assert known_skus(session, ["TEE", "CAP"]) == {"TEE", "CAP"}
        assert sellable_skus(session, ["TEE", "CAP"]) == {"CAP"}
        assert changes_of(session, "sku", "TEE")[0].action == "deactivate"
        with pytest.raises(InactiveSkus, match=r"lines\.sku: inactive TEE \(no longer sold\)"):
            catalogue.refuse_unsellable_skus(session, ["TEE", "CAP"], "lines.sku")
        # Unknown first: an order naming both hears about the SKU that does not exist at all.
        with pytest.raises(UnknownReference, match=r"lines\.sku: unknown GHOST$"):
            catalogue.refuse_unsellable_skus(session, ["TEE", "GHOST"], "lines.sku")
        catalogue.refuse_unsellable_skus(session, ["CAP"], "lines.sku")


def test_stock_feeds_still_apply_to_an_inactive_sku(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"N1": 5})  # SKU TEE at N1
    _apply(ledger_engine, [_tee(active=False)])

    outcome = push_deltas(ledger_engine, "erp", [Delta("d-1", "N1", "TEE", 3, datetime.now(UTC))])

    assert outcome.applied == 1 and not outcome.refused


def test_a_sku_given_twice_in_one_batch_is_refused_and_nothing_written(
    ledger_engine: Engine,
) -> None:
    with pytest.raises(DuplicateSkus, match="TEE"):
        _apply(ledger_engine, [_tee(), _tee(sku="CAP", name="Cap"), _tee(name="Other")])

    with Session(ledger_engine) as session:
        assert known_skus(session, ["TEE", "CAP"]) == set()
    assert _audit_count(ledger_engine) == 0


def test_every_refused_item_is_named_by_index_and_field() -> None:
    items = [
        {"sku": "TEE", "name": "Tee"},
        {"sku": "CAP", "name": "Cap", "weight_kg": -1, "colour": "red"},
        "not an object",
        {"sku": "TEE", "name": "Tee again"},
    ]

    with pytest.raises(InvalidSkuSpecs) as refused:
        parse_sku_specs(items)

    named = [(p.index, p.field) for p in refused.value.problems]
    assert named == [(1, "weight_kg"), (1, "colour"), (2, ""), (3, "sku")]
    assert "items[1].weight_kg: Input should be greater than or equal to 0" in str(refused.value)
    assert "items[3].sku: TEE is given twice (first at index 0)" in str(refused.value)


def test_an_exported_sku_applied_again_changes_nothing(ledger_engine: Engine) -> None:
    _apply(
        ledger_engine, [_tee(description="Organic", weight_kg=0.2, height_cm=2, ship_alone=True)]
    )
    with Session(ledger_engine) as session:
        exported = sku_spec(session.get(Sku, "TEE"))  # type: ignore[arg-type]

    again = _apply(ledger_engine, parse_sku_specs([exported.model_dump()]))

    assert again.unchanged == 1 and exported.description == "Organic"


def test_a_pushed_event_is_applied_once(ledger_engine: Engine) -> None:
    specs = [_tee(unit_price=19)]
    with transaction(ledger_engine) as session:
        first = catalogue.push_catalogue(session, "pim", "e-1", specs, ACTOR)
    with transaction(ledger_engine) as session:
        # Same event id, other content: the PIM retried a message; the first one stands.
        replay = catalogue.push_catalogue(session, "pim", "e-1", [_tee(unit_price=5)], ACTOR)

    assert first.created == ["TEE"] and not first.replayed
    assert replay == catalogue.CatalogueOutcome(replayed=True)
    with Session(ledger_engine) as session:
        assert session.get(Sku, "TEE").unit_price == 19  # type: ignore[union-attr]


def test_fifty_thousand_skus_are_applied_in_one_call(ledger_engine: Engine) -> None:
    items = [
        {"sku": f"SKU-{i:05d}", "name": f"Item {i}", "unit_price": i % 90, "weight_kg": 0.5}
        for i in range(50_000)
    ]
    specs = parse_sku_specs(items)
    started = time.monotonic()
    created = _apply(ledger_engine, specs)
    first = time.monotonic() - started
    changed = [
        s.model_copy(update={"weight_kg": 0.6}) if i % 10 == 0 else s for i, s in enumerate(specs)
    ]

    again = _apply(ledger_engine, changed)

    assert len(created.created) == 50_000
    assert (len(again.updated), again.unchanged) == (5_000, 45_000)
    assert _audit_count(ledger_engine) == 55_000
    # A deadline, not a benchmark: the set-based path takes a few seconds; one statement per
    # SKU took minutes.
    assert first < 30, f"50,000 SKUs took {first:.1f} s"


def test_stock_feed_listing_leaves_catalogue_sources_out(ledger_engine: Engine) -> None:
    with transaction(ledger_engine) as session:
        session.add(FeedSource(source="erp", url="http://erp"))
        catalogue.set_catalogue_source(session, "pim", "http://pim", ACTOR)

    assert [s.source for s in housekeeping.enabled_feed_sources(ledger_engine)] == ["erp"]
    assert [s.source for s in catalogue.catalogue_sources(ledger_engine)] == ["pim"]


def test_a_catalogue_source_is_named_once_and_a_stock_feed_name_refused(
    ledger_engine: Engine,
) -> None:
    with transaction(ledger_engine) as session:
        session.add(FeedSource(source="erp", url="http://erp"))
        created = catalogue.set_catalogue_source(session, "pim", "http://pim", ACTOR)
    with transaction(ledger_engine) as session:
        same = catalogue.set_catalogue_source(session, "pim", "http://pim", ACTOR)
        session.get(FeedSource, "pim").cursor = "40"  # type: ignore[union-attr]
    with transaction(ledger_engine) as session:
        moved = catalogue.set_catalogue_source(session, "pim", "http://pim2", ACTOR)
    with (
        pytest.raises(SourceMismatch, match="erp is already a stock feed"),
        transaction(ledger_engine) as session,
    ):
        catalogue.set_catalogue_source(session, "erp", "http://pim", ACTOR)

    assert (created, same, moved) == ("created", "unchanged", "updated")
    with Session(ledger_engine) as session:
        row = session.get(FeedSource, "pim")
        assert (row.kind, row.url, row.cursor) == ("catalogue", "http://pim2", None)  # type: ignore[union-attr]
        assert [c.action for c in changes_of(session, "feed_source", "pim")] == ["update", "create"]
