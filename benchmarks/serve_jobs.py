"""Upload figures of ``mll serve``: how long an upload takes to answer and to become selectable,
and what the per-request check for new labels costs.

    MLL_TEST_HUB=... .venv/bin/python benchmarks/serve_jobs.py [--hub DIR] [--repeat 200]

Runs on a private copy of a labelled hub (default: the quick starter hub of the tests,
``$MLL_TEST_HUB`` or ``.test-hub``): its corpus and graph are symlinked, its artifacts and labels
hard-linked, its databases copied, so the hub itself is not changed. A tiny real CNN exported to
ONNX (3 footwear classes) is uploaded through the app (FastAPI's TestClient) and run by one worker
in this process on the local executor, with ``torch.set_num_threads(2)``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _hubarg import add_hub_argument, hub_problem


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_hub_argument(parser)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    if problem := hub_problem(args.hub):
        print(problem, file=sys.stderr)
        return 2

    import torch
    from fastapi.testclient import TestClient

    from mll.hub import Hub
    from mll.hub.archs import build
    from mll.hub.testing import export_onnx, hub_view
    from mll.serve import create_app
    from mll.serve.tokens import TokenStore
    from mll.serve.worker import Worker

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="mll-serve-jobs-") as tmp:
        hub = hub_view(args.hub.resolve(), Path(tmp) / "hub", writable=("artifacts", "labels"))
        torch.manual_seed(0)
        onnx = export_onnx(build("small-cnn", {"n_classes": 3, "width": 4}).eval(),
                           Path(tmp) / "tiny.onnx").read_bytes()
        with Hub.open(hub, create=False) as h:
            tokens = TokenStore(h.store)
            reader, uploader = tokens.create("reader")[1], tokens.create("uploader")[1]
        client = TestClient(create_app(hub))
        service = client.app.state.service
        read = {"Authorization": f"Bearer {reader}"}
        t = time.perf_counter()
        service.warm()
        warm = time.perf_counter() - t
        checks = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            service._current_labels()
            checks.append(time.perf_counter() - t)
        concept = []
        for _ in range(20):
            t = time.perf_counter()
            assert client.get("/api/models?concept=sandal", headers=read).status_code == 200
            concept.append(time.perf_counter() - t)
        def timed_upload() -> float:
            t = time.perf_counter()
            answer = client.post(
                "/api/models", headers={"Authorization": f"Bearer {uploader}"},
                files={"weights": ("tiny.onnx", onnx),
                       "classes": ("classes.txt", b"sandal\nsneaker\nankle boot\n")},
                data={"name": "bench-upload"})
            seconds = time.perf_counter() - t
            assert answer.status_code == 202, answer.text
            return seconds

        upload = timed_upload()
        upload2 = timed_upload()  # a second upload: the token is known, the imports are done
        worker = Worker(hub)
        t = time.perf_counter()
        job = worker.run_once()
        live = time.perf_counter() - t
        worker.close()
        assert job.state == "done", job.message
        t = time.perf_counter()
        found = client.get("/api/models?concept=sandal", headers=read).json()
        reload_ = time.perf_counter() - t
        assert "bench-upload" in [m["name"] for m in found["models"]]
        load = os.getloadavg()[0]
    print(f"hub {args.hub} ({job.total} sample images); load average {load:.1f}\n")
    print("| step | ms |\n|---|---:|")
    print(f"| load the labels at start (warm) | {ms(warm)} |")
    print(f"| check for new labels (one query, median of {args.repeat}) | "
          f"{ms(statistics.median(checks))} |")
    print(f"| GET /api/models?concept=sandal (median of 20) | {ms(statistics.median(concept))} |")
    print(f"| POST /api/models (tiny ONNX, {len(onnx)} bytes): answered 202 | {ms(upload)} |")
    print(f"| the same again (token verified, imports done) | {ms(upload2)} |")
    print(f"| job: add (pack, probe run) + label every sample image, until live | {ms(live)} |")
    print(f"| first concept search after it (reloads the labels) | {ms(reload_)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
