"""The accepted callbacks' signatures are kept only as long as a replay of them could still be
accepted: housekeeping forgets the older ones (audit L5: the table grew for ever)."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from ledger.db import transaction
from ledger.tables import CallbackSignature
from security.signatures import SIGNATURE_MAX_AGE_SECONDS, SIGNATURE_RETENTION_SECONDS
from services import housekeeping


def _signatures(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(CallbackSignature.signature)).all())


def _received(engine: Engine, ages_seconds: dict[str, float]) -> None:
    now = datetime.now(UTC)
    with transaction(engine) as session:
        for signature, age in ages_seconds.items():
            received_at = now - timedelta(seconds=age)
            session.add(CallbackSignature(signature=signature, received_at=received_at))


def test_housekeeping_forgets_signatures_no_replay_could_still_use(ledger_engine: Engine) -> None:
    old = {f"old-{n}": SIGNATURE_RETENTION_SECONDS + 60 + n for n in range(7)}
    recent = {"just-now": 1, "inside-the-window": SIGNATURE_RETENTION_SECONDS - 60}
    _received(ledger_engine, {**old, **recent})

    housekeeping.expire_due_holds(ledger_engine, batch=3)  # what each housekeeping run calls

    assert _signatures(ledger_engine) == set(recent)


def test_a_signature_is_kept_past_the_last_moment_its_replay_could_be_accepted() -> None:
    """A callback is accepted while its timestamp is within the max age of the receiving
    clock, so a replay of one received at R can arrive until R + 2 x max age."""
    assert SIGNATURE_RETENTION_SECONDS >= 2 * SIGNATURE_MAX_AGE_SECONDS


def test_pruning_reports_how_many_it_forgot(ledger_engine: Engine) -> None:
    _received(ledger_engine, {f"old-{n}": SIGNATURE_RETENTION_SECONDS + 60 for n in range(5)})
    assert housekeeping.prune_callback_signatures(ledger_engine, batch=2) == 5
    assert housekeeping.prune_callback_signatures(ledger_engine, batch=2) == 0
