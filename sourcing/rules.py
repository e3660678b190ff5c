"""Rulesets: which one applies to an order, and which nodes a rule leaves to the optimizer."""

from collections.abc import Sequence

from domain.network import CandidateNode
from domain.orders import OrderType
from sourcing.model import NodeProfile, Rule, Ruleset, SourcingOrder

ANY_NODE = Rule(name="any node")
DEFAULT_RULESET = Ruleset(name="default", rules=[ANY_NODE])


def ruleset_with_max_shipments(limit: int | None) -> Ruleset | None:
    """The ruleset of a channel whose orders leave from at most `limit` nodes: any node, within
    that many shipments; None (the default ruleset) when the channel sets no limit."""
    if limit is None:
        return None
    return Ruleset(
        name=f"at most {limit} shipments", rules=[Rule(name="any node", max_splits=limit)]
    )


def ruleset_shipment_limit(ruleset: Ruleset | None) -> int | None:
    """The most nodes any rule of the ruleset lets an order use (None: any; its later rules are
    fallbacks, so the loosest bounds what some rule could plan)."""
    if ruleset is None:
        return None
    limits = [1 if r.keep_lines_together else r.max_splits for r in ruleset.rules]
    return None if None in limits else max(limit for limit in limits if limit is not None)


def select_ruleset(
    rulesets: Sequence[Ruleset], channel: str | None, order_type: OrderType | None
) -> Ruleset:
    """The first ruleset that applies (list specific ones first), else the permissive default."""
    return next((r for r in rulesets if r.applies_to(channel, order_type)), DEFAULT_RULESET)


def rejection(
    order: SourcingOrder,
    rule: Rule,
    node: CandidateNode,
    profile: NodeProfile | None,
    is_pickup_store: bool,
) -> str | None:
    """Why this node may not serve the order under this rule, distance aside, or None."""
    if node.node_id in order.excluded_nodes:
        return "excluded by the order"
    if profile is not None and profile.at_capacity():
        return f"at daily capacity ({profile.current_load}/{profile.daily_capacity})"
    if not (node.can_ship or (is_pickup_store and node.can_pickup)):
        return "cannot ship"
    if rule.node_types is not None and node.node_type not in rule.node_types:
        return f"rule '{rule.name}': node type {node.node_type} not allowed"
    if rule.node_ids is not None and node.node_id not in rule.node_ids:
        return f"rule '{rule.name}': outside the rule's node group"
    return None


def distance_rejection(rule: Rule, distance_km: float) -> str:
    return f"rule '{rule.name}': {distance_km:.0f} km is beyond {rule.max_distance_km:.0f} km"


def shipment_limit(order: SourcingOrder, rule: Rule) -> int | None:
    limits = [order.shipment_limit(), rule.max_splits, 1 if rule.keep_lines_together else None]
    present = [limit for limit in limits if limit is not None]
    return min(present) if present else None
