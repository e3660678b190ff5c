"""One home per unit of work (load, decide, write): allocation, checkout, feeds, housekeeping,
orders, network; `references` holds the refusal of unknown SKUs they share.

Services take a plain `Session` or `Engine`, raise `DomainError` subclasses, and know nothing of
FastAPI, Temporal or `contracts/` (import-linter checks it). Routes and activities are thin
adapters around them: parse, authorize, call the service, map the result. Their input and result
types are their own (dataclasses, or protocols where copying a big payload would cost), so an
activity maps its contracts payload to them and back."""
