"""The candidate index (``label_serving``): written with the label summary, ranked, cleaned on
removal, on SQLite and (when reachable) PostgreSQL; and equal to a scan of every label."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from mll.errors import InvalidParameterError
from mll.hub import Hub
from mll.hub.records import LabelServing, labelled_models, serving, serving_top
from mll.hub.store import ClassRow, ModelRow, Store
from mll.labels.serving import serving_rows
from mll.labels.summaries import record_summary

DOG, CAT, ANIMAL, ROOT = "n02084071", "n02121808", "n00015388", "n00001740"
ANCESTORS = {DOG: {DOG, ANIMAL, ROOT}, CAT: {CAT, ANIMAL, ROOT}, ANIMAL: {ANIMAL, ROOT},
             ROOT: {ROOT}}


def _model(name: str, kind: str = "expert") -> ModelRow:
    chash = hashlib.sha256(f"serving-{name}".encode()).hexdigest()
    row = ModelRow(id=chash[:12], content_hash=chash, name=name, kind=kind, family="onnx",
                   source="", license="MIT", n_params=10, latency_ms=1.0, input_size=28,
                   input_channels=1, input_mean=[0.5], input_std=[0.5], backbone=None,
                   artifact_digest=hashlib.sha256(name.encode()).hexdigest(), artifact_bytes=3,
                   config={}, metrics={}, created_at=datetime.now(UTC))
    row.classes = [ClassRow(idx=0, name="a", wnid=None, score=None, confirmed=False)]
    return row


def _summary(model_id: str) -> dict:
    return {"model_id": model_id, "graph_version": "g" * 64, "corpus_version": "k" * 64,
            "images": 40, "labelling_seconds": 1.0, "labelled_at": "2026-01-02T03:04:05Z",
            "nodes_covered": 2, "mean_accuracy_own_classes": 0.5, "bytes": 10}


def _publish(store: Store, row: ModelRow, counts: dict[str, tuple[int, int]]) -> None:
    """Record a summary with index rows ``node -> (images, correct)``."""
    rows = [{"model_id": row.id, "node": n, "kind": row.kind, "images": i, "correct": c}
            for n, (i, c) in counts.items()]
    record_summary(store, _summary(row.id), rows)


def _answer(store: Store, node: str, **kw) -> list[tuple[str, int, int]]:
    with store.read() as s:
        return [(r.model_id, r.images, r.correct) for r in serving(s, node, **kw)]


def test_ranked_by_accuracy_then_images_then_id_with_unmeasured_last(store):
    m = {n: _model(n) for n in ("a", "b", "c", "d")}
    vlm = _model("v", kind="vlm")
    for row in [*m.values(), vlm]:
        store.insert(row)
    _publish(store, m["a"], {DOG: (10, 5)})  # 0.5 on 10
    _publish(store, m["b"], {DOG: (20, 10)})  # 0.5 on 20: before a
    _publish(store, m["c"], {DOG: (0, 0)})  # served, never measured: last
    _publish(store, m["d"], {DOG: (4, 4), CAT: (3, 0)})
    _publish(store, vlm, {DOG: (8, 6)})
    a, b, c, d, v = (r.id for r in (*m.values(), vlm))
    assert _answer(store, DOG) == [(d, 4, 4), (v, 8, 6), (b, 20, 10), (a, 10, 5), (c, 0, 0)]
    assert _answer(store, DOG, limit=2) == [(d, 4, 4), (v, 8, 6)]
    assert _answer(store, DOG, kind="vlm") == [(v, 8, 6)]
    assert _answer(store, CAT) == [(d, 3, 0)]
    assert _answer(store, ANIMAL) == []
    with store.read() as s:
        first = serving(s, DOG, limit=1)[0]
    assert first.to_dict() == {"node": DOG, "id": d, "name": "d", "kind": "expert",
                               "family": "onnx", "images": 4, "correct": 4, "accuracy": 1.0}
    with store.read() as s:
        assert serving(s, DOG)[-1].accuracy is None


def test_top_per_node_is_each_nodes_ranked_answer_cut_and_models_list_in_hub_order(store):
    m = {n: _model(n) for n in ("a", "b", "c", "d")}
    vlm = _model("v", kind="vlm")
    for row in [*m.values(), vlm]:
        store.insert(row)
    _publish(store, m["a"], {DOG: (10, 5), ANIMAL: (10, 9)})
    _publish(store, m["b"], {DOG: (20, 10)})
    _publish(store, m["c"], {DOG: (0, 0), CAT: (5, 5)})
    _publish(store, vlm, {DOG: (8, 6)})
    with store.read() as s:
        for limit in (1, 2, 8):
            for kind in (None, "expert", "vlm"):
                top = serving_top(s, [DOG, CAT, CAT, ANIMAL, ROOT], kind=kind, limit=limit)
                assert list(top) == sorted({DOG, CAT, ANIMAL, ROOT})
                for node, ids in top.items():
                    assert ids == [r.model_id for r in serving(s, node, kind=kind, limit=limit)]
        assert serving_top(s, []) == {}
        listed = labelled_models(s)
    assert [r[0] for r in listed] == [r.id for r in (*m.values(), vlm)]
    assert [r[1] for r in listed] == ["expert"] * 4 + ["vlm"]
    assert [r[2] for r in listed] == [("g" * 64, "k" * 64)] * 3 + [None, ("g" * 64, "k" * 64)]


def test_republishing_replaces_rows_and_removal_cleans_the_index(store):
    a, b = _model("a"), _model("b")
    store.insert(a)
    store.insert(b)
    _publish(store, a, {DOG: (10, 5), CAT: (2, 1)})
    _publish(store, b, {DOG: (10, 9)})
    _publish(store, a, {DOG: (10, 10)})  # a new label: the CAT row goes
    assert _answer(store, DOG) == [(a.id, 10, 10), (b.id, 10, 9)]
    assert _answer(store, CAT) == []
    assert store.delete(a.id)
    assert _answer(store, DOG) == [(b.id, 10, 9)]
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(LabelServing)) == 1


def test_serving_rows_follow_the_coverage_definitions():
    stats = {"nodes": np.array([DOG, CAT]), "count": np.array([10, 6]),
             "correct": np.array([7, 3]), "covered": np.array([True, False])}
    rows = serving_rows("m1", "expert", [DOG, None], stats, ANCESTORS.__getitem__)
    # the dog head serves itself and every node above it, measured on dog images only
    assert {r["node"]: (r["images"], r["correct"]) for r in rows} == {
        DOG: (10, 7), ANIMAL: (10, 7), ROOT: (10, 7)}
    cat_head = serving_rows("m2", "expert", [CAT], {**stats, "covered": np.array([False, True])},
                            ANCESTORS.__getitem__)
    assert {r["node"]: r["images"] for r in cat_head} == {CAT: 6, ANIMAL: 6, ROOT: 6}
    vlm = serving_rows("v", "vlm", [], {**stats, "covered": np.array([True, True])},
                       ANCESTORS.__getitem__)
    assert {r["node"]: (r["images"], r["correct"]) for r in vlm} == {
        DOG: (10, 7), CAT: (6, 3), ANIMAL: (16, 10), ROOT: (16, 10)}
    unmeasured = serving_rows("m3", "expert", [CAT], {**stats, "count": np.array([0, 0])},
                              ANCESTORS.__getitem__)
    assert {r["node"]: r["images"] for r in unmeasured} == {CAT: 0, ANIMAL: 0, ROOT: 0}


def test_hub_serving_refuses_bad_arguments_and_the_cli_answers_json(tmp_path):
    with Hub.open(tmp_path / "hub") as hub:
        a = _model("a")
        hub.store.insert(a)
        _publish(hub.store, a, {DOG: (10, 5)})
        assert [r.model_id for r in hub.serving(DOG)] == [a.id]
        for bad in ({"node": "dog"}, {"node": DOG, "kind": "llm"}, {"node": DOG, "limit": 0},
                    {"node": DOG, "limit": True}):
            with pytest.raises(InvalidParameterError):
                hub.serving(**bad)
    from mll.cli import cli

    result = CliRunner().invoke(cli, ["hub", "serving", DOG, "--hub", str(tmp_path / "hub"),
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"node": DOG, "id": a.id, "name": "a",
                                          "kind": "expert", "family": "onnx", "images": 10,
                                          "correct": 5, "accuracy": 0.5}]


def test_cli_names_a_bad_node_in_one_line(tmp_path, capsys):
    from mll.cli import main

    Hub.open(tmp_path / "hub").close()
    assert main(["hub", "serving", "dog", "--hub", str(tmp_path / "hub")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "Error: node must be a WordNet id such as n02084071, got 'dog'"]
    assert main(["hub", "serving", DOG, "--limit", "0", "--hub", str(tmp_path / "hub")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.slow
def test_index_equals_a_scan_of_every_label_on_the_starter_hub(hub_view, tmp_path):
    from sqlalchemy import delete

    from mll.labels import label_hub
    from mll.selection import LabelTable
    from mll.selection.coverage import node_models

    view = hub_view(tmp_path / "view")
    label_hub(view)  # indexes labels published before the index existed
    with Hub.open(view) as hub:  # a label published before the index: 'mll label' indexes it
        some = hub.list()[2].id
        with hub.store.write() as s:
            s.execute(delete(LabelServing).where(LabelServing.model_id == some))
    label_hub(view)
    table = LabelTable.open(view)
    nodes = sorted(set().union(*table.sample_node_ancestors.values()))
    with Hub.open(view) as hub:
        with hub.store.read() as s:
            assert s.scalar(select(func.count()).where(LabelServing.model_id == some))
        for node in nodes[:: max(1, len(nodes) // 300)]:
            scan = [(m.model_id, m.measured.images, m.measured.correct)
                    for m in node_models(table, node)]
            assert [(r.model_id, r.images, r.correct)
                    for r in hub.serving(node, limit=None)] == scan, node
