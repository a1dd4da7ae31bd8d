"""The Hub facade: add, list, get, load, map, remove; consistency under failures and concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from mll.errors import InvalidParameterError, MLLWarning, UnknownNameError
from mll.hub import Hub


@dataclass
class FakeCandidate:
    wnid: str
    name: str
    score: float
    lexical: bool = True  # the names below are WordNet lemmas


class FakeMatcher:
    """Stands in for mll.graph.Matcher: a fixed table of best nodes."""

    table = {"sandal": "n04133789", "sneaker": "n03472535", "boot": "n02872752"}

    def __init__(self) -> None:
        self.calls = []

    def match(self, terms, context=(), domain="", top=5):
        self.calls.append((list(terms), list(context), domain))
        return [[FakeCandidate(self.table[t], t, 0.8)] if t in self.table else [] for t in terms]


class FakeGraph:
    def __contains__(self, wnid: object) -> bool:
        return wnid != "n00000000"


@pytest.fixture
def fake_graph(hub, monkeypatch):
    matcher = FakeMatcher()
    monkeypatch.setattr(Hub, "_graph_ready", lambda self: True)
    monkeypatch.setattr(Hub, "_matcher", lambda self: matcher)
    monkeypatch.setattr(Hub, "_graph", lambda self: FakeGraph())
    return matcher


def test_add_maps_classes_with_the_matcher(hub, fake_graph, onnx_file, classes_file):
    info = hub.add(onnx_file, classes=classes_file, domain="footwear photos")
    assert [(c.wnid, c.confirmed) for c in info.classes] == [
        ("n04133789", False), ("n03472535", False), ("n02872752", True)]
    assert info.classes[0].score == 0.8 and info.classes[2].score == 1.0
    assert fake_graph.calls == [(["sandal", "sneaker"], ["boot"], "footwear photos")]


def test_add_without_graph_warns_and_leaves_classes_unmapped(hub, onnx_file, classes_file):
    with pytest.warns(MLLWarning, match="2 classes left unmapped.*mll graph build"):
        info = hub.add(onnx_file, classes=classes_file)
    assert [c.wnid for c in info.classes] == [None, None, "n02872752"]


def test_map_review_assign_confirm_rematch(hub, fake_graph, onnx_file):
    info = hub.add(onnx_file, classes=["sandal", "sneaker", "clog"])
    assert info.classes[2].wnid is None
    info = hub.map(info.id, assign={"clog": "n03047690"}, confirm=["sandal"])
    assert [(c.wnid, c.confirmed) for c in info.classes] == [
        ("n04133789", True), ("n03472535", False), ("n03047690", True)]
    assert info.classes[2].score is None  # set by hand
    fake_graph.table = dict(FakeMatcher.table, sneaker="n04199027")
    info = hub.map(info.id, rematch=True)
    assert info.classes[1].wnid == "n04199027"
    assert fake_graph.calls[-1][0] == ["sneaker"]  # confirmed classes are not re-matched
    info = hub.map(info.id, confirm_all=True)
    assert all(c.confirmed for c in info.classes)
    with pytest.raises(UnknownNameError, match="did you mean 'sandal'"):
        hub.map(info.id, confirm=["sandals"])
    with pytest.raises(InvalidParameterError, match="wnids like"):
        hub.map(info.id, assign={"clog": "dog.n.01"})
    with pytest.raises(InvalidParameterError, match="not nodes of the hub's graph"):
        hub.map(info.id, assign={"clog": "n00000000"})


def test_map_rejects_vlms(hub, hf_clip_dir):
    info = hub.add(hf_clip_dir, family="hf-clip")
    with pytest.raises(InvalidParameterError, match="only experts"):
        hub.map(info.id)


def test_bad_class_files(hub, onnx_file, tmp_path):
    with pytest.raises(InvalidParameterError, match="duplicate class names"):
        hub.add(onnx_file, classes=["a", "b", "a"])
    with pytest.raises(InvalidParameterError, match="wnids like"):
        hub.add(onnx_file, classes=["a", "b", "c\tdog"])
    with pytest.raises(InvalidParameterError, match="needs its class names"):
        hub.add(onnx_file)
    with pytest.raises(InvalidParameterError, match="does not exist"):
        hub.add(onnx_file, classes=tmp_path / "missing.txt")
    assert hub.list() == [] and hub.artifacts.digests() == []


@pytest.mark.filterwarnings("ignore:.*classes left unmapped")
def test_list_get_remove(hub, onnx_file, cnn_dir, classes_file):
    a = hub.add(onnx_file, classes=classes_file, name="onnx-footwear")
    b = hub.add(cnn_dir, classes=classes_file, license="MIT")
    assert [m.id for m in hub.list()] == [a.id, b.id]
    assert [m.id for m in hub.list(family="onnx")] == [a.id]
    assert hub.get("onnx-footwear").id == a.id and hub.get(b.id[:5]).license == "MIT"
    removed = hub.remove(a.id)
    assert removed.id == a.id and [m.id for m in hub.list()] == [b.id]
    assert hub.artifacts.digests() == [b.artifact_digest]
    with pytest.raises(UnknownNameError):
        hub.load(a.id)


@pytest.mark.filterwarnings("ignore:.*classes left unmapped")
def test_same_file_with_other_classes_shares_the_artifact(hub, onnx_file):
    a = hub.add(onnx_file, classes=["a", "b", "c"])
    b = hub.add(onnx_file, classes=["x", "y", "z"])
    assert a.id != b.id and a.artifact_digest == b.artifact_digest
    hub.remove(a.id)
    assert hub.artifacts.digests() == [b.artifact_digest]
    hub.load(b.id)


@pytest.mark.filterwarnings("ignore:.*classes left unmapped")
def test_corrupt_artifact_is_reported_on_load(hub, onnx_file, classes_file):
    from mll.errors import ArtifactIntegrityError

    info = hub.add(onnx_file, classes=classes_file)
    path = hub.artifacts.path_of(info.artifact_digest)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        hub.load(info.id)


@pytest.mark.filterwarnings("ignore:.*classes left unmapped")
def test_failed_insert_leaves_nothing_behind(hub, onnx_file, classes_file, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(hub.store, "insert", boom)
    with pytest.raises(RuntimeError):
        hub.add(onnx_file, classes=classes_file)
    assert hub.artifacts.digests() == [] and not list((hub.root / "tmp").iterdir())


def test_external_database_url(tmp_path, onnx_file, classes_file):
    db = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with Hub.open(tmp_path / "hub", db=db) as hub, pytest.warns(MLLWarning):
        hub.add(onnx_file, classes=classes_file)
    assert (tmp_path / "elsewhere.db").is_file() and not (tmp_path / "hub" / "mll.db").exists()
    with Hub.open(tmp_path / "hub", db=db) as hub:
        assert len(hub.list()) == 1


ADD_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
from mll.hub import Hub
hub_dir, model, classes = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
with Hub.open(hub_dir) as hub:
    print(json.dumps({"id": hub.add(model, classes=classes).id}))
"""


def test_concurrent_adds_from_two_processes(tmp_path, onnx_file, cnn_dir):
    """Two processes add at once (different models, then the same one): both succeed."""
    hub_dir = tmp_path / "hub"
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    jobs = [(onnx_file, "a,b,c"), (cnn_dir, "d,e,f"), (onnx_file, "x,y,z"), (onnx_file, "x,y,z")]
    procs = [subprocess.Popen([sys.executable, "-c", ADD_SCRIPT, str(hub_dir), str(m), c],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
             for m, c in jobs]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [r[1][-2000:] for r in results]
    ids = [json.loads(out.strip().splitlines()[-1])["id"] for out, _ in results]
    assert ids[2] == ids[3] and len(set(ids)) == 3
    with Hub.open(hub_dir) as hub:
        infos = hub.list()
        assert sorted(m.id for m in infos) == sorted(set(ids))
        assert sorted(hub.artifacts.digests()) == sorted({m.artifact_digest for m in infos})
        for m in infos:
            hub.load(m.id)
        assert set(hub.store.revision().split(",")) == hub.store._heads()


@pytest.mark.slow
def test_real_matcher_maps_fashion_classes(real_hub, tmp_path, onnx_file, matcher):
    """On the real WordNet graph: class names with context go to the right senses."""
    with Hub.open(real_hub, db=f"sqlite:///{tmp_path / 'mll.db'}") as hub:
        info = hub.add(onnx_file, classes=["sandal", "sneaker", "ankle boot"],
                       domain="grayscale photos of clothing")
        assert [c.wnid for c in info.classes] == ["n04133789", "n03472535", "n02872752"]
        assert not any(c.confirmed for c in info.classes)
        hub.remove(info.id)
