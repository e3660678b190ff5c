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

ALL = (ORDER_STATUS, CHANNEL, ORDER_TYPE, PRIORITY, FULFILLMENT_NODES, NEEDS_ATTENTION)


def server_flags() -> list[str]:
    """`--search-attribute` flags for `temporal server start-dev`."""
    kinds = {
        ORDER_STATUS: "Keyword",
        CHANNEL: "Keyword",
        ORDER_TYPE: "Keyword",
        PRIORITY: "Int",
        FULFILLMENT_NODES: "KeywordList",
        NEEDS_ATTENTION: "Bool",
    }
    return [
        arg for key, kind in kinds.items() for arg in ("--search-attribute", f"{key.name}={kind}")
    ]
