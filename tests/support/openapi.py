"""The published OpenAPI document, committed as tests/support/openapi.json, so an API change is a
reviewed diff and never a refactor's side effect (tests/unit/test_openapi_snapshot.py).

After an intended API change: `python -m tests.support.openapi --write`, and commit the JSON
with the change. Without `--write` it prints what differs from the committed document."""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from api.app import create_app
from config import Settings

SNAPSHOT = Path(__file__).with_name("openapi.json")


def current_document() -> dict[str, Any]:
    """What `GET /openapi.json` serves: built from the routes, no server or database started."""
    return create_app(Settings()).openapi()


def committed_document() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text())


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Each place the documents differ, as `+ path`, `- path` or `~ path: old -> new`."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new)):
            where = f"{path}/{key}"
            if key not in old:
                found.append(f"+ {where}")
            elif key not in new:
                found.append(f"- {where}")
            else:
                found += differences(old[key], new[key], where)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, (o, n) in enumerate(zip(old, new, strict=True))
            for d in differences(o, n, f"{path}[{i}]")
        ]
    if old != new:
        return [f"~ {path}: {json.dumps(old)[:120]} -> {json.dumps(new)[:120]}"]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the committed document")
    args = parser.parse_args()
    document = current_document()
    if args.write:
        SNAPSHOT.write_text(render(document))
        print(f"wrote {SNAPSHOT}")
        return 0
    found = differences(committed_document(), document)
    print("\n".join(found) or "no difference")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
