"""The intake, support and callback API (FastAPI, under /v1)."""
