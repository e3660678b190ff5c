"""services.api_clients on real SQLite and PostgreSQL: a key issued authenticates, a revoked one
does not, a rotated secret replaces the old one, and every change is audited without a secret."""

import json

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from domain.errors import UnknownReference
from ledger.config_audit import changes_of
from ledger.db import transaction
from security.keys import authenticate
from security.roles import Role
from security.signatures import sign, signature_is_valid
from services import api_clients
from services.api_clients import AlreadyInitialised, InvalidApiClient, UnknownApiClient
from tests.support.ledger_fixtures import seed

ACTOR = "cli:tester"


def _audit(engine: Engine, key_id: str) -> list[tuple[str, str, dict]]:
    with Session(engine) as session:
        return [(c.action, c.actor, c.changes) for c in changes_of(session, "api_client", key_id)]


def test_an_issued_key_authenticates_with_its_role_and_channel(ledger_engine: Engine) -> None:
    with transaction(ledger_engine) as session:
        issued = api_clients.issue(session, "web shop", Role.CHANNEL, channel="web", actor=ACTOR)
    with Session(ledger_engine) as session:
        client = authenticate(session, issued.key)
        assert client is not None
        assert (client.role, client.channel, client.created_by) == ("channel", "web", ACTOR)
        assert authenticate(session, issued.key + "x") is None
    assert issued.signing_secret is None  # a channel key signs nothing
    [(action, actor, changes)] = _audit(ledger_engine, issued.key_id)
    assert (action, actor) == ("create", ACTOR)
    assert changes["role"] == [None, "channel"] and changes["channel"] == [None, "web"]


def test_a_revoked_key_is_refused_audited_once_and_a_second_revoke_changes_nothing(
    ledger_engine: Engine,
) -> None:
    with transaction(ledger_engine) as session:
        issued = api_clients.issue(session, "ops desk", Role.OPS, actor=ACTOR)
    with transaction(ledger_engine) as session:
        first = api_clients.revoke(session, issued.key_id, "cli:alice")
    with transaction(ledger_engine) as session:
        second = api_clients.revoke(session, issued.key_id, "cli:bob")

    with Session(ledger_engine) as session:
        assert authenticate(session, issued.key) is None
        listed = {c.key_id: c for c in api_clients.list_clients(session)}
        active = api_clients.list_clients(session, include_revoked=False)
    assert not first.active and first.revoked_at is not None
    assert second.revoked_at == first.revoked_at  # the first revocation's time is kept
    assert not listed[issued.key_id].active and issued.key_id not in {c.key_id for c in active}
    actions = [(action, actor) for action, actor, _ in _audit(ledger_engine, issued.key_id)]
    assert actions == [("revoke", "cli:alice"), ("create", ACTOR)]  # newest first; no bob


def test_rotating_a_secret_makes_the_old_one_fail_and_the_new_one_verify(
    ledger_engine: Engine,
) -> None:
    with transaction(ledger_engine) as session:
        issued = api_clients.issue(session, "WMS gateway", Role.NODE, actor=ACTOR)
    with transaction(ledger_engine) as session:
        new_secret = api_clients.rotate_signing_secret(session, issued.key_id, ACTOR)

    body, moment = b'{"event": "accepted"}', "1700000000"
    with Session(ledger_engine) as session:
        client = authenticate(session, issued.key)  # the key itself still works
    assert client is not None and client.signing_secret is not None
    assert issued.signing_secret is not None and new_secret != issued.signing_secret
    stored = client.signing_secret
    assert not signature_is_valid(stored, moment, body, sign(issued.signing_secret, moment, body))
    assert signature_is_valid(stored, moment, body, sign(new_secret, moment, body))
    assert client.secret_rotated_at is not None

    trail = json.dumps(_audit(ledger_engine, issued.key_id))
    assert "rotate" in trail
    assert (
        new_secret not in trail and issued.signing_secret not in trail and issued.key not in trail
    )


@pytest.mark.parametrize(
    ("role", "channel", "node_id", "field"),
    [
        (Role.CHANNEL, None, None, "channel"),
        (Role.CHANNEL, "web shop!", None, "channel"),
        (Role.OPS, "web", None, "channel"),
        (Role.SUPPORT, None, "DC1", "node_id"),
        (Role.CHANNEL, "web", "DC1", "node_id"),
        ("superuser", None, None, "role"),
    ],
)
def test_a_key_that_does_not_fit_its_role_is_refused_naming_the_field(
    ledger_engine: Engine, role: str, channel: str | None, node_id: str | None, field: str
) -> None:
    with pytest.raises(InvalidApiClient) as refused, transaction(ledger_engine) as session:
        api_clients.issue(session, "k", role, channel=channel, node_id=node_id, actor=ACTOR)
    assert refused.value.field == field and str(refused.value).startswith(f"{field}: ")
    with Session(ledger_engine) as session:
        assert api_clients.list_clients(session) == []
        assert changes_of(session, "api_client") == []


def test_a_node_key_names_a_node_that_exists_or_none(ledger_engine: Engine) -> None:
    seed(ledger_engine, {"DC1": 1})
    with pytest.raises(UnknownReference) as unknown, transaction(ledger_engine) as session:
        api_clients.issue(session, "k", Role.NODE, node_id="DC9", actor=ACTOR)
    assert unknown.value.field == "node_id"
    with transaction(ledger_engine) as session:
        own = api_clients.issue(session, "DC1 WMS", Role.NODE, node_id="DC1", actor=ACTOR)
        gateway = api_clients.issue(session, "gateway", Role.NODE, actor=ACTOR)
    with Session(ledger_engine) as session:
        assert api_clients.get_client(session, own.key_id).node_id == "DC1"
        assert api_clients.get_client(session, gateway.key_id).node_id is None


def test_a_key_without_a_secret_cannot_rotate_and_an_unknown_key_is_named(
    ledger_engine: Engine,
) -> None:
    with transaction(ledger_engine) as session:
        channel = api_clients.issue(session, "web", Role.CHANNEL, channel="web", actor=ACTOR)
    with pytest.raises(InvalidApiClient) as refused, transaction(ledger_engine) as session:
        api_clients.rotate_signing_secret(session, channel.key_id, ACTOR)
    assert refused.value.field == "role"
    with pytest.raises(UnknownApiClient) as unknown, transaction(ledger_engine) as session:
        api_clients.revoke(session, "0000000000000000", ACTOR)
    assert unknown.value.field == "key_id"


def test_initialise_issues_one_first_admin_and_refuses_while_one_is_active(
    ledger_engine: Engine,
) -> None:
    with transaction(ledger_engine) as session:
        first = api_clients.initialise(session, actor=ACTOR)
    with pytest.raises(AlreadyInitialised) as refused, transaction(ledger_engine) as session:
        api_clients.initialise(session, actor=ACTOR)
    assert refused.value.admin_key_ids == [first.key_id]
    with transaction(ledger_engine) as session:
        api_clients.revoke(session, first.key_id, ACTOR)
    with transaction(ledger_engine) as session:  # every admin revoked: a way back in
        again = api_clients.initialise(session, actor=ACTOR)
    assert again.key_id != first.key_id and again.signing_secret is not None
