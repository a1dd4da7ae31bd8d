"""Hostile requests to the web UI and to solve over HTTP: forms posted without their CSRF token or
with another session's, cookies used to write through the API, open redirects, and images sent to
be classified that try to leave their folder or exceed the limits (on an empty hub)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

pytest.importorskip("fastapi", reason="mll serve needs mll[serve]")

from fastapi.testclient import TestClient  # noqa: E402

from mll.hub import Hub  # noqa: E402
from mll.serve import ServeSettings, create_app  # noqa: E402
from mll.serve.accounts import Accounts  # noqa: E402
from mll.serve.tokens import TokenStore  # noqa: E402

contract = pytest.mark.contract
PASSWORD = "correct horse battery"


@pytest.fixture
def hub_dir(tmp_path):
    root = tmp_path / "hub"
    with Hub.open(root, create=True) as hub:
        Accounts(hub.store).create_user("up", "uploader", PASSWORD)
    return root


def _csrf(text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', text).group(1)


def _logged_in(hub_dir) -> tuple[TestClient, str]:
    client = TestClient(create_app(hub_dir))
    form = client.get("/login")
    answer = client.post("/login", data={"csrf": _csrf(form.text), "name": "up",
                                         "password": PASSWORD}, follow_redirects=False)
    assert answer.status_code == 303
    return client, _csrf(client.get("/").text)


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


@contract("server", "a web form (login, logout, upload, task) posted without its CSRF token, "
          "with a wrong one, or with another session's",
          "403 and nothing done: no session started or ended, no job queued")
def test_forms_without_their_csrf_token_are_refused(hub_dir):
    fresh = TestClient(create_app(hub_dir))
    fresh.get("/login")  # has the login form's cookie, but sends no token
    for token in (None, "x" * 43):
        data = {"name": "up", "password": PASSWORD} | ({"csrf": token} if token else {})
        answer = fresh.post("/login", data=data, follow_redirects=False)
        assert answer.status_code == 403 and "mll_session" not in answer.headers.get(
            "set-cookie", "")
    client, mine = _logged_in(hub_dir)
    _, theirs = _logged_in(hub_dir)
    upload = {"classes": "a\nb\n", "name": "forged"}
    for token in (None, "", theirs):
        data = upload | ({"csrf": token} if token is not None else {})
        answer = client.post("/upload", data=data,
                             files={"weights": ("m.onnx", b"\x08\x01onnx")})
        assert answer.status_code == 403 and "not sent from this site" in answer.text
        assert client.post("/task", data={"classes": "a\nb", "csrf": token or ""},
                           files={"files": ("x.png", _png())}).status_code == 403
        assert client.post("/logout", data={"csrf": token or ""}).status_code == 403
    assert not (hub_dir / "uploads").exists()  # nothing staged, no job
    assert client.get("/", follow_redirects=False).status_code == 200  # still logged in
    assert client.post("/logout", data={"csrf": mine}, follow_redirects=False).status_code == 303


@contract("server", "a login cookie sent with a POST to the API (what a cross-site form would "
          "send), and a login's 'next' pointing to another site",
          "the API refuses it (401: writes and asks need a bearer token); the redirect stays "
          "on this site")
def test_a_login_cookie_cannot_write_through_the_api(hub_dir):
    client, _ = _logged_in(hub_dir)
    assert client.get("/api/whoami").status_code == 200
    assert client.post("/api/select", json={"classes": ["a", "b"]}).status_code == 401
    assert client.post("/api/solve", data={"classes": "a\nb"},
                       files={"files": ("x.png", _png())}).status_code == 401
    assert client.post("/api/models", files={"weights": ("m.onnx", b"x"),
                                              "classes": ("c.txt", b"a\n")}).status_code == 401
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        other = TestClient(create_app(hub_dir))
        form = other.get("/login")
        answer = other.post("/login", data={"csrf": _csrf(form.text), "name": "up",
                                            "password": PASSWORD, "next": target},
                            follow_redirects=False)
        assert answer.headers["location"] == "/"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@contract("server", "images sent to solve: a zip whose members use '..' or absolute paths, a zip "
          "beside other files, more files than MLL_MAX_SOLVE_IMAGES, a file over "
          "MLL_MAX_IMAGE_BYTES, no files",
          "refused with one line (400, or 413 for a limit) before any model runs; nothing "
          "written outside the solve's own directory, which is removed")
def test_hostile_images_sent_to_solve_are_refused(hub_dir, monkeypatch, tmp_path):
    with Hub.open(hub_dir, create=False) as hub:
        _, token = TokenStore(hub.store).create("reader")
    client = TestClient(create_app(hub_dir, settings=ServeSettings()))
    auth = {"Authorization": f"Bearer {token}"}

    def solve(files):
        return client.post("/api/solve", headers=auth, data={"classes": "sandal\nsneaker"},
                           files=[("files", f) for f in files])

    png = _png()
    for bad in ({"../escape.png": png}, {"/abs.png": png}, {"a/b/c.png": png}):
        answer = solve([("x.zip", _zip(bad))])
        assert answer.status_code == 400 and "not a plain file" in answer.json()["detail"]
    mixed = solve([("x.zip", _zip({"a.png": png})), ("b.png", png)])
    assert mixed.status_code == 400 and "not both" in mixed.json()["detail"]
    monkeypatch.setenv("MLL_MAX_SOLVE_IMAGES", "2")
    many = solve([(f"{i}.png", png) for i in range(3)])
    assert many.status_code == 413 and "MLL_MAX_SOLVE_IMAGES" in many.json()["detail"]
    monkeypatch.delenv("MLL_MAX_SOLVE_IMAGES")
    monkeypatch.setenv("MLL_MAX_IMAGE_BYTES", "50")
    big = solve([("big.png", png + b"\0" * 100)])
    assert big.status_code == 413 and "big.png" in big.json()["detail"]
    monkeypatch.delenv("MLL_MAX_IMAGE_BYTES")
    none = client.post("/api/solve", headers=auth, data={"classes": "sandal\nsneaker"})
    assert none.status_code == 422
    assert not list(tmp_path.rglob("escape.png")) and not list(tmp_path.rglob("abs.png"))
    solves = hub_dir / "serve" / "solves"
    assert not solves.exists() or list(solves.iterdir()) == []
