"""Labelling spread over a real Ray cluster of two nodes on this machine (``ray start`` twice).

Each test starts its own cluster (a head and one worker node, one CPU each, every port free and a
token of its own) and kills every process of it afterwards. The labels must equal the local
executor's, and a run whose worker node is killed mid-way must still finish, on the head.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mll.labels import LabelStore, label_hub, read_outputs, read_stats

BATCH = 64


@pytest.fixture
def cluster():
    if importlib.util.find_spec("ray") is None:
        pytest.skip("the Ray executor needs mll[ray]")
    from mll.labels.localray import LocalRayCluster

    with LocalRayCluster([1, 1]) as c:
        nodes = list(c.nodes)
        yield c
    for node in nodes:
        assert not node.pids()


def _mll_label(cluster, hub: Path, ids: list[str]) -> subprocess.Popen:
    """``mll label --executor ray --ray-address ...`` as its own driver process, as a user runs
    it: the cluster's token in its environment (Ray reads it once per process)."""
    cmd = [sys.executable, "-m", "mll", "label", "--hub", str(hub), "--executor", "ray",
           "--ray-address", cluster.address, "--batch", str(BATCH), "--json"]
    for i in ids:
        cmd += ["--model", i]
    return subprocess.Popen(cmd, env={**os.environ, **cluster.env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _report(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


def _unlabelled(hub_view, dest: Path, n: int) -> list[str]:
    """A private view of the starter hub whose first ``n`` small CNNs have no labels yet."""
    from mll.hub import Hub

    hub_view(dest, writable=("labels",))
    with Hub.open(dest) as hub:
        infos = [i for i in hub.list() if i.name.startswith("cnn-")][:n]
    for info in infos:
        shutil.rmtree(LabelStore(dest).model_dir(info.content_hash))
    return [i.id for i in infos]


def _labels(hub: Path, ids: list[str]) -> dict[str, tuple]:
    from mll.hub import Hub

    with Hub.open(hub) as h:
        infos = [h.get(i) for i in ids]
    out = {}
    for info in infos:
        (label,) = LabelStore(hub).published_dirs(info.content_hash)
        outputs = read_outputs(label)
        out[info.id] = (outputs.id_list(), np.asarray(outputs.values), read_stats(label))
    return out


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for key in a:
        assert a[key][0] == b[key][0]
        np.testing.assert_array_equal(a[key][1], b[key][1])
        for name, arr in a[key][2].items():
            np.testing.assert_array_equal(arr, b[key][2][name])


@pytest.mark.ray
@pytest.mark.slow
def test_labels_spread_over_two_nodes_equal_the_local_executors(cluster, hub_view, tmp_path):
    ids = _unlabelled(hub_view, tmp_path / "ray", 2)
    assert _unlabelled(hub_view, tmp_path / "local", 2) == ids
    label_hub(tmp_path / "local", models=ids, batch=BATCH, show_progress=False)
    report = _report(_mll_label(cluster, tmp_path / "ray", ids))
    assert sorted(report["models_labelled"]) == sorted(ids) and not report["failed"]
    assert report["executor"] == "ray" and len(report["nodes"]) == 2  # both nodes ran shards
    assert sum(n["images"] for n in report["nodes"].values()) == report["outputs_computed"]
    _same(_labels(tmp_path / "local", ids), _labels(tmp_path / "ray", ids))


@pytest.mark.ray
@pytest.mark.slow
def test_a_node_killed_mid_run_still_finishes(cluster, hub_view, tmp_path):
    ids = _unlabelled(hub_view, tmp_path / "ray", 3)
    _unlabelled(hub_view, tmp_path / "local", 3)
    label_hub(tmp_path / "local", models=ids, batch=BATCH, show_progress=False)
    shards = tmp_path / "ray" / "labels"
    proc = _mll_label(cluster, tmp_path / "ray", ids)
    deadline = time.monotonic() + 300
    node1 = next(n for n in cluster.nodes if n.name == "node1")
    while proc.poll() is None and not (len(list(shards.glob("*/shards/*.npz"))) >= 4
                                       and node1.running("_shard_on_node")):
        assert time.monotonic() < deadline, "no shards written, or none on node1"
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the node could be killed"
    published_before = [d for i in ids for d in _published_dirs(tmp_path / "ray", i)]
    cluster.kill("node1")  # SIGKILL its raylet mid-task: its worker processes die with it
    report = _report(proc)
    assert sorted(report["models_labelled"]) == sorted(ids) and not report["failed"]
    assert not published_before  # nothing visible before the run finished
    assert sum(n["images"] for n in report["nodes"].values()) == report["outputs_computed"]
    _same(_labels(tmp_path / "local", ids), _labels(tmp_path / "ray", ids))
    assert not list(shards.rglob("*.tmp")) and not list(shards.glob("*/.*"))


def _published_dirs(hub: Path, model_id: str) -> list[Path]:
    from mll.hub import Hub

    with Hub.open(hub) as h:
        return LabelStore(hub).published_dirs(h.get(model_id).content_hash)


def test_a_malformed_ray_address_is_one_clear_error(monkeypatch):
    from mll.errors import InvalidParameterError
    from mll.labels.executors import get_executor

    with pytest.raises(InvalidParameterError, match="HOST:PORT"):
        get_executor("ray", address="not an address")
    monkeypatch.setenv("RAY_ADDRESS", "http://x")
    with pytest.raises(InvalidParameterError, match="HOST:PORT"):
        get_executor("ray")


def test_mll_label_refuses_a_malformed_ray_address_before_anything_runs(tmp_path, capsys):
    from mll.cli import main

    code = main(["label", "--hub", str(tmp_path / "none"), "--executor", "ray",
                 "--ray-address", "head;rm -rf /"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "HOST:PORT" in err
    assert not (tmp_path / "none").exists()
