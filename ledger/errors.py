"""Ledger errors carry the keys of what could not be done."""


class LedgerError(Exception):
    code = "ledger_error"


class InsufficientStock(LedgerError):
    """A conditional reservation found less available than asked: someone else got there first."""

    code = "insufficient_stock"

    def __init__(self, node_id: str, sku: str, quantity: int) -> None:
        self.node_id = node_id
        self.sku = sku
        self.quantity = quantity
        super().__init__(f"{node_id} no longer has {quantity} x {sku} available")


class UnknownPosition(LedgerError):
    code = "unknown_position"

    def __init__(self, node_id: str, sku: str) -> None:
        self.node_id = node_id
        self.sku = sku
        super().__init__(f"no stock position for SKU {sku} at node {node_id}")


class NegativeStock(LedgerError):
    code = "negative_stock"

    def __init__(self, node_id: str, sku: str, delta: int) -> None:
        self.node_id = node_id
        self.sku = sku
        self.delta = delta
        super().__init__(
            f"adjusting {sku} at {node_id} by {delta} would leave on hand below what is reserved"
        )
