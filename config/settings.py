"""One place for configuration, read from the environment (prefix OPENDOM_ or the plain names)."""

from enum import StrEnum

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Mode(StrEnum):
    """How the processes treat the ledger's schema and keys (OPENDOM_MODE).

    - embedded (default): the API and the worker migrate the database at start; `opendom up`
      issues demo keys. The dev stack and the tests run this way.
    - production: nothing migrates at start: the API and the worker check the schema and
      refuse to start on a database that `opendom db upgrade` has not brought to this code's
      revision. No demo key is ever issued; the first admin key comes from `opendom init`."""

    EMBEDDED = "embedded"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENDOM_", extra="ignore")

    mode: Mode = Mode.EMBEDDED

    database_url: str = Field(
        default="sqlite:///.state/opendom.db",
        validation_alias=AliasChoices("DATABASE_URL", "OPENDOM_DATABASE_URL"),
    )
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "opendom-orders"
    api_url: str = "http://127.0.0.1:8000"
    carrier_url: str = "http://127.0.0.1:8100"
    # Multiplies the default per-node-type SLAs: 1.0 in production, small in demos and tests.
    sla_scale: float = Field(default=1.0, gt=0)
    # Seconds of simulated work per node step (accept, pick, ship); 0 answers at once.
    simulator_latency_seconds: float = Field(default=0.5, ge=0)
    simulator_reject_rate: float = Field(default=0.0, ge=0, le=1)
    simulator_failure_rate: float = Field(default=0.0, ge=0, le=1)
    simulator_timeout_rate: float = Field(default=0.0, ge=0, le=1)
    simulator_duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    simulator_seed: int | None = None
    simulator_api_key: str | None = None  # the gateway key the simulators call back with
    simulator_signing_secret: str | None = None
    # The node-health rule: degrade a node that failed at least `min_incidents` shipments and at
    # least `max_incident_share` of those it handled in the window (domain/node_health.py).
    node_health_window_seconds: float = Field(default=900, gt=0)
    node_health_min_incidents: int = Field(default=3, ge=1)
    node_health_max_incident_share: float = Field(default=0.5, gt=0, le=1)
    # ... and one that shipped at least `min_incidents` and this share of them after their
    # ship-by date (a node that is never late is judged as before).
    node_health_max_late_share: float = Field(default=0.5, gt=0, le=1)
    # How much of one SKU a channel's active checkout holds may keep: the greater of this share
    # of its sellable units and the units below (ledger.holds.HoldLimit; a hold beyond it is a
    # 409 hold_limit_exceeded).
    max_held_share_per_channel: float = Field(default=0.5, gt=0, le=1)
    held_units_always_allowed: int = Field(default=10, ge=0)
    # How long a support action (cancel, retry, reallocate) waits for the order's workflow before
    # answering 202 "in progress" (api.workflow_calls.run_update): a cancel waits for
    # compensation at the node, which a partner outage can hold up for minutes.
    support_update_timeout_seconds: float = Field(default=15, gt=0)
    # How often holds expire, polled feeds are pulled and availability events are published.
    housekeeping_every_seconds: float = Field(default=10, gt=0)
    # Backorders that resolve themselves (services.backorders): each housekeeping run retries at
    # most this many backordered orders whose stock has arrived, highest priority and oldest
    # first, so a large receipt re-sources the waiting orders at a bounded rate (with the
    # default interval, 5 orders a second at most) ...
    backorder_sweep_batch: int = Field(default=50, ge=1)
    # ... reading at most this many backordered orders per run (priority, then age order).
    backorder_sweep_scan: int = Field(default=2000, ge=1)
    # A node that rejected or timed out an order's shipment is excluded from that order for this
    # long, then may serve it again (orders started on release 2026-12, issue 14, or later).
    exclusion_forget_seconds: float = Field(default=24 * 3600, gt=0)
    # How long a day lasts for a requested delivery date's release timer (OPENDOM_RELEASE_DAY_SECONDS):
    # a day, except in tests, which shorten it to see an order released on its release day.
    release_day_seconds: float = Field(default=24 * 3600, gt=0)
    # How often the inventory-aware policy's bid prices are re-solved (services.bid_prices).
    bid_price_interval_seconds: float = Field(default=3600, gt=0)
    # On SIGTERM the worker stops polling and gives in-flight activities this long to finish
    # before cancelling them; a container's stop grace period must be longer.
    worker_shutdown_seconds: float = Field(default=20, gt=0)
    # Run workflow code in Temporal's sandbox. Off in production for throughput
    # (docs/worker-tuning.md); the lifecycle tests run every workflow inside it, so code the
    # sandbox would refuse fails CI before it ships.
    workflow_sandbox: bool = False
    # Requests per second each API key may make to one API process (a token bucket per key, in
    # process: N processes let a key make N times this), and the burst it may spend at once.
    # 0 turns the limit off. Channel and node keys carry the traffic (checkout checks, node
    # callbacks): their own, higher limit, above what one process serves, so it only stops a
    # runaway client; people's and tools' keys (admin, ops, support) get the lower one.
    rate_limit_per_second: float = Field(default=1000, ge=0)
    rate_limit_burst: int = Field(default=2000, ge=1)
    traffic_rate_limit_per_second: float = Field(default=20_000, ge=0)
    traffic_rate_limit_burst: int = Field(default=40_000, ge=1)
    # The largest request body the API reads; larger ones are refused (413) before parsing.
    # A 500,000-position snapshot fits.
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)

    @property
    def migrates_at_start(self) -> bool:
        return self.mode == Mode.EMBEDDED


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
