"""What a retailer configures: nodes, catalogue items, channels and carrier services, as validated
specifications. The API, the `opendom` command and the bulk import (CSV and JSON files) all read
these, so a field is refused with the same message wherever it comes from.

A specification is the whole desired state of one entity, keyed by its id: applying the same one
twice changes nothing (services.configuration, services.catalogue). Field names are the CSV
column names of `opendom network import` (docs/network-files.md)."""

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.network import NodeType
from domain.orders import (
    SHIP_COMPLETE_WAIT_SECONDS,
    FulfilmentPolicy,
    OrderType,
    ShipCompleteThen,
)
from domain.parcels import MAX_CONSOLIDATION_WINDOW_SECONDS

# A channel limits its orders to at most this many shipments (nodes) at the most.
MAX_SHIPMENTS_PER_ORDER = 50

# Ids appear in URL paths and audit ids (`carrier/service`): no slash, no space.
Identifier = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
ShortIdentifier = Annotated[Identifier, Field(max_length=40)]  # channel and carrier columns
Weekday = Annotated[int, Field(ge=0, le=6)]
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
# A credential is named, never given: `env:NAME` (the worker's environment) or `file:/path`
# (a mounted secret). A URL-looking or long random value is most likely the secret itself.
_CREDENTIAL_REF = re.compile(r"^(env:[A-Z_][A-Z0-9_]*|file:/[^\s]+)$")


class Spec(BaseModel):
    """Unknown fields are refused (a misspelt column must not be silently ignored)."""

    # No inf or NaN: they pass range checks, then break JSON answers and exports.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


def _clock(value: str) -> str:
    if not _CLOCK.match(value):
        raise ValueError(f"'{value}' is not a time of day as HH:MM (24 h)")
    return value


class ConnectorKind(StrEnum):
    """How OpenDOM talks to a node's system (connectors.nodes)."""

    OPENDOM_HTTP = "opendom-http"  # OpenDOM's node API (the simulators speak it)
    # The embedded simulators (`opendom up --simulators`): the URL is the worker's simulator
    # URL (OPENDOM_CARRIER_URL) + /nodes/<node_id>, so a network file runs on any port.
    SIMULATOR = "simulator"


class NodeSpec(Spec):
    node_id: Identifier
    name: str = Field(min_length=1, max_length=200)
    node_type: NodeType
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address_line1: str | None = None
    city: str | None = None
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1")
    can_ship: bool = True
    can_pickup: bool = False
    can_ship_to_store: bool = False
    daily_capacity: int = Field(default=1000, ge=0)
    priority: int = Field(default=100, ge=0, le=1000)
    working_days: list[Weekday] = Field(default=[0, 1, 2, 3, 4], description="0 = Monday")
    holidays: list[date] = []
    cutoff_time: str = Field(default="14:00", description="local time, HH:MM")
    timezone: str = "UTC"
    processing_days: int = Field(default=0, ge=0, le=30)
    accept_sla_seconds: float | None = Field(default=None, gt=0)
    pick_sla_seconds: float | None = Field(default=None, gt=0)
    ship_sla_seconds: float | None = Field(default=None, gt=0)
    safety_stock: int | None = Field(default=None, ge=0)
    connector_kind: ConnectorKind = ConnectorKind.OPENDOM_HTTP
    system_url: str | None = Field(default=None, pattern=r"^https?://")
    credential_ref: str | None = Field(
        default=None, max_length=200, description="env:NAME or file:/path"
    )
    enabled: bool = True

    _cutoff = field_validator("cutoff_time")(classmethod(lambda cls, v: _clock(v)))

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone '{value}' (an IANA name such as Europe/Paris)"
            ) from exc
        return value

    @field_validator("credential_ref")
    @classmethod
    def _a_reference_not_a_secret(cls, value: str | None) -> str | None:
        if value is not None and not _CREDENTIAL_REF.match(value):
            raise ValueError(
                "must name where the secret is kept (env:NAME or file:/path), not hold it"
            )
        return value

    @model_validator(mode="after")
    def _a_system_to_talk_to(self) -> "NodeSpec":
        if self.system_url is None and self.connector_kind != ConnectorKind.SIMULATOR:
            raise ValueError(f"system_url: required for connector_kind {self.connector_kind}")
        return self

    @field_validator("working_days")
    @classmethod
    def _some_working_day(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("a node needs at least one working day")
        return sorted(set(value))


class SkuSpec(Spec):
    sku: Identifier
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    unit_price: float = Field(default=0.0, ge=0, description="unit value")
    weight_kg: float | None = Field(default=None, ge=0)
    length_cm: float | None = Field(default=None, ge=0)
    width_cm: float | None = Field(default=None, ge=0)
    height_cm: float | None = Field(default=None, ge=0)
    ship_alone: bool = False
    oversize: bool = False
    active: bool = True


class SourcingScenario(StrEnum):
    """Mirrors sourcing.Scenario (domain imports nothing of sourcing)."""

    FASTEST = "fastest"
    CHEAPEST = "cheapest"
    LOCAL = "local"


# FulfilmentPolicy lives in domain.orders (an order carries one too); imported from here as before.
__all__ = ["FulfilmentPolicy"]


class ChannelSpec(Spec):
    """A channel and its stock pool: which nodes it may sell from (by type or id; none named:
    every node), and an optional share or cap of a node type's stock."""

    channel: ShortIdentifier
    name: str = Field(min_length=1, max_length=200)
    channel_type: OrderType
    ruleset: str | None = Field(default=None, max_length=64)
    default_scenario: SourcingScenario | None = None
    fulfilment_policy: FulfilmentPolicy = FulfilmentPolicy.SHIP_PARTIAL
    # Its ship-complete orders wait this long for every line, then ask a person or split.
    ship_complete_wait_seconds: float = Field(
        default=SHIP_COMPLETE_WAIT_SECONDS, gt=0, le=90 * 24 * 3600
    )
    ship_complete_then: ShipCompleteThen = "ask"
    # Its checkout may promise from incoming stock, dated (a pre-order waits for the receipt).
    allow_preorders: bool = False
    # Source with the inventory-aware bid prices the Schedule refreshes (services.bid_prices).
    inventory_aware: bool = False
    active: bool = True
    # Its home-delivery orders of one customer to one address at one node, allocated within
    # this many seconds of the first, ship as one parcel (0: never grouped; domain.parcels).
    consolidation_window_seconds: float = Field(
        default=0.0, ge=0, le=MAX_CONSOLIDATION_WINDOW_SECONDS
    )
    # Each allocation of its orders uses at most this many nodes (the ruleset's max_splits; None:
    # no limit); a ship-partial order's later allocations count afresh.
    max_shipments_per_order: int | None = Field(default=None, ge=1, le=MAX_SHIPMENTS_PER_ORDER)
    pool_node_types: list[NodeType] | None = None
    pool_node_ids: list[Identifier] | None = None
    share_by_node_type: dict[NodeType, float] = {}
    cap_by_node_type: dict[NodeType, int] = {}

    @field_validator("share_by_node_type")
    @classmethod
    def _shares_are_fractions(cls, value: dict[NodeType, float]) -> dict[NodeType, float]:
        for node_type, share in value.items():
            if not 0 <= share <= 1:
                raise ValueError(f"{node_type}: a share is between 0 and 1, not {share}")
        return value

    @field_validator("cap_by_node_type")
    @classmethod
    def _caps_are_counts(cls, value: dict[NodeType, int]) -> dict[NodeType, int]:
        for node_type, cap in value.items():
            if cap < 0:
                raise ValueError(f"{node_type}: a cap is a number of units, not {cap}")
        return value


class TransitBandSpec(Spec):
    max_km: float = Field(gt=0)
    days: int = Field(ge=0, le=60)


class CarrierServiceSpec(Spec):
    carrier: ShortIdentifier
    service: ShortIdentifier
    name: str = Field(min_length=1, max_length=200)
    transit_bands: list[TransitBandSpec] = Field(min_length=1)
    cutoff_time: str = Field(default="17:00", description="hand-over cut-off, HH:MM")
    active: bool = True

    _cutoff = field_validator("cutoff_time")(classmethod(lambda cls, v: _clock(v)))

    @model_validator(mode="after")
    def _bands_ascend(self) -> "CarrierServiceSpec":
        limits = [band.max_km for band in self.transit_bands]
        if limits != sorted(limits) or len(set(limits)) != len(limits):
            raise ValueError("transit_bands: max_km must increase from band to band")
        return self


class StockPositionSpec(Spec):
    """Opening stock at a node (the bulk import's stock file; feeds keep it current after)."""

    node_id: Identifier
    sku: Identifier
    on_hand: int = Field(ge=0)
    safety_override: int | None = Field(default=None, ge=0)


class Outcome(StrEnum):
    """What applying one specification did to its entity."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass
class Applied:
    """What applying a batch of specifications did: ids created and updated; the rest unchanged."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def outcome(self, entity_id: str) -> Outcome:
        if entity_id in self.created:
            return Outcome.CREATED
        return Outcome.UPDATED if entity_id in self.updated else Outcome.UNCHANGED
