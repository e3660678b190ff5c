"""Pure tests: no database, no Temporal, no HTTP server. `make test-fast` runs these alone."""
