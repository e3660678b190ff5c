"""A node's operational status and what a change of it does to the orders already there."""

from enum import StrEnum

from domain.errors import DomainError


class NodeStatus(StrEnum):
    UP = "up"
    DEGRADED = "degraded"  # finishes what it has, takes nothing new
    DOWN = "down"


class InvalidStatusChange(DomainError):
    code = "invalid_request"


def reallocates_unpicked(status: NodeStatus, asked: bool | None) -> bool:
    """Whether a status change moves the node's unpicked orders away: when ops ask, else when the
    node goes down (degraded finishes what it has and takes nothing new). Never when it comes up."""
    if status == NodeStatus.UP:
        if asked:
            raise InvalidStatusChange("reallocate_unpicked: a node coming up keeps its orders")
        return False
    return asked if asked is not None else status == NodeStatus.DOWN


def takes_new_orders(status: NodeStatus) -> bool:
    """Sourcing only considers nodes that are up."""
    return status == NodeStatus.UP
