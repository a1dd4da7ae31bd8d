"""API tokens: hashed with argon2, one role each, revocable, in the hub database (the shared
``store`` fixture: SQLite and, when reachable, PostgreSQL), managed with ``mll token``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mll.cli import cli
from mll.errors import InvalidParameterError, UnknownNameError
from mll.serve.tokens import ROLES, TokenRow, TokenStore


def test_a_token_is_shown_once_and_only_its_argon2_hash_is_stored(store):
    tokens = TokenStore(store)
    info, token = tokens.create("uploader", "ci")
    assert token.startswith(f"mll_{info.id}_") and len(token) > 50
    with store.read() as s:
        row = s.get(TokenRow, info.id)
        cells = [str(getattr(row, c.key)) for c in TokenRow.__table__.columns]
    secret = token.split("_", 2)[2]
    assert row.secret_hash.startswith("$argon2id$")
    assert not any(secret in cell for cell in cells)
    assert "secret" not in json.dumps(info.to_dict()) and secret not in repr(info)
    assert tokens.verify(token) == info and info.role == "uploader" and info.name == "ci"


def test_verify_refuses_malformed_unknown_wrong_and_revoked_tokens(store):
    tokens = TokenStore(store)
    info, token = tokens.create("reader")
    other_info, other = tokens.create("admin")
    wrong_secret = token[: -4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    unknown_id = "mll_" + "0" * 12 + token[len("mll_") + 12:]
    for bad in ["", "Bearer " + token, token + "x" * 200, "mll_xyz", wrong_secret, unknown_id,
                # the secret of one token under the id of another
                f"mll_{other_info.id}_{token.split('_', 2)[2]}"]:
        assert tokens.verify(bad) is None, bad
    assert tokens.verify(token) == info  # verified once: remembered by this process
    tokens.revoke(info.id[:6])
    assert tokens.verify(token) is None  # refused at once, remembered or not
    assert TokenStore(store).verify(token) is None
    assert tokens.verify(other).role == "admin"
    listed = {t.id: t for t in tokens.list()}
    assert not listed[info.id].active and listed[info.id].revoked_at
    assert [t.id for t in tokens.list(include_revoked=False)] == [other_info.id]


def test_roles_include_the_roles_before_them():
    from mll.serve.tokens import TokenInfo

    def allowed(role):
        return [r for r in ROLES if TokenInfo("x", "", role, "").allows(r)]

    assert allowed("reader") == ["reader"]
    assert allowed("uploader") == ["reader", "uploader"]
    assert allowed("admin") == list(ROLES)
    assert not TokenInfo("x", "", "admin", "", revoked_at="2026-01-01").allows("reader")


def test_bad_roles_names_and_references_are_errors(store):
    tokens = TokenStore(store)
    with pytest.raises(InvalidParameterError, match="role must be one of"):
        tokens.create("owner")
    with pytest.raises(InvalidParameterError, match="token name"):
        tokens.create("reader", "a\nb")
    with pytest.raises(UnknownNameError, match="unknown token"):
        tokens.revoke("abcdef")
    with pytest.raises(UnknownNameError):
        tokens.revoke("")


def test_the_mapped_class_matches_the_migration(store):
    """The serve migration and the mapped class agree on every column (types included)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from mll.hub.records import Base

    def only_tokens(obj, name, type_, reflected, compare_to):
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is None or table.name == TokenRow.__tablename__

    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "include_object": only_tokens})
        assert compare_metadata(ctx, Base.metadata) == []
    assert "serve_0001" in store.revision()
    with store.read() as s:  # an empty table, readable through the mapped class
        assert s.scalars(select(TokenRow)).all() == []


def test_token_commands_create_list_and_revoke(empty_hub):
    runner = CliRunner()
    made = runner.invoke(cli, ["token", "create", "--role", "reader", "--name", "alice",
                               "--hub", str(empty_hub)])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("mll_") and "shown once" in made.stderr
    listed = runner.invoke(cli, ["token", "list", "--hub", str(empty_hub), "--json"])
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["role"], r["active"]) for r in rows] == [("alice", "reader", True)]
    assert token.split("_", 2)[2] not in listed.stdout
    made_json = runner.invoke(cli, ["token", "create", "--role", "admin", "--hub",
                                    str(empty_hub), "--json"])
    assert json.loads(made_json.stdout)["token"].startswith("mll_")
    gone = runner.invoke(cli, ["token", "revoke", rows[0]["id"], "--hub", str(empty_hub)])
    assert gone.exit_code == 0 and "revoked" in gone.stdout
    table = runner.invoke(cli, ["token", "list", "--hub", str(empty_hub)])
    assert "alice" in table.stdout and "admin" in table.stdout


def test_token_commands_refuse_a_hub_that_does_not_exist(tmp_path):
    from mll.cli import main

    assert main(["token", "list", "--hub", str(tmp_path / "nowhere")]) == 2
