"""The web UI's accounts and pages on an empty hub: password users (store and 'mll user'), login by
password and by token, session cookies, logout, roles, and the API read with a login (GET only).
The pages over the quick starter hub are tested in a real browser (tests/serve/browser)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi", reason="mll serve needs mll[serve]")

from fastapi.testclient import TestClient  # noqa: E402

from mll.cli import cli  # noqa: E402
from mll.errors import InvalidParameterError, UnknownNameError  # noqa: E402
from mll.hub import Hub  # noqa: E402
from mll.serve import ServeSettings, create_app  # noqa: E402
from mll.serve.accounts import Accounts, SessionRow, UserRow  # noqa: E402

PASSWORD = "correct horse battery"


def _csrf(page) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def _user(hub_dir, name="alice", role="reader", password=PASSWORD) -> None:
    with Hub.open(hub_dir, create=False) as hub:
        Accounts(hub.store).create_user(name, role, password)


def _login(client, **form) -> object:
    page = client.get("/login")
    return client.post("/login", data={"csrf": _csrf(page), **form}, follow_redirects=False)


def test_the_mapped_classes_match_the_migration(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from mll.hub.records import Base

    names = {UserRow.__tablename__, SessionRow.__tablename__}

    def only_ours(obj, name, type_, reflected, compare_to):
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is None or table.name in names

    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "include_object": only_ours})
        assert compare_metadata(ctx, Base.metadata) == []
    assert "users_0001" in store.revision()


def test_passwords_are_stored_hashed_and_checked(store):
    accounts = Accounts(store)
    info = accounts.create_user("alice", "uploader", PASSWORD)
    assert info.to_dict()["role"] == "uploader" and "password" not in json.dumps(info.to_dict())
    with store.read() as s:
        stored = s.get(UserRow, "alice").password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.check_password("alice", PASSWORD).name == "alice"
    for name, password in (("alice", PASSWORD + "x"), ("bob", PASSWORD), ("../x", PASSWORD),
                           ("alice", "x" * 5000)):
        assert accounts.check_password(name, password) is None
    with pytest.raises(InvalidParameterError, match="exists"):
        accounts.create_user("alice", "reader", PASSWORD)
    for bad in ("", "a b", "../etc", "x" * 65):
        with pytest.raises(InvalidParameterError, match="user name"):
            accounts.create_user(bad, "reader", PASSWORD)
    with pytest.raises(InvalidParameterError, match="password"):
        accounts.create_user("bob", "reader", "short")
    with pytest.raises(InvalidParameterError, match="role"):
        accounts.create_user("bob", "root", PASSWORD)


def test_a_session_ends_with_logout_removal_or_expiry(store):
    accounts = Accounts(store)
    accounts.create_user("alice", "reader", PASSWORD)
    sid = accounts.start("user", "alice")
    session = accounts.get(sid)
    assert session.role == "reader" and session.label == "alice" and len(session.csrf) > 30
    with store.read() as s:  # only the hash of the cookie value is kept
        assert s.get(SessionRow, sid) is None and len(s.query(SessionRow).all()) == 1
    accounts.end(sid)
    assert accounts.get(sid) is None
    again = accounts.start("user", "alice")
    accounts.remove_user("alice")
    assert accounts.get(again) is None
    with pytest.raises(UnknownNameError, match="user"):
        accounts.remove_user("alice")
    short = Accounts(store, session_hours=-1.0)  # already expired
    short.create_user("bob", "reader", PASSWORD)
    assert short.get(short.start("user", "bob")) is None
    assert accounts.get(None) is None and accounts.get("x" * 500) is None


def test_user_commands_create_list_and_remove(empty_hub):
    runner = CliRunner()
    hub = ["--hub", str(empty_hub)]
    made = runner.invoke(cli, ["user", "create", "alice", "--role", "uploader",
                               "--password-stdin", "--json", *hub], input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout) == json.loads(made.stdout) | {"name": "alice",
                                                                  "role": "uploader"}
    prompted = runner.invoke(cli, ["user", "create", "bob", "--role", "reader", *hub],
                             input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0 and "created reader user bob" in prompted.stdout
    listed = runner.invoke(cli, ["user", "list", "--json", *hub])
    assert [u["name"] for u in json.loads(listed.stdout)] == ["alice", "bob"]
    assert "hash" not in listed.stdout and PASSWORD not in listed.stdout
    short = runner.invoke(cli, ["user", "create", "carol", "--role", "reader",
                                "--password-stdin", *hub], input="abc\n")
    assert isinstance(short.exception, InvalidParameterError)  # main() prints it as one line
    assert "password must be" in str(short.exception)
    bad = runner.invoke(cli, ["user", "create", "../x", "--role", "reader", *hub])
    assert isinstance(bad.exception, InvalidParameterError) and "user name" in str(bad.exception)
    removed = runner.invoke(cli, ["user", "remove", "bob", "--json", *hub])
    assert json.loads(removed.stdout)["removed"]["name"] == "bob"
    gone = runner.invoke(cli, ["user", "remove", "bob", *hub])
    assert isinstance(gone.exception, UnknownNameError) and "user 'bob'" in str(gone.exception)


def test_pages_need_a_login_unless_the_hub_is_public(empty_hub):
    client = TestClient(create_app(empty_hub))
    for path in ("/", "/task", "/upload", "/nodes/dog"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"
    public = TestClient(create_app(empty_hub, settings=ServeSettings(public=True)))
    home = public.get("/")
    assert home.status_code == 200 and "anonymous reader" in home.text
    assert public.get("/upload", follow_redirects=False).status_code == 303  # writes need a login


def test_login_with_a_password_sets_a_safe_session_cookie(empty_hub):
    _user(empty_hub)
    client = TestClient(create_app(empty_hub))
    answer = _login(client, name="alice", password=PASSWORD, next="/task")
    assert answer.status_code == 303 and answer.headers["location"] == "/task"
    cookie = answer.headers["set-cookie"]
    assert "mll_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert PASSWORD not in cookie
    home = client.get("/")
    assert home.status_code == 200 and "alice (reader)" in home.text
    assert client.get("/api/whoami").status_code == 200  # the API reads with the login (GET)
    refused = client.post("/api/select", json={"classes": ["a", "b"]})
    assert refused.status_code == 401  # but never writes or asks with it: a bearer token only
    assert client.get("/upload").status_code == 403  # a reader cannot upload
    out = client.post("/logout", data={"csrf": _csrf(home)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_with_a_token_and_refusals(empty_hub, tokens):
    client = TestClient(create_app(empty_hub))
    wrong = _login(client, name="alice", password=PASSWORD)
    assert wrong.status_code == 401 and "wrong token, or wrong user name or password" in wrong.text
    revoked = _login(client, token=tokens["revoked"])
    assert revoked.status_code == 401
    ok = _login(client, token=tokens["uploader"], next="//evil.example/x")
    assert ok.status_code == 303 and ok.headers["location"] == "/"  # no open redirect
    page = client.get("/upload")
    assert page.status_code == 200 and "(uploader)" in page.text
    assert tokens["uploader"] not in page.text


def test_solves_and_uploads_from_pages_spend_the_rate_limits(empty_hub, tokens):
    settings = ServeSettings(solve_per_minute=1.0, solve_burst=1, upload_per_minute=1.0,
                             upload_burst=1)
    client = TestClient(create_app(empty_hub, settings=settings))
    _login(client, token=tokens["uploader"])
    csrf = _csrf(client.get("/"))
    form = {"csrf": csrf, "classes": "sandal\nsneaker"}
    first = client.post("/task", data=form, files={"files": ("a.png", b"x")})
    assert first.status_code != 429
    again = client.post("/task", data=form, files={"files": ("a.png", b"x")})
    assert again.status_code == 429 and "too many solves" in again.text
    # a token login shares the token's bucket with the API
    api = client.post("/api/solve", headers={"Authorization": f"Bearer {tokens['uploader']}"},
                      data={"classes": "a\nb"}, files={"files": ("a.png", b"x")})
    assert api.status_code == 429 and api.headers["retry-after"]
    upload = {"csrf": csrf, "classes": "a\nb\n"}
    assert client.post("/upload", data=upload).status_code != 429
    assert client.post("/upload", data=upload).status_code == 429
