"""The whole stack: a real Temporal server, worker, API and simulators over real HTTP."""
