"""One home per unit of work (load, decide, write): allocation, checkout, feeds, orders, network.

Services take a plain `Session` or `Engine`, raise `DomainError` subclasses, and know nothing of
FastAPI or Temporal. Routes and activities are thin adapters around them: parse, authorize, call
the service, map the result."""
