"""The ledger and the API on real databases (SQLite and PostgreSQL), without Temporal."""
