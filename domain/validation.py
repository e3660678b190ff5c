"""Order rules that a schema cannot express. The API refuses with these messages (422) and the
workflow re-checks them, so an order started by another client is held to the same rules."""

from domain.orders import DeliveryMethod, OrderLine


def order_problems(
    lines: list[OrderLine], delivery_method: DeliveryMethod, pickup_node_id: str | None
) -> list[str]:
    problems = []
    if not lines:
        problems.append("lines: an order needs at least one line")
    seen: set[int] = set()
    for line in lines:
        if line.line_no in seen:
            problems.append(f"lines: line_no {line.line_no} appears more than once")
        seen.add(line.line_no)
    if delivery_method == DeliveryMethod.PICKUP and not pickup_node_id:
        problems.append("pickup_node_id: required when delivery_method is pickup")
    if delivery_method == DeliveryMethod.HOME and pickup_node_id:
        problems.append("pickup_node_id: only allowed when delivery_method is pickup")
    return problems
