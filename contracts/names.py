"""Every Temporal name OpenDOM uses, one enum per kind, used on both sides of each call.

The values are what running workflows' histories and the Temporal UI hold: never change one
without the versioning rule (docs/versioning.md)."""

from enum import StrEnum


class WorkflowName(StrEnum):
    ORDER = "OrderWorkflow"
    NODE_OUTAGE = "NodeOutage"
    HOUSEKEEPING = "InventoryHousekeeping"
    BID_PRICE_REFRESH = "BidPriceRefresh"


class ActivityName(StrEnum):
    # ledger and read model (local activities of the order workflow)
    ALLOCATE_STOCK = "allocate_stock"
    RELEASE_RESERVATIONS = "release_reservations"
    FULFIL_RESERVATIONS = "fulfil_reservations"
    RECORD_SHIPPED_AFTER_MOVE = "record_shipped_after_move"
    PROJECT_ORDER = "project_order"
    # node systems and carriers
    RELEASE_TO_NODE = "release_to_node"
    CANCEL_AT_NODE = "cancel_at_node"
    DISPATCH_AT_NODE = "dispatch_at_node"
    BUY_LABEL = "buy_label"
    # housekeeping
    EXPIRE_HOLDS = "expire_holds"
    PUBLISH_AVAILABILITY_EVENTS = "publish_availability_events"
    LIST_FEED_SOURCES = "list_feed_sources"
    FETCH_STOCK_DELTAS = "fetch_stock_deltas"
    APPLY_PULLED_DELTAS = "apply_pulled_deltas"
    # backordered orders whose stock arrived are retried (issue 14)
    SWEEP_BACKORDERS = "sweep_backorders"
    # node outage and node health
    FIND_ORDERS_AT_NODE = "find_orders_at_node"
    MOVE_ORDER_AWAY = "move_order_away"
    DEGRADE_UNHEALTHY_NODES = "degrade_unhealthy_nodes"
    # inventory-aware bid prices
    REFRESH_BID_PRICES = "refresh_bid_prices"
    # orders grouped into fewer parcels (issue 14): join and leave are local activities of the
    # order workflow, the parcel's label a regular one (it may call the carrier)
    JOIN_PARCEL = "join_parcel"
    LEAVE_PARCEL = "leave_parcel"
    PARCEL_LABEL = "parcel_label"


class OrderSignal(StrEnum):
    NODE_EVENT = "node_event"


class OrderUpdate(StrEnum):
    CANCEL = "cancel"
    RETRY = "retry"
    REALLOCATE = "reallocate"
    MARK_SHIPPED = "mark_shipped"
    # A delivery scan, taken and published before it returns: a signal could land after the
    # workflow's last publish and be lost with the run (audit M2); an update is either taken or
    # refused because the run has closed, and then the read model records it.
    TAKE_DELIVERY = "take_delivery"
    ACKNOWLEDGE = "acknowledge"


class OrderQuery(StrEnum):
    STATE = "state"
