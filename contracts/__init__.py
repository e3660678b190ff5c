"""The Temporal contract: every workflow, activity, signal, update and query name, every workflow
id format, every payload model, and typed starters.

The API, the worker, workflows and activities all meet here, so one can follow an order from
the API into the workflow by name. Payloads own their fields (none subclasses a connector's wire
model): a partner API changing must not change what a workflow history holds. Changing a name,
an id format or a payload field changes what running workflows replay: see docs/versioning.md."""
