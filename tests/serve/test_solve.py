"""Solve over HTTP on a private view of the quick starter hub: real sample images (fetched from
/api/images) sent as files and as a zip, predictions equal to the Python API's, the report and the predictor served, old
solves pruned; and the pages that show the hub (search, model, node with its images)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="mll serve needs mll[serve]")

from fastapi.testclient import TestClient  # noqa: E402

from mll.serve import ServeSettings, create_app  # noqa: E402

pytestmark = pytest.mark.slow
CLASSES = ["sandal", "sneaker", "ankle boot"]


@pytest.fixture(scope="module")
def client(starter_view):
    app = create_app(starter_view, settings=ServeSettings(public=True, keep_solves=2))
    yield TestClient(app)
    app.state.service.close()


@pytest.fixture(scope="module")
def images(client) -> list[tuple[str, bytes]]:
    """Two real sample images of each class, as PNG files, fetched through the image route."""
    out = []
    for word in ("sandal", "sneaker", "boot"):
        for sample in client.get(f"/api/nodes/{word}").json()["samples"][:2]:
            answer = client.get(sample["url"])
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
            out.append((f"{word}-{sample['id'][:8]}.png", answer.content))
    return out


def test_a_task_is_solved_from_uploaded_images(client, images, tmp_path):
    from mll.reuse import load_predictor
    from mll.selection import Task, make_selector

    sent = images + [("notes.txt", b"not an image")]
    answer = client.post("/api/solve", data={"classes": "\n".join(CLASSES)},
                         files=[("files", f) for f in sent])
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["classes"] == CLASSES
    assert [p["file"] for p in doc["predictions"]] == [name for name, _ in images]
    assert doc["skipped"] == [{"file": "notes.txt", "reason": doc["skipped"][0]["reason"]}]
    assert {p["class"] for p in doc["predictions"]} <= set(CLASSES)
    right = sum(p["class"].split()[-1] == p["file"].split("-")[0] for p in doc["predictions"])
    assert right >= 4  # real images of footwear, classified by real models
    table = client.app.state.service.labels()
    expected = make_selector("chco").fit(table).select(Task.create(CLASSES)).to_dict()
    assert doc["selection"]["models"] == expected["models"]
    report = client.get(doc["report_url"])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "sandal" in report.text and "<img" in report.text
    zipped = client.get(doc["predictor_url"])
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    (tmp_path / "p.zip").write_bytes(zipped.content)
    predictor = load_predictor(tmp_path / "p.zip", tmp_path)
    from mll.images import load_image_file

    files = []
    for name, data in images:
        (tmp_path / name).write_bytes(data)
        files.append(load_image_file(tmp_path / name))
    got = [CLASSES[k] for k in predictor.predict(files)]
    assert got == [p["class"] for p in doc["predictions"]]  # the download predicts the same
    kept = client.app.state.service.hub.root / "serve" / "solves" / doc["solve_id"]
    assert json.loads((kept / "result.json").read_text()) == doc
    assert not (kept / "images").exists()  # the sent images are not kept


def test_a_zip_of_images_is_solved_and_old_solves_are_pruned(client, images):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in images:
            zf.writestr(f"shoes/{name}", data)
    ids = []
    for _ in range(3):
        answer = client.post("/api/solve", data={"classes": "sandal, sneaker, ankle boot",
                                                 "domain": "grayscale product photos"},
                             files=[("files", ("shoes.zip", buf.getvalue()))])
        assert answer.status_code == 200, answer.text
        files = [p["file"] for p in answer.json()["predictions"]]
        assert files == sorted(n for n, _ in images)  # a zip's images in name order
        ids.append(answer.json()["solve_id"])
    assert client.get(f"/api/solves/{ids[0]}/report").status_code == 404  # keep_solves=2
    assert client.get(f"/api/solves/{ids[2]}/predictor").status_code == 200
    assert client.get("/api/solves/..%2F..%2Fmll.db/report").status_code == 404


def test_pages_show_search_models_and_nodes(client):
    found = client.get("/search?q=sandal")
    assert found.status_code == 200 and "cnn-footwear" in found.text
    service = client.app.state.service
    model_id = service.models(concept="sandal")["models"][0]["id"]
    assert f'href="/models/{model_id}"' in found.text
    page = client.get(f"/models/{model_id}")
    assert page.status_code == 200 and "<svg class=\"chart\"" in page.text
    assert "Strengths by image style" in page.text and "sandal" in page.text
    node = client.get("/nodes/sandal")
    samples = service.node("sandal")["samples"]
    assert node.status_code == 200 and samples
    assert all(f'src="{i["url"]}?size=128"' in node.text for i in samples)
    home = client.get("/")
    figures = service.figures()
    assert f"<b>{figures['models']}</b> models" in home.text
    assert figures["sample_images"] == len(np.asarray(service.labels().samples.ids))
    plan = client.get("/task", params={"classes": "sandal\nsneaker\nankle boot"})
    assert plan.status_code == 200 and "Predicted accuracy" in plan.text
    bad = client.get("/task", params={"classes": "sandal"})
    assert bad.status_code == 400 and "at least two classes" in bad.text
