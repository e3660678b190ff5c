"""Importing and exporting a network as files on SQLite and PostgreSQL: whole or nothing, every
refused line named, idempotent, round trips byte for byte, and the stock ledger balances."""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from api.app import create_app
from config import Settings
from ledger import stock
from ledger.audit import ledger_imbalances
from ledger.availability_cache import AvailabilityCache
from ledger.db import create_schema, make_engine, transaction
from ledger.tables import (
    CarrierServiceRow,
    Channel,
    ConfigChange,
    Node,
    Sku,
    StockMovement,
    StockPosition,
)
from security.keys import issue_key
from security.roles import Role
from services.network_files import NetworkFilesRefused, export_folder, import_folder
from stack.servers import ServerThread

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "network"
ACTOR = "cli:tests"


def _count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(table)).scalar_one()


def _counts(engine: Engine) -> dict[str, int]:
    tables = (Node, Sku, Channel, CarrierServiceRow, StockPosition, StockMovement, ConfigChange)
    return {t.__name__: _count(engine, t) for t in tables}


def _network(tmp_path: Path, name: str = "network") -> Path:
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("*.md"))
    return folder


def _edit_line(path: Path, line: int, change: Callable[[str], str]) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[line - 1] = change(lines[line - 1])
    path.write_text("\n".join(lines), encoding="utf-8")


def _balanced(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return ledger_imbalances(session)


def test_the_files_import_and_importing_them_again_changes_nothing(
    ledger_engine: Engine, tmp_path: Path
) -> None:
    folder = _network(tmp_path)
    first = import_folder(ledger_engine, folder, ACTOR)
    assert [str(f) for f in first.files][:2] == [
        "carriers.csv: 5 created, 0 updated, 0 unchanged",
        "nodes.csv: 8 created, 0 updated, 0 unchanged",
    ]
    counts = _counts(ledger_engine)
    assert counts["Node"] == 8 and counts["Sku"] == 27 and counts["Channel"] == 3
    assert counts["StockPosition"] == first.files[-1].created > 100
    assert _balanced(ledger_engine) == []
    again = import_folder(ledger_engine, folder, ACTOR)
    assert not again.changed
    assert all(f.created == f.updated == 0 and f.unchanged > 0 for f in again.files)
    assert _counts(ledger_engine) == counts  # no audit entry, no stock movement


def test_one_bad_line_in_each_file_applies_nothing_and_names_every_refused_line(
    ledger_engine: Engine, tmp_path: Path
) -> None:
    folder = _network(tmp_path)
    _edit_line(folder / "carriers.csv", 3, lambda s: s.replace("700:1", "700:x"))
    _edit_line(folder / "nodes.csv", 4, lambda s: s.replace(",warehouse,", ",shop,"))
    _edit_line(folder / "skus.csv", 5, lambda s: s.replace(",79.00,", ",-3,"))
    _edit_line(folder / "channels.csv", 2, lambda s: s.replace(",dtc,", ",retail,"))
    _edit_line(folder / "stock.csv", 7, lambda s: s.split(",")[0] + ",NO-SUCH-SKU,5,")
    with pytest.raises(NetworkFilesRefused) as refused:
        import_folder(ledger_engine, folder, ACTOR)
    assert refused.value.refused == [
        "carriers.csv:3: transit_bands.days: 'x' is not a whole number",
        "nodes.csv:4: node_type: unknown node type 'shop'; "
        "one of warehouse, store, dc, 3pl, supplier",
        "skus.csv:5: unit_price: must be at least 0, not -3",
        "channels.csv:2: channel_type: unknown order type 'retail'; "
        "one of dtc, b2b, marketplace, sales_rep",
        "stock.csv:7: sku: unknown SKU 'NO-SUCH-SKU' (not in the database nor skus.csv)",
    ]
    assert set(_counts(ledger_engine).values()) == {0}


def test_a_refusal_found_while_applying_rolls_back_the_files_applied_before_it(
    ledger_engine: Engine, tmp_path: Path
) -> None:
    folder = _network(tmp_path)
    import_folder(ledger_engine, folder, ACTOR)
    with transaction(ledger_engine) as session:
        stock.reserve(
            session,
            [stock.ReservationRequest("O-1", "S-1", 1, "EU-DC-LYON", "ALP-TEE-MERINO-S", 30)],
        )
    counts = _counts(ledger_engine)
    # A new node and a renamed SKU, then a stock line below what is reserved: that refusal is
    # found while applying stock, after the nodes and SKUs were written in the transaction.
    with (folder / "nodes.csv").open("a", encoding="utf-8") as nodes:
        nodes.write("EU-NEW,New node,warehouse,45,4,,,,,true,false,false,10,50,0|1|2|3|4,,"
                    "14:00,UTC,0,,,,,simulator,,,true\n")  # fmt: skip
    _edit_line(folder / "skus.csv", 2, lambda s: s.replace("Merino tee S", "Merino tee small"))
    lines = (folder / "stock.csv").read_text(encoding="utf-8").splitlines()
    place = next(
        i for i, ln in enumerate(lines, 1) if ln.startswith("EU-DC-LYON,ALP-TEE-MERINO-S,")
    )
    _edit_line(folder / "stock.csv", place, lambda s: "EU-DC-LYON,ALP-TEE-MERINO-S,10,")
    with pytest.raises(NetworkFilesRefused) as refused:
        import_folder(ledger_engine, folder, ACTOR)
    assert refused.value.refused == [
        f"stock.csv:{place}: on_hand: 10 is below the 30 units reserved or held at EU-DC-LYON "
        "for ALP-TEE-MERINO-S (reserved 30, held 0)"
    ]
    assert _counts(ledger_engine) == counts
    with Session(ledger_engine) as session:
        assert session.get(Node, "EU-NEW") is None
        assert session.get(Sku, "ALP-TEE-MERINO-S").name == "Merino tee S"


def test_check_validates_everything_and_applies_nothing(
    ledger_engine: Engine, tmp_path: Path
) -> None:
    outcome = import_folder(ledger_engine, _network(tmp_path), ACTOR, check=True)
    assert not outcome.applied
    assert outcome.files[1].created == 8 and outcome.files[-1].created > 100
    assert set(_counts(ledger_engine).values()) == {0}


def test_export_import_export_is_byte_identical_and_reimporting_an_export_changes_nothing(
    ledger_engine: Engine, tmp_path: Path
) -> None:
    import_folder(ledger_engine, _network(tmp_path), ACTOR)
    for fmt in ("csv", "json"):
        first = tmp_path / f"first-{fmt}"
        export_folder(ledger_engine, first, fmt)  # type: ignore[arg-type]
        counts = _counts(ledger_engine)
        assert not import_folder(ledger_engine, first, ACTOR).changed
        assert _counts(ledger_engine) == counts
        empty = make_engine(f"sqlite:///{tmp_path / f'empty-{fmt}.db'}")
        create_schema(empty)
        import_folder(empty, first, ACTOR)
        second = tmp_path / f"second-{fmt}"
        export_folder(empty, second, fmt)  # type: ignore[arg-type]
        empty.dispose()
        names = sorted(p.name for p in first.iterdir())
        assert names == sorted(
            f"{k}.{fmt}" for k in ("carriers", "nodes", "skus", "channels", "stock")
        )
        for name in names:
            assert (first / name).read_bytes() == (second / name).read_bytes(), name


def _stock_file(folder: Path, rows: list[str]) -> None:
    for path in folder.iterdir():
        path.unlink()
    (folder / "stock.csv").write_text("node_id,sku,on_hand,safety_override\n" + "".join(rows))


def test_stock_is_set_as_a_snapshot_sets_it_and_never_below_reserved_and_held(
    ledger_engine: Engine, tmp_path: Path
) -> None:
    folder = _network(tmp_path)
    import_folder(ledger_engine, folder, ACTOR)
    with transaction(ledger_engine) as session:
        stock.reserve(
            session,
            [stock.ReservationRequest("O-1", "S-1", 1, "EU-DC-LYON", "ALP-TEE-MERINO-S", 30)],
        )
    movements = _count(ledger_engine, StockMovement)
    _stock_file(folder, ["EU-DC-LYON,ALP-TEE-MERINO-S,29,\n", "EU-DC-LYON,ALP-TEE-MERINO-M,1,\n"])
    with pytest.raises(NetworkFilesRefused) as refused:
        import_folder(ledger_engine, folder, ACTOR)
    assert refused.value.refused == [
        "stock.csv:2: on_hand: 29 is below the 30 units reserved or held at EU-DC-LYON for "
        "ALP-TEE-MERINO-S (reserved 30, held 0)"
    ]
    assert _count(ledger_engine, StockMovement) == movements
    _stock_file(folder, ["EU-DC-LYON,ALP-TEE-MERINO-S,40,3\n"])
    (outcome,) = import_folder(ledger_engine, folder, ACTOR).files
    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 1, 0)
    with Session(ledger_engine) as session:
        position = stock.get_position(session, "EU-DC-LYON", "ALP-TEE-MERINO-S")
    assert (position.on_hand, position.reserved, position.safety_override) == (40, 30, 3)
    assert position.safety_stock == 3
    assert _count(ledger_engine, StockMovement) == movements + 1  # the difference, one movement
    assert _balanced(ledger_engine) == []


def test_stock_naming_a_node_in_no_file_and_not_in_the_database_is_refused(
    ledger_engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "only-stock"
    folder.mkdir()
    _stock_file(folder, ["NOWHERE,TEE,5,\n"])
    with pytest.raises(NetworkFilesRefused) as refused:
        import_folder(ledger_engine, folder, ACTOR)
    assert refused.value.refused == [
        "stock.csv:2: node_id: unknown node 'NOWHERE' (not in the database nor an earlier file)",
        "stock.csv:2: sku: unknown SKU 'TEE' (not in the database nor an earlier file)",
    ]


def test_a_kind_given_as_csv_and_json_is_refused(tmp_path: Path, ledger_engine: Engine) -> None:
    folder = _network(tmp_path)
    (folder / "skus.json").write_text("[]")
    with pytest.raises(NetworkFilesRefused) as refused:
        import_folder(ledger_engine, folder, ACTOR)
    assert refused.value.refused == ["skus: both skus.csv and skus.json: keep one"]


def test_the_availability_cache_sees_an_imported_node_and_sku_without_a_restart(
    ledger_engine: Engine, tmp_path: Path
) -> None:
    cache = AvailabilityCache(ledger_engine, refresh_seconds=0.05, network_refresh_seconds=0.1)
    cache.start()
    try:
        _wait(lambda: cache.ready)
        assert not cache.knows("ALP-TEE-MERINO-S")
        import_folder(ledger_engine, _network(tmp_path), ACTOR)
        _wait(
            lambda: (
                "EU-DC-LYON" in [c.node_id for c in cache.candidates(["ALP-TEE-MERINO-S"], "web")]
            )
        )
        assert cache.full_reloads == 0
    finally:
        cache.stop()


def test_a_long_movement_tail_reloads_the_cache_whole(
    ledger_engine: Engine, tmp_path: Path
) -> None:
    cache = AvailabilityCache(
        ledger_engine, refresh_seconds=0.05, network_refresh_seconds=0.1, full_reload_movements=10
    )
    cache.start()
    try:
        _wait(lambda: cache.ready)
        import_folder(ledger_engine, _network(tmp_path), ACTOR)  # ~200 opening movements
        _wait(lambda: cache.knows("ALP-TEE-MERINO-S") and cache.full_reloads >= 1)
        nodes = {c.node_id for c in cache.candidates(["ALP-TEE-MERINO-S"], "web")}
        assert "EU-DC-LYON" in nodes
    finally:
        cache.stop()


def _wait(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_opendom_network_import_exits_2_naming_refused_lines_and_applies_nothing(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    folder = _network(tmp_path)
    _edit_line(folder / "nodes.csv", 3, lambda s: s.replace(",warehouse,", ",shop,"))
    env = {**os.environ, "DATABASE_URL": url}
    command = [sys.executable, "-m", "cli", "network", "import", str(folder)]
    refused = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.splitlines() == [
        "nodes.csv:3: node_type: unknown node type 'shop'; "
        "one of warehouse, store, dc, 3pl, supplier",
        "opendom: nothing applied: 1 refused line",
    ]
    engine = make_engine(url)
    assert _count(engine, Node) == 0
    _edit_line(folder / "nodes.csv", 3, lambda s: s.replace(",shop,", ",warehouse,"))
    applied = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert "nodes.csv: 8 created, 0 updated, 0 unchanged" in applied.stdout.splitlines()
    again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    assert "nodes.csv: 0 created, 0 updated, 8 unchanged" in again.stdout.splitlines()
    assert "nothing changed" in again.stdout
    assert _count(engine, Node) == 8
    engine.dispose()


def test_the_api_applies_one_file_and_answers_422_listing_every_refused_line(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    engine = make_engine(url)
    create_schema(engine)
    with transaction(engine) as session:
        ops = issue_key(session, "ops", Role.OPS)
        channel = issue_key(session, "web", Role.CHANNEL, channel="web-eu")
    api = ServerThread(
        create_app(Settings(database_url=url, temporal_address="127.0.0.1:1"))
    ).start()
    try:
        with httpx.Client(base_url=api.url, headers={"authorization": f"Bearer {ops.key}"}) as http:
            nodes = (EXAMPLE / "nodes.csv").read_bytes()
            answer = http.put("/v1/network/files/nodes.csv", content=nodes,
                              headers={"content-type": "text/csv"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"file": "nodes.csv", "created": 8, "updated": 0,
                                     "unchanged": 0, "applied": True}  # fmt: skip
            bad = b"node_id,sku,on_hand\nEU-DC-LYON,NONE,1\nEU-DC-LYON,NONE2,-1\n"
            answer = http.put("/v1/network/files/stock.csv", content=bad)
            assert answer.status_code == 422
            assert answer.json()["refused"] == [
                "stock.csv:2: sku: unknown SKU 'NONE' (not in the database nor an earlier file)",
                "stock.csv:3: on_hand: must be at least 0, not -1",
            ]
            exported = http.get("/v1/network/files/nodes.csv")
            assert exported.status_code == 200
            assert exported.text.splitlines()[0].startswith("node_id,name,node_type")
            assert http.put("/v1/network/files/shops.csv", content=b"").status_code == 404
        forbidden = httpx.put(f"{api.url}/v1/network/files/nodes.csv", content=nodes,
                              headers={"authorization": f"Bearer {channel.key}"})  # fmt: skip
        assert forbidden.status_code == 403
    finally:
        api.stop()
        engine.dispose()
