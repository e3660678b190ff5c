"""`opendom channel put` and `list` with a channel's maximum shipments per order, as a user runs
them: the real command in a subprocess, on a SQLite file."""

import json
from pathlib import Path

from tests.integration.test_cli_configuration import _opendom, database  # noqa: F401


def test_a_channel_put_with_a_shipment_limit_is_listed_with_it(
    database: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    channels = tmp_path / "channels.json"
    channels.write_text(
        json.dumps(
            [
                {"channel": "b2b", "name": "B2B", "channel_type": "b2b",
                 "max_shipments_per_order": 2},
                {"channel": "web", "name": "Web", "channel_type": "dtc"},
            ]
        )
    )  # fmt: skip
    refused = tmp_path / "refused.json"
    refused.write_text(
        json.dumps({"channel": "b2c", "name": "?", "channel_type": "dtc",
                    "max_shipments_per_order": 51})
    )  # fmt: skip

    put = _opendom(database, "channel", "put", str(channels))
    bad = _opendom(database, "channel", "put", str(refused))
    listed = _opendom(database, "channel", "list")

    assert put.returncode == 0, put.stderr
    assert bad.returncode != 0 and "max_shipments_per_order" in bad.stderr
    lines = listed.stdout.splitlines()
    assert any(ln.startswith("b2b") and "at most 2 shipments" in ln for ln in lines), lines
    assert any(ln.startswith("web") and "at most" not in ln for ln in lines), lines
