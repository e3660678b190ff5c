"""Group commit (ledger.group_commit) on SQLite and PostgreSQL: writes from many threads share
transactions, a caller returns only once its own write is committed, and one bad write fails
only its own caller."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from sqlmodel import Session, select

from ledger.group_commit import GroupCommit
from ledger.tables import CallbackSignature
from security.keys import remember_signature

CALLERS = 24


def _stored(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(CallbackSignature.signature)).all())


def test_concurrent_writes_share_transactions_and_each_is_committed_when_its_caller_returns(
    ledger_engine: Engine,
) -> None:
    sessions: list[Session] = []  # kept alive, so their ids stay distinct
    seen_at_return: dict[str, bool] = {}
    first_write = threading.Event()

    def write(session: Session, signature: str) -> bool:
        sessions.append(session)
        if not first_write.is_set():
            first_write.set()
            time.sleep(0.3)  # the others queue behind this transaction meanwhile
        return remember_signature(session, signature)

    group: GroupCommit[str, bool] = GroupCommit(ledger_engine, write)

    def caller(signature: str) -> None:
        assert group.submit(signature) is True
        seen_at_return[signature] = signature in _stored(ledger_engine)

    with ThreadPoolExecutor(CALLERS) as pool:
        list(pool.map(caller, [f"sig-{i:02d}" for i in range(CALLERS)]))

    assert _stored(ledger_engine) == {f"sig-{i:02d}" for i in range(CALLERS)}
    assert all(seen_at_return.values()) and len(seen_at_return) == CALLERS
    transactions = len({id(s) for s in sessions})
    assert transactions <= 3, f"{CALLERS} writes took {transactions} transactions"


def test_a_failing_write_fails_only_its_own_caller(ledger_engine: Engine) -> None:
    started = threading.Event()

    def write(session: Session, signature: str) -> bool:
        if not started.is_set():
            started.set()
            time.sleep(0.3)  # so the bad one lands in a batch with good ones
        if signature == "bad":
            raise ValueError("this write is refused")
        return remember_signature(session, signature)

    group: GroupCommit[str, bool] = GroupCommit(ledger_engine, write)
    signatures = [
        "first",
        *(f"good-{i}" for i in range(8)),
        "bad",
        *(f"late-{i}" for i in range(8)),
    ]

    def caller(signature: str) -> str:
        try:
            group.submit(signature)
            return "ok"
        except ValueError as exc:
            return str(exc)

    with ThreadPoolExecutor(len(signatures)) as pool:
        outcomes = dict(zip(signatures, pool.map(caller, signatures), strict=True))

    assert outcomes.pop("bad") == "this write is refused"
    assert set(outcomes.values()) == {"ok"}
    assert _stored(ledger_engine) == set(outcomes)


def test_a_single_caller_gets_its_write_result(ledger_engine: Engine) -> None:
    group: GroupCommit[str, bool] = GroupCommit(ledger_engine, remember_signature)
    assert group.submit("once") is True
    assert group.submit("once") is False  # the replay guard's own answer comes back
    assert _stored(ledger_engine) == {"once"}
