"""Hostile requests for sample images (``GET /api/images/{id}``): paths that try to leave the
corpus, ids that are not sample images, a crafted manifest, thumbnails out of bounds (on a private
view of the quick starter hub)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="mll serve needs mll[serve]")

from fastapi.testclient import TestClient  # noqa: E402

from mll.corpus.records import Location  # noqa: E402
from mll.serve import ServeSettings, create_app  # noqa: E402

contract = pytest.mark.contract
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(hub_view, tmp_path_factory):
    return create_app(hub_view(tmp_path_factory.mktemp("images") / "hub"),
                      settings=ServeSettings(public=True))


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


@contract("server", "an image path with '..', encoded slashes, a file name, an absolute path, "
          "upper-case or short hex, or an id with a suffix",
          "422 or 404 before any file is opened; nothing outside the corpus is ever sent")
def test_image_paths_cannot_leave_the_corpus(client, app):
    sample = app.state.service.labels().image_ids[0]
    db = (app.state.service.hub.root / "mll.db").read_bytes()[:16]
    for path in ("/api/images/../../mll.db", "/api/images/..%2F..%2Fmll.db",
                 "/api/images/%2e%2e%2f%2e%2e%2fmll.db", "/api/images/%2Fetc%2Fpasswd",
                 "/api/images/mll.db", f"/api/images/{sample.upper()}",
                 f"/api/images/{sample[:63]}", f"/api/images/{sample}.png",
                 f"/api/images/{sample}%00", f"/api/images/{sample}/..",
                 f"/api/images/..%2F{sample}"):
        answer = client.get(path)
        assert answer.status_code in (404, 422), path
        assert db not in answer.content and not answer.content.startswith(b"\x89PNG"), path
    assert client.get(f"/api/images/{sample}").status_code == 200


@contract("server", "an image id of 64 hex digits that is no image of the corpus, or an image "
          "of the corpus that is not a sample image (training or evaluation)",
          "404 with one line; the same answer for both")
def test_unknown_and_non_sample_images_are_not_found(client, app):
    corpus = app.state.service.labels().corpus
    train = corpus.records(role="train")[0].image_id
    for image_id in ("0" * 64, "f" * 64, train):
        answer = client.get(f"/api/images/{image_id}")
        assert answer.status_code == 404 and answer.json()["error"] == "UnknownNameError"
        assert "\n" not in answer.json()["detail"]


@contract("server", "an image whose manifest entry names a pack outside the packs directory "
          "(a crafted or damaged manifest)", "refused with a one-line 400; no file opened")
def test_a_crafted_pack_name_is_refused(client, app, monkeypatch):
    corpus = app.state.service.labels().corpus
    sample = app.state.service.labels().image_ids[0]
    for pack in ("../../mll", "/etc/passwd", "a/b"):
        monkeypatch.setattr(type(corpus.table), "location",
                            lambda self, row, pack=pack: Location(pack, 0, 16, 1, (1, 1, 1)))
        answer = client.get(f"/api/images/{sample}")
        assert answer.status_code == 400 and "not a plain file name" in answer.json()["detail"]


@contract("server", "a thumbnail size below 16 or above 1024 pixels, or not a number",
          "422 naming the parameter")
def test_thumbnail_sizes_are_bounded(client, app):
    sample = app.state.service.labels().image_ids[0]
    for size in ("0", "15", "1025", "10000000000", "big", "-1"):
        answer = client.get(f"/api/images/{sample}", params={"size": size})
        assert answer.status_code == 422 and "size" in answer.text


@contract("server", "an image asked for without a token on a hub that is not public",
          "401, as every read")
def test_images_need_a_token_unless_public(hub_view, tmp_path):
    app = create_app(hub_view(tmp_path / "hub"))
    assert TestClient(app).get(f"/api/images/{'0' * 64}").status_code == 401
