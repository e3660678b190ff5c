"""Temporal activities: the only place where orders touch the ledger, node systems and carriers."""
