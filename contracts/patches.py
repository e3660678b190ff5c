"""Every `workflow.patched` / `workflow.deprecate_patch` id a workflow uses (docs/versioning.md).

A patch id is written into the history of every workflow that takes the new branch (a marker),
and replaying that history later looks the id up again: like the names in contracts/names.py,
the value is part of the Temporal contract, so it lives here and workflow code refers to the
member, never to a string. Values are `<workflow>-<change>` in kebab case, e.g.
`order-fraud-check-before-sourcing`. A value is never renamed and never reused: when a patch's
last trace is removed from workflow code, its value moves to RETIRED.
"""

from enum import StrEnum


class Patch(StrEnum):
    """The patches workflow code calls today, each with the release that introduced it and its
    stage: `patched` (old and new branch side by side) or `deprecated` (only the new branch, a
    `deprecate_patch` call left for histories that hold the marker)."""

    # The reliability audit's fixes (issue 12), one release: a shipment's truth is what its node
    # says (shipped after a move, shipped without picked, already shipped on cancel), a label
    # failure after pick cancels at the node, rejections after pick are acted on, no wait without
    # a deadline or a NeedsAttention flag, deliveries are published, exclusions reset on retry,
    # collection codes are secret. Release 2026-12 (issue 12), stage: patched.
    ORDER_AUDIT_2026_12 = "order-audit-2026-12-shipment-truth"
    # The promise as data (issue 13): the order's promised and ship-by dates are indexed as the
    # PromisedBy and ShipBy search attributes. Release 2026-12 (issue 13), stage: patched.
    ORDER_PROMISE_2026_12 = "order-promise-2026-12-indexed-dates"
    # Backorders that resolve themselves (issue 14): each exclusion of a node keeps its time and
    # is forgotten once older than OPENDOM_EXCLUSION_FORGET_SECONDS (the hourly re-check no
    # longer forgets them all), and an automatic retry keeps the exclusions still in force.
    # Release 2026-12 (issue 14), stage: patched.
    ORDER_BACKORDERS_2026_12 = "order-backorders-2026-12-exclusions-expire"
    # The housekeeping run ends with the backorder sweep: backordered orders whose stock has
    # arrived are retried. Release 2026-12 (issue 14), stage: patched.
    HOUSEKEEPING_BACKORDER_SWEEP = "housekeeping-backorder-sweep"
    # Ship-partial and ship-complete (issue 14): a ship-partial order reserves and ships the
    # lines that can go now and backorders the rest (PARTIALLY_BACKORDERED); a ship-complete
    # order waits for every line until its deadline, then asks a person or splits; a requested
    # delivery date holds the release to the node until the release day.
    # Release 2026-12 (issue 14), stage: patched.
    ORDER_PARTIAL_2026_12 = "order-partial-2026-12-ship-partial-requested-date"
    # Orders grouped into fewer parcels (issue 14, item 6): a home-delivery shipment of a
    # channel with a consolidation window joins its customer's parcel for that address and
    # node, is released when the parcel closes, shares its one label; a cancel or a move
    # leaves the parcel. Release 2026-12 (issue 14), stage: patched.
    ORDER_CONSOLIDATION_2026_12 = "order-consolidation-2026-12-parcel-groups"
    # Lines divided between nodes (issue 14, item 1): one line may travel in several shipments,
    # so an allocation takes off the unallocated list the very pieces it sourced (not every
    # piece of their line numbers), and a moved piece shipped late supersedes only shipments
    # allocated after its move (not the other pieces of its line).
    # Release 2026-12 (issue 14), stage: patched.
    ORDER_DIVIDED_LINES_2026_12 = "order-divided-lines-2026-12-pieces"
    # A pre-order's waits count from its promised date (issue 14 review): until then waiting
    # BACKORDERED is its plan, so the escalation to a person and a ship-complete deadline are
    # counted from that date, not from when it was backordered or submitted.
    # Release 2026-12 (issue 14), stage: patched.
    ORDER_PREORDER_WAIT_2026_12 = "order-preorder-wait-2026-12-from-promised-date"


# Patch ids no workflow calls any more: kept so none is ever given to a different change.
RETIRED: frozenset[str] = frozenset()
