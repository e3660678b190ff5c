"""Workflow and schedule id formats. An order's workflow id is its order id: the idempotency key
of intake (the same channel and external id never start a second order)."""

HOUSEKEEPING_SCHEDULE_ID = "inventory-housekeeping"
HOUSEKEEPING_RUN_ID = "inventory-housekeeping-run"
BID_PRICE_SCHEDULE_ID = "bid-price-refresh"
BID_PRICE_RUN_ID = "bid-price-refresh-run"


def order_workflow_id(channel: str, external_id: str) -> str:
    return f"order-{channel}-{external_id}"


def node_outage_workflow_id(node_id: str, trigger: str) -> str:
    """One fan-out per status change: `trigger` names the change (a person's request, or
    `auto-<change id>` for the node-health rule), so a retry never starts a second one."""
    return f"node-outage-{node_id}-{trigger}"


def automatic_outage_trigger(change_id: int) -> str:
    return f"auto-{change_id}"
