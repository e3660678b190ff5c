"""Temporal workflows: they orchestrate; the decisions live in `domain`."""
