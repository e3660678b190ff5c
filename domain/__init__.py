"""Pure order-management domain: vocabulary, models and decisions. No I/O, no Temporal, no database."""
