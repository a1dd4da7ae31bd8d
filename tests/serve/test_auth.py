"""Who may read, what an error looks like, and the limits of ``mll serve``, on an empty hub."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from mll.serve import ServeSettings, create_app


def _client(hub, **settings) -> TestClient:
    return TestClient(create_app(hub, settings=ServeSettings(**settings)))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_reads_need_a_valid_token_unless_the_hub_is_public(empty_hub, tokens):
    client = _client(empty_hub)
    missing = client.get("/api/models")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "mll token create" in missing.json()["detail"]
    for bad in (tokens["revoked"], tokens["reader"][:-2], "mll_nothing", "x" * 5000):
        assert client.get("/api/models", headers=_bearer(bad)).status_code == 401
    assert client.get("/api/models",
                      headers={"Authorization": "Basic " + tokens["reader"]}).status_code == 401
    for role in ("reader", "uploader", "admin"):
        answer = client.get("/api/models", headers=_bearer(tokens[role]))
        assert answer.status_code == 200 and answer.json() == {"concept": None, "models": []}
        me = client.get("/api/whoami", headers=_bearer(tokens[role])).json()
        assert (me["role"], me["name"], me["anonymous"]) == (role, f"test {role}", False)
        assert "secret_hash" not in me and tokens[role] not in str(me)

    public = _client(empty_hub, public=True)
    assert public.get("/api/models").status_code == 200
    assert public.get("/api/whoami").json() == {"anonymous": True, "public": True, "role": None,
                                                "id": None, "name": None}
    assert public.get("/api/models", headers=_bearer(tokens["revoked"])).status_code == 401


def test_health_schema_and_docs_need_no_token(empty_hub):
    client = _client(empty_hub)
    assert client.get("/api/health").json()["status"] == "ok"
    schema = client.get("/openapi.json").json()
    assert {"/api/models", "/api/models/{ref}", "/api/nodes", "/api/nodes/{ref}",
            "/api/select", "/api/whoami", "/api/health"} <= set(schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    answers = schema["components"]["schemas"]  # typed answers, not bare objects
    assert {"ModelList", "ModelDetail", "NodeDetail", "Selection", "SelectRequest"} <= set(answers)
    assert "accuracy" in answers["ServingModel"]["properties"]
    page = client.get("/docs")
    assert page.status_code == 200 and "cdn" not in page.text.lower()  # works offline
    assert '"validatorUrl": null' in page.text  # no badge fetched from swagger.io
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static/swagger-ui/{asset}" in page.text
        assert client.get(f"/static/swagger-ui/{asset}").status_code == 200


def test_errors_are_json_with_a_status_that_says_what_went_wrong(empty_hub, tokens):
    client = _client(empty_hub)
    auth = _bearer(tokens["reader"])
    unknown = client.get("/api/models/nosuchmodel", headers=auth)
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "unknown model 'nosuchmodel' (see 'mll hub list')",
                              "error": "UnknownNameError"}
    not_built = client.get("/api/nodes", params={"q": "sandal"}, headers=auth)
    assert not_built.status_code == 503 and not_built.json()["error"] == "NotBuiltError"
    assert client.get("/api/models", params={"kind": "robot"}, headers=auth).status_code == 422
    assert client.post("/api/select", json={"domain": "photo"}, headers=auth).status_code == 422
    assert client.post("/api/select", content=b"{not json",
                       headers=auth | {"content-type": "application/json"}).status_code == 422


def test_a_missing_hub_is_an_error_when_the_app_is_built(tmp_path):
    from mll.errors import InvalidParameterError, NotBuiltError

    with pytest.raises(NotBuiltError, match="no hub"):
        create_app(tmp_path / "nowhere")
    with pytest.raises(InvalidParameterError, match="max_body_bytes"):
        ServeSettings(max_body_bytes=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mll_serve_answers_over_http_and_logs_no_token(empty_hub, tokens, tmp_path):
    port = _free_port()
    log = tmp_path / "serve.log"
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mll", "serve", "--hub", str(empty_hub),
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server did not start: " + log.read_text()
            time.sleep(0.3)
        assert httpx.get(base + "/api/models").status_code == 401
        answer = httpx.get(base + "/api/models", headers=_bearer(tokens["reader"]))
        assert answer.status_code == 200 and answer.json()["models"] == []
        assert httpx.get(base + "/openapi.json").json()["info"]["title"] == "mll"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert "GET /api/models" in text and "reads need a reader token" in text
    assert tokens["reader"] not in text


@pytest.mark.postgres
def test_tokens_and_reads_on_a_postgresql_store(pg_hub, pg_url):
    """The hub directory holds files; its database, tokens included, is on PostgreSQL."""
    from mll.serve.tokens import TokenStore

    root, hub = pg_hub.root, pg_hub
    _, token = TokenStore(hub.store).create("reader", "pg")
    client = TestClient(create_app(root, pg_url))
    assert client.get("/api/models").status_code == 401
    me = client.get("/api/whoami", headers=_bearer(token))
    assert me.status_code == 200 and me.json()["name"] == "pg"
    assert client.get("/api/models", headers=_bearer(token)).json()["models"] == []
    client.app.state.service.close()


def test_each_kind_of_error_has_its_status():
    from mll import errors
    from mll.serve.app import status_of

    assert status_of(errors.UnknownNameError("model", "x")) == 404
    assert status_of(errors.AmbiguousNameError("'ab12' names 2 models")) == 400
    assert status_of(errors.LimitExceededError("too many classes")) == 413
    assert status_of(errors.InvalidParameterError("bad")) == 400
    assert status_of(errors.NotBuiltError("no labels")) == 503
    assert status_of(errors.ExternalServiceError("LLM down")) == 502
    assert status_of(errors.StoreError("disk")) == 500
    assert status_of(errors.LabellingFailedError("failed")) == 400


def test_a_route_that_needs_a_higher_role_refuses_lower_tokens_with_403(empty_hub, tokens):
    """Every route today reads; the writes to come declare their role the same way."""
    from fastapi import Depends

    from mll.serve.app import requires

    app = create_app(empty_hub, settings=ServeSettings(public=True))

    @app.get("/api/test-admin")
    def admin_only(token=Depends(requires("admin"))):  # noqa: B008 (FastAPI's idiom)
        return {"role": token.role}

    @app.get("/api/test-upload")
    def upload_only(token=Depends(requires("uploader"))):  # noqa: B008
        return {"role": token.role}

    client = TestClient(app)
    assert client.get("/api/test-admin").status_code == 401  # public reads only
    reader = client.get("/api/test-admin", headers=_bearer(tokens["reader"]))
    assert reader.status_code == 403 and "needs the admin role" in reader.json()["detail"]
    assert client.get("/api/test-admin", headers=_bearer(tokens["uploader"])).status_code == 403
    assert client.get("/api/test-admin", headers=_bearer(tokens["admin"])).json() == {
        "role": "admin"}
    assert client.get("/api/test-upload", headers=_bearer(tokens["reader"])).status_code == 403
    assert client.get("/api/test-upload", headers=_bearer(tokens["uploader"])).status_code == 200
    assert client.get("/api/test-upload", headers=_bearer(tokens["admin"])).status_code == 200
    with pytest.raises(Exception, match="role must be one of"):
        requires("owner")
