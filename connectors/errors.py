"""Connector errors: permanent ones will not succeed on retry; transient ones may."""


class ConnectorError(Exception):
    def __init__(self, system: str, message: str, status_code: int | None = None) -> None:
        self.system = system
        self.status_code = status_code
        super().__init__(f"{system}: {message}")


class TransientConnectorError(ConnectorError):
    """Timeouts, connection failures, 5xx, 429: worth retrying later."""


class PermanentConnectorError(ConnectorError):
    """The system refused the request itself (4xx): retrying the same request cannot help."""
