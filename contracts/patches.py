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


# Patch ids no workflow calls any more: kept so none is ever given to a different change.
RETIRED: frozenset[str] = frozenset()
