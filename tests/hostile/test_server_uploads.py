"""Hostile uploads to ``mll serve``: wrong roles, pickles, oversized files, zip bombs, links and
file names that try to leave the hub (on an empty hub: every refusal happens in the request,
before a job is queued; the jobs themselves are tested in tests/serve/test_jobs.py)."""

from __future__ import annotations

import io
import pickle
import stat
import zipfile

import pytest

pytest.importorskip("fastapi", reason="mll serve needs mll[serve]")
pytest.importorskip("python_multipart", reason="uploads need python-multipart (mll[serve])")

from fastapi.testclient import TestClient  # noqa: E402

from mll.hub import Hub  # noqa: E402
from mll.serve import ServeSettings, create_app  # noqa: E402
from mll.serve.jobs import JobQueue  # noqa: E402
from mll.serve.tokens import TokenStore  # noqa: E402

contract = pytest.mark.contract
CLASSES = b"sandal\nsneaker\nankle boot\n"
# A safetensors file: 8-byte header length, a JSON header, then the tensor bytes.
# These tests send many refused uploads with one token: the rate limit is tested on its own.
UNLIMITED = ServeSettings(upload_per_minute=0)
SAFETENSORS = (b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}    ', b"\0\0\0\0")


def _safetensors() -> bytes:
    header = SAFETENSORS[0]
    return len(header).to_bytes(8, "little") + header + SAFETENSORS[1]


@pytest.fixture
def hub_dir(tmp_path):
    root = tmp_path / "hub"
    Hub.open(root, create=True).close()
    return root


def _tokens(hub_dir) -> dict[str, str]:
    with Hub.open(hub_dir, create=False) as hub:
        store = TokenStore(hub.store)
        return {role: store.create(role)[1] for role in ("reader", "uploader", "admin")}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _upload(client, token, name, data, classes=CLASSES, **form):
    return client.post("/api/models", headers=_bearer(token) if token else {},
                       files={"weights": (name, data), "classes": ("classes.txt", classes)},
                       data=form)


def _queued(hub_dir) -> int:
    with Hub.open(hub_dir, create=False) as hub:
        return len(JobQueue(hub.store).list())


def _staged(hub_dir) -> list[str]:
    return sorted(str(p.relative_to(hub_dir)) for p in (hub_dir / "uploads").rglob("*")) \
        if (hub_dir / "uploads").exists() else []


def _zip(members: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@contract("server", "a model upload without a token, with a reader token, or a removal with an "
          "uploader token", "401 without a token, 403 for a role too low; nothing is staged or "
          "queued")
def test_uploads_and_removals_need_their_roles(hub_dir):
    tokens = _tokens(hub_dir)
    client = TestClient(create_app(hub_dir, settings=ServeSettings(public=True, upload_per_minute=0)))
    assert _upload(client, None, "m.safetensors", _safetensors()).status_code == 401
    answer = _upload(client, tokens["reader"], "m.safetensors", _safetensors())
    assert answer.status_code == 403 and "uploader" in answer.json()["detail"]
    removal = client.delete("/api/models/anything", headers=_bearer(tokens["uploader"]))
    assert removal.status_code == 403 and "admin" in removal.json()["detail"]
    assert client.delete("/api/models/anything").status_code == 401
    assert _queued(hub_dir) == 0 and _staged(hub_dir) == []
    ok = _upload(client, tokens["uploader"], "m.safetensors", _safetensors())
    assert ok.status_code == 202 and ok.headers["location"] == f"/api/jobs/{ok.json()['id']}"
    assert ok.json()["state"] == "queued" and _queued(hub_dir) == 1


@contract("server", "a pickle uploaded as weights: a .pt/.pkl name, or pickle bytes named "
          "model.onnx or .safetensors", "400 UnsafeFormatError naming the safe formats (ONNX, "
          "safetensors, a CLIP folder); never unpickled; nothing staged or queued")
def test_pickle_uploads_are_refused_naming_the_safe_formats(hub_dir):
    token = _tokens(hub_dir)["uploader"]
    client = TestClient(create_app(hub_dir, settings=UNLIMITED))
    blob = pickle.dumps({"weights": [1.0, 2.0]})
    for name in ("model.pt", "model.pkl", "model.onnx", "weights.safetensors"):
        answer = _upload(client, token, name, blob)
        assert answer.status_code == 400, name
        body = answer.json()
        assert body["error"] == "UnsafeFormatError"
        assert "pickle" in body["detail"] and "ONNX" in body["detail"]
        assert "safetensors" in body["detail"] and "CLIP" in body["detail"]
    zipped = _upload(client, token, "m.zip", _zip({"model.safetensors": _safetensors(),
                                                   "config.json": b"{}", "extra.pkl": blob}))
    assert zipped.status_code == 400 and zipped.json()["error"] == "UnsafeFormatError"
    assert _queued(hub_dir) == 0 and _staged(hub_dir) == []


@contract("server", "an upload over the server's upload limit (--max-upload-mb): by the file's "
          "bytes, or a whole body over the route's limit", "413; nothing staged or queued")
def test_oversized_uploads_are_cut_off_with_413(hub_dir):
    token = _tokens(hub_dir)["uploader"]
    settings = ServeSettings(max_body_bytes=10_000, max_upload_bytes=20_000,
                             upload_per_minute=0)
    client = TestClient(create_app(hub_dir, settings=settings))
    over_file = _upload(client, token, "m.safetensors", _safetensors() + b"\0" * 25_000)
    assert over_file.status_code == 413, over_file.text
    over_body = _upload(client, token, "m.safetensors", _safetensors() + b"\0" * 200_000)
    assert over_body.status_code == 413
    assert _upload(client, token, "m.safetensors", _safetensors()).status_code == 202
    assert _queued(hub_dir) == 1 and len(_staged(hub_dir)) == 2  # one job: its dir and file


@contract("server", "uploaded file names that try to leave the hub: '../../x.onnx', an absolute "
          "path, and zip members '../x', '/etc/x', 'a/b/c', 'dir\\\\x' or a symbolic link",
          "the weights are stored as uploads/<job id>/model.<suffix>, never under the sent name; "
          "bad zip members are refused with 400 and nothing is written outside the hub")
def test_uploaded_names_never_become_paths(hub_dir, tmp_path):
    token = _tokens(hub_dir)["uploader"]
    client = TestClient(create_app(hub_dir, settings=UNLIMITED))
    answer = _upload(client, token, "../../../escape.safetensors", _safetensors())
    assert answer.status_code == 202
    job = answer.json()["id"]
    assert _staged(hub_dir) == [f"uploads/{job}", f"uploads/{job}/model.safetensors"]
    assert _upload(client, token, "/tmp/abs.safetensors", _safetensors()).status_code == 202
    for members, links in (({"../x.json": b"{}"}, ()), ({"/etc/x.json": b"{}"}, ()),
                           ({"a/b/c.json": b"{}", "a/d.json": b"{}"}, ()),
                           ({"dir\\x.json": b"{}"}, ()),
                           ({"config.json": b"{}"}, ("model.safetensors",))):
        refused = _upload(client, token, "m.zip", _zip(members, links))
        assert refused.status_code == 400, (members, refused.text)
    assert not list(tmp_path.glob("x.json")) and not (tmp_path / "escape.safetensors").exists()
    assert _queued(hub_dir) == 2
    assert all(p.count("/") <= 2 for p in _staged(hub_dir))


@contract("server", "a zip bomb uploaded as a model directory (a member inflating 1000x), a zip "
          "that is not one, and a zip of a folder holding a pickle",
          "400/413 from the zip directory's sizes, before inflating; nothing staged")
def test_zip_bombs_are_refused(hub_dir):
    token = _tokens(hub_dir)["uploader"]
    client = TestClient(create_app(hub_dir, settings=UNLIMITED))
    bomb = _zip({"model.safetensors": b"\0" * (20 * 1024**2), "config.json": b"{}"})
    assert len(bomb) < 100_000
    answer = _upload(client, token, "bomb.zip", bomb)
    assert answer.status_code == 413 and "compression ratio" in answer.json()["detail"]
    assert _upload(client, token, "fake.zip", b"PK\x03\x04 not a zip").status_code == 400
    ok = _upload(client, token, "folder.zip", _zip({"cnn/model.safetensors": _safetensors(),
                                                     "cnn/config.json": b"{}"}))
    assert ok.status_code == 202  # one folder zipped whole: its files, unpacked flat
    job = ok.json()["id"]
    assert _staged(hub_dir) == [f"uploads/{job}", f"uploads/{job}/model",
                                f"uploads/{job}/model/config.json",
                                f"uploads/{job}/model/model.safetensors"]


@contract("server", "upload forms with an unknown family, a kind that contradicts it, options "
          "that are not a JSON object, a class list that is not UTF-8 or empty, or weights with "
          "an unknown suffix", "400 with one line naming the field; nothing staged or queued")
def test_bad_upload_forms_are_refused_in_one_line(hub_dir):
    token = _tokens(hub_dir)["uploader"]
    client = TestClient(create_app(hub_dir, settings=UNLIMITED))
    cases = [({"family": "onxx"}, CLASSES, "m.onnx"), ({"family": "onnx", "kind": "vlm"}, CLASSES,
                                                       "m.onnx"),
             ({"options": "[1, 2]"}, CLASSES, "m.onnx"), ({}, b"\xff\xfe\x00s", "m.onnx"),
             ({}, b"# nothing\n", "m.onnx"), ({}, CLASSES, "m.exe")]
    for form, classes, name in cases:
        answer = _upload(client, token, name, _safetensors(), classes=classes, **form)
        assert answer.status_code == 400, (form, answer.text)
        assert "\n" not in answer.json()["detail"]
    assert "onnx" in _upload(client, token, "m.onnx", _safetensors(),
                             family="onxx").json()["detail"]
    assert _queued(hub_dir) == 0 and _staged(hub_dir) == []
