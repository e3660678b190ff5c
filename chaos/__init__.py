"""The chaos harness: orders through the whole stack while its parts fail, then the invariants."""
