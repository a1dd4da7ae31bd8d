"""The read and ask endpoints on the quick starter hub (a private view of it, see conftest):
every answer is what the Python API gives for the same question."""

from __future__ import annotations

import json
import threading
import time

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from mll.serve import ServeSettings, create_app

pytestmark = pytest.mark.slow

TASK = {"classes": ["sandal", "sneaker", "ankle boot", "zebra", "giraffe"],
        "domain": "small 28x28 grayscale image"}


@pytest.fixture(scope="module")
def app(starter_view):
    return create_app(starter_view, settings=ServeSettings(public=True))


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


@pytest.fixture(scope="module")
def table(app):
    return app.state.service.labels()


def _get(client, path, **params):
    answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_models_list_and_filters_match_the_hub(client, table):
    hub = table.hub
    assert _get(client, "/api/models")["models"] == [i.summary() for i in hub.list()]
    vlms = _get(client, "/api/models", kind="vlm")["models"]
    assert vlms and {m["kind"] for m in vlms} == {"vlm"}
    assert [m["id"] for m in vlms] == [i.id for i in hub.list(kind="vlm")]
    family = _get(client, "/api/models", family="torch-safetensors")["models"]
    assert family and {m["family"] for m in family} == {"torch-safetensors"}
    assert _get(client, "/api/models", family="no-such-family")["models"] == []


def test_concept_search_ranks_the_models_that_serve_a_node(client, table):
    from mll.selection.coverage import node_models

    doc = _get(client, "/api/models", concept="sandal")
    wnid = doc["concept"]["wnid"]
    assert doc["concept"] == {"wnid": "n04133789", "name": "sandal", "synset": "sandal.n.01"}
    assert doc["models"] == [json.loads(json.dumps(m.to_dict())) for m in node_models(table, wnid)]
    accuracies = [m["accuracy"] for m in doc["models"]]
    assert accuracies == sorted(accuracies, reverse=True)
    experts = [m for m in doc["models"] if m["kind"] == "expert"]
    assert experts[0]["name"] == "cnn-footwear"  # the footwear specialist leads on sandals
    for m in experts:  # every expert listed has a head at or below the node
        assert m["heads"] and all(wnid in table.ancestors(h["wnid"]) for h in m["heads"])
        label = table.models[m["id"]]
        at = list(label.stats["nodes"]).index(wnid)
        assert m["images"] >= int(label.stats["count"][at])
    # a coarser concept: models whose heads lie below it, filtered by kind
    footwear = _get(client, "/api/models", concept="footwear.n.02", kind="expert")
    assert footwear["models"] and {m["kind"] for m in footwear["models"]} == {"expert"}
    assert {m["name"] for m in footwear["models"]} >= {"cnn-footwear", "cnn-fashion10"}
    missing = client.get("/api/models", params={"concept": "qwxzzy"})
    assert missing.status_code == 404 and missing.json()["error"] == "UnknownNameError"


def test_the_concept_search_from_the_sql_index_agrees_with_the_label_scan(client, table):
    """The server answers from the candidate index (Hub.serving); scanning every label
    (coverage.node_models) must give the same models, counts and order at every node."""
    from mll.selection.coverage import indexed_node_models, node_models

    nodes = sorted(set().union(*table.sample_node_ancestors.values()))
    heads = {c.wnid for m in table.experts for c in m.info.classes if c.wnid}
    nodes = sorted(set(nodes) | {a for h in heads for a in table.ancestors(h)})
    nodes = nodes[:: max(1, len(nodes) // 150)]  # 150 of them, spread: a scan per node is slow
    assert len(nodes) >= 150
    served = 0
    for wnid in nodes:
        scanned = [m.to_dict() for m in node_models(table, wnid)]
        assert [m.to_dict() for m in indexed_node_models(table, wnid)] == scanned, wnid
        served += bool(scanned)
        for kind in ("expert", "vlm"):
            assert [m.to_dict() for m in indexed_node_models(table, wnid, kind)] == [
                m for m in scanned if m["kind"] == kind], (wnid, kind)
    assert served > 75
    doc = _get(client, "/api/models", concept="footwear.n.01", kind="expert")
    assert doc["models"] == json.loads(json.dumps(
        [m.to_dict() for m in node_models(table, "n03381126") if m.kind == "expert"]))


def test_one_model_with_classes_on_the_graph_and_accuracy_per_node(client, table):
    from mll.selection.coverage import model_nodes

    info = table.hub.get("cnn-footwear")
    doc = _get(client, f"/api/models/{info.id[:6]}")  # an id prefix finds it
    record = json.loads(json.dumps(info.to_dict()))  # what 'mll hub show --json' prints
    classes = record.pop("classes")
    assert {k: doc[k] for k in record} == record
    assert [{k: v for k, v in c.items() if k != "node"} for c in doc["classes"]] == classes
    assert [c["node"] for c in doc["classes"]] == ["sandal", "gym shoe", "boot"]
    assert doc["labels"]["complete"] is True
    assert doc["nodes"] == json.loads(json.dumps(model_nodes(table, info.id)))
    assert {n["wnid"] for n in doc["nodes"]} >= {c.wnid for c in info.classes}
    for n in doc["nodes"]:
        assert 0 <= n["interval"][0] <= n["accuracy"] <= n["interval"][1] <= 1
    styles = {s["style"]: s for s in doc["styles"]}
    assert set(styles) == {"photo", "emoji", "drawing", "gray28"}
    assert styles["gray28"]["accuracy"] > styles["emoji"]["accuracy"]  # trained on 28x28 gray
    for key in ("images", "correct"):  # the same answers, counted by style instead of node
        assert sum(s[key] for s in doc["styles"]) == sum(n[key] for n in doc["nodes"])
    assert _get(client, "/api/models/cnn-footwear")["id"] == info.id  # and its name
    assert client.get("/api/models/zz").status_code == 404


def test_node_search_and_one_node(client, table):
    found = _get(client, "/api/nodes", q="shoe", limit=5)["nodes"]
    assert len(found) == 5 and found[0]["synset"] == "shoe.n.01"
    assert all("definition" in n and "sample_images" in n for n in found)
    assert _get(client, "/api/nodes", q="n04133789")["nodes"][0]["name"] == "sandal"
    assert client.get("/api/nodes", params={"q": ""}).status_code == 422
    assert client.get("/api/nodes", params={"q": "shoe", "limit": 500}).status_code == 422

    node = _get(client, "/api/nodes/footwear.n.01")
    graph = table.graph
    assert node["wnid"] == "n03381126"
    assert [p["wnid"] for p in node["parents"]] == list(graph.parents(node["wnid"]))
    assert [c["wnid"] for c in node["children"]] == list(graph.children(node["wnid"]))
    below = sum(v in graph.descendants(node["wnid"], include_self=True)
                for v in table.image_nodes.tolist())
    assert node["sample_images"] == {"at": 0, "below": below} and below > 0
    assert [m["id"] for m in node["models"]] == [
        m["id"] for m in _get(client, "/api/models", concept=node["wnid"])["models"]]
    leaf = _get(client, "/api/nodes/n04133789")
    assert leaf["sample_images"]["at"] == int((table.image_nodes == "n04133789").sum())


def test_a_node_lists_its_sample_images_and_each_is_served(client, table):
    import io

    import numpy as np
    from PIL import Image

    leaf = _get(client, "/api/nodes/n04133789")
    assert 0 < len(leaf["samples"]) <= 24
    at = min(leaf["sample_images"]["at"], 24)
    assert {s["wnid"] for s in leaf["samples"][:at]} == {"n04133789"}  # its own images first
    assert {s["wnid"] for s in leaf["samples"]} <= table.graph.descendants("n04133789",
                                                                           include_self=True)
    first = leaf["samples"][0]
    assert first["url"] == f"/api/images/{first['id']}"
    answer = client.get(first["url"])
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert "max-age" in answer.headers["cache-control"]
    served = np.asarray(Image.open(io.BytesIO(answer.content)))
    assert np.array_equal(served, table.corpus.load([first["id"]])[0])
    again = client.get(first["url"], headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # an inner node lists the images below it, its own first
    footwear = _get(client, "/api/nodes/footwear.n.01")
    under = table.graph.descendants("n03381126", include_self=True)
    assert footwear["samples"] and {s["wnid"] for s in footwear["samples"]} <= under
    # a larger stored image, as a bounded thumbnail
    big = next(i for i in table.image_ids if max(table.corpus.encoded(i)[0].shape[:2]) > 64)
    stored = client.get(f"/api/images/{big}").content
    assert stored == table.corpus.encoded(big)[2]  # a stored PNG is sent as stored
    full = Image.open(io.BytesIO(stored))
    thumb = Image.open(io.BytesIO(client.get(f"/api/images/{big}", params={"size": 32}).content))
    assert max(full.size) > 64 and max(thumb.size) == 32
    for size in (0, 8, 5000):
        assert client.get(f"/api/images/{big}", params={"size": size}).status_code == 422


def _without_seconds(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "seconds"}


def test_select_answers_what_the_python_api_and_the_cli_answer(client, table, starter_view):
    from mll._json import plain
    from mll.cli import cli
    from mll.selection import Task, make_selector

    answer = client.post("/api/select", json=TASK)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    expected = plain(make_selector("chco").fit(table).select(
        Task.create(TASK["classes"], domain=TASK["domain"])).to_dict())
    assert _without_seconds(doc) == _without_seconds(expected)
    assert doc["seconds"] > 0 and len(doc["classes"]) == len(TASK["classes"])

    cli_run = CliRunner().invoke(cli, ["select", "--classes", ",".join(TASK["classes"]),
                                       "--domain", TASK["domain"], "--hub", str(starter_view),
                                       "--json"])
    assert cli_run.exit_code == 0, cli_run.output
    assert _without_seconds(json.loads(cli_run.stdout)) == _without_seconds(doc)

    p2 = client.post("/api/select", json=TASK | {"method": "p2", "params": {"k": 2}})
    assert p2.status_code == 200 and p2.json()["method"] == "p2"
    pinned = client.post("/api/select", json={"classes": "sandal, sneaker",
                                              "pinned": {"sandal": "n04133789"}})
    assert pinned.json()["classes"][0]["match_confidence"] == 1.0


@pytest.mark.parametrize(("body", "message"), [
    ({"classes": ["sandal"]}, "at least two classes"),
    ({"classes": ["sandal", "sneaker"], "method": "nosuch"}, "unknown selection method"),
    ({"classes": ["sandal", "sneaker"], "method": "oracle"}, "labelled images"),
    ({"classes": ["sandal", "sneaker"], "params": {"k": 2}}, "has no parameter"),
    ({"classes": ["sandal", "sneaker"], "method": "p2", "params": {"k": 0}}, "k"),
    ({"classes": ["sandal", "sneaker"], "pinned": {"sandal": "shoe"}}, "not a wnid"),
])
def test_select_refuses_bad_tasks_with_400(client, body, message):
    answer = client.post("/api/select", json=body)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["detail"]


def test_concurrent_selections_answer_as_serial_ones(client):
    """Routes run in a thread pool; selections share one label table and must not mix."""
    from concurrent.futures import ThreadPoolExecutor

    tasks = [["sandal", "sneaker", "zebra"], ["dog", "cat", "horse", "bear"],
             ["T-shirt", "trouser", "bag"], ["guitar", "violin", "drum"]]

    def ask(classes):
        answer = client.post("/api/select", json={"classes": classes, "domain": TASK["domain"]})
        assert answer.status_code == 200, answer.text
        return _without_seconds(answer.json())

    serial = [ask(t) for t in tasks]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, tasks * 2))
    assert together == serial * 2


def test_selections_beyond_the_concurrency_limit_wait_their_turn(starter_view, monkeypatch):
    """At most ``concurrent_selects`` selections compute at once; the others wait, and all are
    answered."""
    from concurrent.futures import ThreadPoolExecutor

    from mll.selection.base import Selector

    app = create_app(starter_view, settings=ServeSettings(public=True, concurrent_selects=2))
    client = TestClient(app)
    running, peak = [0], [0]
    lock = threading.Lock()
    select = Selector.select

    def counted(self, task, *args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.05)
            return select(self, task, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(Selector, "select", counted)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: client.post("/api/select", json=TASK).status_code,
                              range(8)))
    assert codes == [200] * 8 and peak[0] == 2
