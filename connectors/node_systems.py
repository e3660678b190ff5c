"""Where a node's system answers, from how the node is configured to be reached."""

from urllib.parse import quote

from domain.configuration import ConnectorKind


def node_system_url(node_id: str, connector_kind: str, system_url: str, simulator_url: str) -> str:
    """The base URL the node connectors call for this node.

    A `simulator` node stores no URL: it is the embedded simulators' (the worker's
    OPENDOM_CARRIER_URL) `/nodes/<node_id>`, so the same network file runs on whatever port
    `opendom up --simulators` uses. Any other kind is called at its stored system_url."""
    if ConnectorKind(connector_kind) == ConnectorKind.SIMULATOR:
        return f"{simulator_url.rstrip('/')}/nodes/{quote(node_id, safe='')}"
    return system_url
