"""Helpers shared by the tests: networks, order payloads, ledger checks."""
