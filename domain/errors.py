"""Typed domain errors: they carry the data a caller needs to explain or act on them."""

from domain.orders import OrderLine


class DomainError(Exception):
    code = "domain_error"


class NoSourceAvailable(DomainError):
    code = "no_source_available"

    def __init__(self, lines: list[OrderLine], excluded_nodes: list[str]) -> None:
        self.lines = lines
        self.excluded_nodes = excluded_nodes
        skus = ", ".join(f"line {ln.line_no} ({ln.quantity} x {ln.sku})" for ln in lines)
        super().__init__(f"no eligible node can serve {skus}")


class UnknownReference(DomainError):
    """An order names a SKU or node the network does not know."""

    code = "unknown_reference"

    def __init__(self, field: str, values: list[str]) -> None:
        self.field = field
        self.values = values
        super().__init__(f"{field}: unknown {', '.join(values)}")
