"""A queue of uploaded models labelled by two ``mll worker`` processes over a two-node Ray cluster.

The cluster (a head and one worker node, ``ray start`` each, one CPU each) is started by the test
and every process of it killed afterwards; the workers are real ``mll worker --executor ray
--ray-address`` processes with the cluster's token in their environment.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLASSES = b"sandal\tn04133789\nsneaker\tn04199027\nboot\tn02872752\n"


@pytest.fixture
def cluster():
    if importlib.util.find_spec("ray") is None:
        pytest.skip("the Ray executor needs mll[ray]")
    from mll.labels.localray import LocalRayCluster

    with LocalRayCluster([1, 1]) as c:
        yield c


def _tiny_onnx(path: Path, seed: int) -> bytes:
    import torch

    from mll.hub.archs import build
    from mll.hub.testing import export_onnx

    torch.manual_seed(seed)
    return export_onnx(build("small-cnn", {"n_classes": 3, "width": 4}).eval(), path).read_bytes()


@pytest.mark.slow
@pytest.mark.ray
def test_queued_uploads_are_labelled_by_workers_on_a_two_node_cluster(cluster, hub_view,
                                                                      tmp_path):
    from fastapi.testclient import TestClient

    from mll.hub import Hub
    from mll.labels import LabelStore
    from mll.serve import create_app
    from mll.serve.jobs import JobQueue
    from mll.serve.tokens import TokenStore

    hub = hub_view(tmp_path / "hub", writable=("artifacts", "labels"))
    with Hub.open(hub, create=False) as h:
        token = TokenStore(h.store).create("uploader")[1]
    client = TestClient(create_app(hub))
    jobs = []
    for seed in range(3):
        answer = client.post(
            "/api/models", headers={"Authorization": f"Bearer {token}"},
            files={"weights": ("tiny.onnx", _tiny_onnx(tmp_path / f"{seed}.onnx", seed)),
                   "classes": ("c.txt", CLASSES)},
            data={"name": f"queued-{seed}", "description": "a tiny CNN"})
        assert answer.status_code == 202, answer.text
        jobs.append(answer.json()["id"])
    client.app.state.service.close()

    cmd = [sys.executable, "-m", "mll", "worker", "--hub", str(hub), "--executor", "ray",
           "--ray-address", cluster.address, "--batch", "256", "--poll", "0.2"]
    env = {**os.environ, **cluster.env, "MLL_NO_PROGRESS": "1"}
    workers = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        with Hub.open(hub, create=False) as h:
            queue = JobQueue(h.store)
            deadline = time.monotonic() + 480
            while any(queue.get(j).state in ("queued", "running") for j in jobs):
                assert time.monotonic() < deadline, [queue.get(j).to_dict() for j in jobs]
                assert all(w.poll() is None for w in workers), "a worker exited"
                time.sleep(0.5)
            done = [queue.get(j) for j in jobs]
            assert [j.state for j in done] == ["done"] * 3, [j.message for j in done]
            for job in done:
                info = h.get(job.model_id)
                assert info.labelled and LabelStore(hub).published_dirs(info.content_hash)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)  # each finishes the job in hand, then exits
        errs = [w.communicate(timeout=120)[1] for w in workers]
    for w, err in zip(workers, errs, strict=True):  # SIGTERM: the job in hand, then a clean exit
        assert w.returncode == 0 and "job(s) run" in err, err[-2000:]
