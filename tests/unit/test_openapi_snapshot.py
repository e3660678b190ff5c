"""The OpenAPI document the API publishes is the committed one (tests/support/openapi.json): a
refactor cannot rename a schema, drop a default or change a route's shape without a reviewed
diff. After an intended API change: `python -m tests.support.openapi --write`."""

from tests.support.openapi import committed_document, current_document, differences


def test_published_openapi_document_is_the_committed_one() -> None:
    found = differences(committed_document(), current_document())
    assert not found, (
        "the OpenAPI document changed; if intended, run `python -m tests.support.openapi "
        "--write` and commit tests/support/openapi.json:\n" + "\n".join(found)
    )
