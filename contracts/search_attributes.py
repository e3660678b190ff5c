"""Custom search attributes ops filter orders by in the Temporal UI; registered at server start."""

from temporalio.common import SearchAttributeKey

ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
CHANNEL = SearchAttributeKey.for_keyword("Channel")
ORDER_TYPE = SearchAttributeKey.for_keyword("OrderType")
PRIORITY = SearchAttributeKey.for_int("Priority")
FULFILLMENT_NODES = SearchAttributeKey.for_keyword_list("FulfillmentNodes")
# True while a person must act on the order (OrderState.attention says why): ops filter
# `NeedsAttention = true` in the Temporal UI.
NEEDS_ATTENTION = SearchAttributeKey.for_bool("NeedsAttention")

# The promise as dates (midnight UTC of the day): `PromisedBy < "2026-12-04T00:00:00Z" AND
# OrderStatus != "COMPLETED"` lists the orders late against their promise.
PROMISED_BY = SearchAttributeKey.for_datetime("PromisedBy")
SHIP_BY = SearchAttributeKey.for_datetime("ShipBy")

ALL = (
    ORDER_STATUS,
    CHANNEL,
    ORDER_TYPE,
    PRIORITY,
    FULFILLMENT_NODES,
    NEEDS_ATTENTION,
    PROMISED_BY,
    SHIP_BY,
)


def server_flags() -> list[str]:
    """`--search-attribute` flags for `temporal server start-dev`."""
    kinds = {
        ORDER_STATUS: "Keyword",
        CHANNEL: "Keyword",
        ORDER_TYPE: "Keyword",
        PRIORITY: "Int",
        FULFILLMENT_NODES: "KeywordList",
        NEEDS_ATTENTION: "Bool",
        PROMISED_BY: "Datetime",
        SHIP_BY: "Datetime",
    }
    return [
        arg for key, kind in kinds.items() for arg in ("--search-attribute", f"{key.name}={kind}")
    ]
