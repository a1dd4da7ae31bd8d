"""Hostile requests to ``mll serve``: missing, forged and revoked tokens, oversized bodies, and
tokens kept out of the logs (on an empty hub; the server's other tests are in tests/serve)."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("fastapi", reason="mll serve needs mll[serve]")

from fastapi.testclient import TestClient  # noqa: E402

from mll.hub import Hub  # noqa: E402
from mll.serve import ServeSettings, create_app  # noqa: E402
from mll.serve.tokens import TokenStore  # noqa: E402

contract = pytest.mark.contract


@pytest.fixture
def hub_dir(tmp_path):
    root = tmp_path / "hub"
    Hub.open(root, create=True).close()
    return root


def _token(hub_dir, role="reader", name="") -> tuple[str, str]:
    with Hub.open(hub_dir, create=False) as hub:
        info, token = TokenStore(hub.store).create(role, name)
    return info.id, token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contract("server", "a read without a token, with another scheme (Basic), or with a malformed, "
          "truncated, 5,000-character, unknown or spliced token (one token's secret under "
          "another's id)",
          "401 with 'WWW-Authenticate: Bearer'; the same answer whatever was wrong with it")
def test_reads_without_a_valid_token_are_refused(hub_dir):
    _, token = _token(hub_dir)
    other_id, _ = _token(hub_dir, "admin")
    client = TestClient(create_app(hub_dir))
    secret = token.split("_", 2)[2]
    answers = [client.get("/api/models")]
    answers.append(client.get("/api/models", headers={"Authorization": "Basic " + token}))
    for bad in ("mll_xyz", token[:-3], "mll_" + "a" * 5000, f"mll_{'0' * 12}_{secret}",
                f"mll_{other_id}_{secret}"):
        answers.append(client.get("/api/models", headers=_bearer(bad)))
    assert {a.status_code for a in answers} == {401}
    assert {a.headers["www-authenticate"] for a in answers} == {"Bearer"}
    assert len({a.json()["detail"] for a in answers[2:]}) == 1
    assert client.get("/api/models", headers=_bearer(token)).status_code == 200


@contract("server", "a token revoked (TokenStore.revoke, as 'mll token revoke' does) while the "
          "server runs, after it verified the token", "refused (401) from the next request on")
def test_a_revoked_token_is_refused_at_once(hub_dir):
    token_id, token = _token(hub_dir)
    client = TestClient(create_app(hub_dir, settings=ServeSettings(public=True)))
    assert client.get("/api/whoami", headers=_bearer(token)).json()["id"] == token_id
    with Hub.open(hub_dir, create=False) as hub:
        TokenStore(hub.store).revoke(token_id)
    assert client.get("/api/whoami", headers=_bearer(token)).status_code == 401
    assert client.get("/api/whoami").status_code == 200  # public: anonymous still reads


@contract("server", "a request body over the server's limit, with a Content-Length or streamed "
          "without one", "413 (refused by its Content-Length, or when the bytes counted as they "
          "arrive pass the limit); a body within the limit is served")
def test_bodies_over_the_limit_are_cut_off(hub_dir):
    _, token = _token(hub_dir)
    client = TestClient(create_app(hub_dir, settings=ServeSettings(max_body_bytes=1000)))
    headers = _bearer(token) | {"content-type": "application/json"}
    big = b'{"classes": ["' + b"a" * 5000 + b'", "b"]}'
    assert client.post("/api/select", content=big, headers=headers).status_code == 413
    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b" " * 500

    assert client.post("/api/select", content=chunks(), headers=headers).status_code == 413
    small = client.post("/api/select", json={"classes": ["a", "b"]}, headers=_bearer(token))
    assert small.status_code == 503  # read and answered: this hub has no labels yet


@contract("server", "API tokens sent with requests, valid and not, and tokens created and revoked",
          "never written to a log (only token ids are)")
def test_tokens_never_reach_the_logs(hub_dir, caplog):
    caplog.set_level(logging.DEBUG)
    token_id, token = _token(hub_dir, "admin", "ops")
    client = TestClient(create_app(hub_dir))
    for t in (token, token[:-1] + "x", "mll_nothing"):
        client.get("/api/whoami", headers=_bearer(t))
        client.get("/api/models", headers=_bearer(t))
    with Hub.open(hub_dir, create=False) as hub:
        TokenStore(hub.store).revoke(token_id)
    assert token_id in caplog.text  # creation and revocation are logged by id
    assert token not in caplog.text and token.split("_", 2)[2] not in caplog.text
