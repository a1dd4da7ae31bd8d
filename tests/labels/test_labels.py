"""Labelling on real images and real (small) models: incremental, crash-safe, same on Ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mll.labels import LabelStore, label_hub, read_outputs, read_stats


@pytest.fixture(scope="module")
def small_hub(tmp_path_factory, real_hub) -> Path:
    """Graph, a Fashion-MNIST-only quick corpus, and two tiny CNN experts (one per class subset)."""
    from mll.corpus import Corpus, CorpusConfig, build
    from mll.corpus.mappings import load_mapping
    from mll.graph import open_graph
    from mll.hub import Hub
    from mll.hub.train import train_cnn

    hub = tmp_path_factory.mktemp("labels") / "hub"
    open_graph(real_hub, build=True)
    shutil.copytree(real_hub / "graph", hub / "graph", ignore=shutil.ignore_patterns("captions-*"))
    build(hub, CorpusConfig.for_quick(sources=("fashion-mnist",), gray_train_per_class=40))
    corpus = Corpus.open(hub)
    names = {r.wnid: r.extra[0] for r in load_mapping("fashion-mnist").values()}
    records = corpus.records(role="train", source="fashion-mnist")
    with Hub.open(hub) as h:
        for name, keep in (("all-ten", sorted(names)), ("first-four", sorted(names)[:4])):
            rs = [r for r in records if r.wnid in keep]
            wn = sorted({r.wnid for r in rs})
            model = train_cnn(corpus.load([r.image_id for r in rs]), [wn.index(r.wnid) for r in rs],
                              [names[w] for w in wn], epochs=1, name=name, seed=0)
            h.add(model, classes=[f"{names[w]}\t{w}" for w in wn], name=name)
    return hub


def _published(hub: Path) -> dict[str, dict]:
    out = {}
    for summary in sorted(hub.glob("labels/*/*/summary.json")):
        d = summary.parent
        out[d.parent.name] = {"values": np.asarray(read_outputs(d).values),
                              "ids": read_outputs(d).id_list(),
                              "stats": read_stats(d)}
    return out


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for key in a:
        assert a[key]["ids"] == b[key]["ids"]
        np.testing.assert_array_equal(a[key]["values"], b[key]["values"])
        for name, arr in a[key]["stats"].items():
            np.testing.assert_array_equal(arr, b[key]["stats"][name])


def test_label_then_nothing_to_do(small_hub, tmp_path):
    hub = tmp_path / "hub"
    shutil.copytree(small_hub, hub)
    report = label_hub(hub)
    assert len(report.models_labelled) == 2 and report.outputs_computed == 2 * report.images
    summary = report.per_model[report.models_labelled[0]]
    assert summary["nodes_covered"] >= 4 and 0 <= summary["mean_accuracy_own_classes"] <= 1
    assert {"auroc", "auroc_max_softmax"} <= set(summary["detector"])
    from mll.hub import Hub

    with Hub.open(hub) as h:  # the summary row the hub reads ('mll hub list/show')
        row = h.get(report.models_labelled[0])
    assert row.labelled and row.labels["images"] == report.images
    assert row.labels["mean_accuracy"] == summary["mean_accuracy_own_classes"]
    with Hub.open(hub) as h:  # the candidate index, written with the summary
        for model_id in report.models_labelled:
            head = next(c.wnid for c in h.get(model_id).classes if c.wnid)
            served = {r.model_id: r for r in h.serving(head, limit=None)}
            assert model_id in served and served[model_id].images > 0
    again = label_hub(hub)
    assert again.models_labelled == [] and len(again.models_up_to_date) == 2
    assert again.outputs_computed == 0
    assert not list(hub.glob("labels/*/shards/*.npz"))  # merged into the published labels


def test_a_stopped_run_publishes_nothing_and_the_next_one_resumes(small_hub, tmp_path):
    """``stop`` (how a cancelled background job ends its labelling) is asked between groups of
    shards: the run ends there unpublished, and a later run finishes from the shards it left."""
    reference, stopped = tmp_path / "ref", tmp_path / "stopped"
    shutil.copytree(small_hub, reference)
    shutil.copytree(small_hub, stopped)
    label_hub(reference, batch=4)
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 2  # two groups run, then stop

    report = label_hub(stopped, batch=4, stop=stop)
    assert report.stopped and report.models_labelled == [] and not report.failed
    assert not list(stopped.glob("labels/*/*/summary.json"))
    shards = len(list(stopped.glob("labels/*/shards/*.npz")))
    assert 0 < shards <= 2 * (os.cpu_count() or 1)
    resumed = label_hub(stopped, batch=4)
    assert len(resumed.models_labelled) == 2
    assert resumed.outputs_computed == 2 * resumed.images - 4 * shards
    _same(_published(reference), _published(stopped))


def test_kill_minus_nine_then_resume_gives_identical_labels(small_hub, tmp_path):
    reference, crashed = tmp_path / "ref", tmp_path / "crash"
    shutil.copytree(small_hub, reference)
    shutil.copytree(small_hub, crashed)
    label_hub(reference, batch=4)
    env = dict(os.environ, MLL_NO_PROGRESS="1")
    cmd = [sys.executable, "-m", "mll", "label", "--hub", str(crashed), "--batch", "4"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(crashed.glob("labels/*/shards/*.npz"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    shards = list(crashed.glob("labels/*/shards/*.npz"))
    assert shards, "the labelling run was killed before writing any shard"
    assert not list(crashed.glob("labels/*/*/summary.json")) or len(_published(crashed)) < 2
    done = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    assert report["outputs_computed"] < 2 * report["images"]  # it resumed, not restarted
    _same(_published(reference), _published(crashed))


def test_label_store_publish_is_atomic(tmp_path):
    from mll.labels.store import Outputs

    store = LabelStore(tmp_path)
    dest = store.label_dir("ab" * 32, "g" * 12, "c" * 12)
    out = Outputs.from_dense(["x", "y"], np.eye(2, dtype=np.float32), "expert")
    store.publish(dest, out, {"count": np.array([1])}, {}, {"ok": True})
    assert store.is_published("ab" * 32, "g" * 12, "c" * 12)
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]


def test_wide_heads_are_truncated_with_the_rest_mass():
    from mll.labels.store import TOP_M, Outputs

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(1000), size=3).astype(np.float32)
    out = Outputs.from_dense(["a", "b", "c"], p, "expert")
    assert out.values.shape == (3, TOP_M) and out.index.shape == (3, TOP_M)
    dense = out.dense(1000)
    assert (dense.argmax(axis=1) == p.argmax(axis=1)).all()
    np.testing.assert_allclose(dense.sum(axis=1) + out.rest.astype(np.float32), 1, atol=2e-3)


@pytest.mark.ray
def test_ray_executor_writes_the_same_labels(small_hub, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "ray"
    shutil.copytree(small_hub, local)
    shutil.copytree(small_hub, remote)
    label_hub(local)
    report = label_hub(remote, executor="ray", batch=32)
    assert report.executor == "ray" and len(report.models_labelled) == 2
    _same(_published(local), _published(remote))
