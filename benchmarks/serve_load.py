"""Load on ``mll serve``: concurrent 10-class selections while uploads are being labelled.

    MLL_TEST_HUB=... .venv/bin/python benchmarks/serve_load.py [--clients 32] [--duration 60]
        [--uploads 3] [--think 0] [--hub DIR] [--json]

Starts a real ``mll serve --workers 1`` process on a private copy of a labelled hub (default:
the quick starter hub of the tests; its corpus and graph are symlinked, its artifacts and labels
hard-linked, its databases copied, so the hub itself is not changed). Then, for ``--duration``
seconds, ``--clients`` concurrent clients (one asyncio loop, httpx) each send 10-class
``POST /api/select`` requests (each a random 10 of the 30 classes of three tasks, so answers
cannot come from a cache), back to back by default, or, with ``--think S``, each client pausing a
random time (exponential, mean S seconds, seeded) after each answer as a person reading the plan
would; while ``--uploads`` tiny real CNNs (ONNX, 3 footwear
classes, different weights) are uploaded in the first seconds and labelled by the server's worker
on every sample image. A separate read probe asks ``GET /api/models``, ``GET /api/models?concept=``
and ``GET /api/nodes/{ref}`` in turn, one at a time, and its latencies are reported apart, split
into while an upload's job was running (from its 202 to its end) and not. Prints throughput, p50/p95/p99 latency, failed requests
(anything but 200, or no answer), the uploads' labelling times and the 1-minute load average at
the start and end of the run (the machine is shared: the figures are only as good as it is idle).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _hubarg import REPO, add_hub_argument, hub_problem

#: Ten classes each, named as a user would; all are in the quick starter hub's graph.
TASKS = [
    {"classes": ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                 "bag", "ankle boot"], "domain": "small 28x28 grayscale photo"},
    {"classes": ["cat", "dog", "horse", "cow", "sheep", "elephant", "zebra", "giraffe", "lion",
                 "bear"], "domain": "emoji"},
    {"classes": ["apple", "banana", "car", "bicycle", "airplane", "house", "tree", "flower",
                 "guitar", "umbrella"], "domain": "drawing"},
]
READS = ["/api/models", "/api/models?concept=sandal", "/api/nodes/footwear.n.01",
         "/api/models?concept=dog"]


def _task(rng: random.Random) -> dict:
    """A 10-class task drawn from the classes of ``TASKS``: nearly every request is a new task
    (their words are known, so no text encoder runs in the timed part)."""
    pool = sorted({c for t in TASKS for c in t["classes"]})
    return {"classes": rng.sample(pool, 10), "domain": rng.choice(TASKS)["domain"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _summary(latencies: list[float]) -> dict:
    ms = [v * 1000 for v in latencies]
    return {"requests": len(ms), "p50_ms": _round(_pct(ms, 50)), "p95_ms": _round(_pct(ms, 95)),
            "p99_ms": _round(_pct(ms, 99)), "max_ms": _round(max(ms) if ms else None),
            "mean_ms": _round(statistics.fmean(ms) if ms else None)}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _tiny_onnx(seed: int, dest: Path) -> bytes:
    import torch

    from mll.hub.archs import build
    from mll.hub.testing import export_onnx

    torch.manual_seed(seed)
    return export_onnx(build("small-cnn", {"n_classes": 3, "width": 4}).eval(), dest).read_bytes()


async def _run(base: str, reader: str, uploader: str, onnx: list[bytes], clients: int,
               duration: float, think: float) -> dict:
    import httpx

    from mll._io import progress

    read_h = {"Authorization": f"Bearer {reader}"}
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    selects: list[tuple[float, float]] = []  # (start, seconds)
    reads: list[tuple[float, float]] = []
    errors: list[str] = []
    labelling: list[tuple[float, float]] = []  # from each upload's 202 to its job's end
    jobs: dict[str, dict] = {}
    start = time.monotonic()
    end = start + duration

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        async def selector(i: int) -> None:
            rng = random.Random(i)
            while time.monotonic() < end:
                t = time.monotonic()
                try:
                    answer = await http.post("/api/select", json=_task(rng), headers=read_h)
                    if answer.status_code != 200:
                        errors.append(f"select {answer.status_code}: {answer.text[:200]}")
                except httpx.HTTPError as exc:
                    errors.append(f"select: {type(exc).__name__}: {exc}")
                selects.append((t - start, time.monotonic() - t))
                if think > 0:
                    await asyncio.sleep(rng.expovariate(1.0 / think))

        async def prober() -> None:
            k = 0
            while time.monotonic() < end:
                t = time.monotonic()
                try:
                    answer = await http.get(READS[k % len(READS)], headers=read_h)
                    if answer.status_code != 200:
                        errors.append(f"read {answer.status_code}: {answer.text[:200]}")
                except httpx.HTTPError as exc:
                    errors.append(f"read: {type(exc).__name__}: {exc}")
                reads.append((t - start, time.monotonic() - t))
                k += 1
                await asyncio.sleep(0.1)

        async def uploads() -> None:
            up_h = {"Authorization": f"Bearer {uploader}"}
            await asyncio.sleep(1.0)
            for n, data in enumerate(onnx):
                answer = await http.post(
                    "/api/models", headers=up_h,
                    files={"weights": (f"load-{n}.onnx", data),
                           "classes": ("classes.txt", b"sandal\nsneaker\nankle boot\n")},
                    data={"name": f"load-upload-{n}"})
                if answer.status_code != 202:
                    errors.append(f"upload {answer.status_code}: {answer.text[:200]}")
                    continue
                jobs[answer.json()["id"]] = {"submitted": time.monotonic() - start}
            while True:  # follow the jobs: when each is labelling, when it is live
                now = time.monotonic() - start
                states = []
                for job_id, seen in jobs.items():
                    doc = (await http.get(f"/api/jobs/{job_id}", headers=read_h)).json()
                    states.append(doc["state"])
                    if doc["state"] in ("done", "failed") and "ended" not in seen:
                        seen |= {"ended": now, "state": doc["state"], "message": doc["message"]}
                        labelling.append((seen["submitted"], now))
                if all(s in ("done", "failed", "cancelled") for s in states) \
                        or time.monotonic() > end + 300:
                    labelling.extend((j["submitted"], time.monotonic() - start)
                                     for j in jobs.values() if "ended" not in j)
                    return
                await asyncio.sleep(0.25)

        async def ticker() -> None:
            for _ in progress(range(int(duration)), f"{clients} clients selecting",
                              total=int(duration)):
                await asyncio.sleep(1.0)

        await asyncio.gather(*(selector(i) for i in range(clients)), prober(), uploads(),
                             ticker())

    def during(t: float) -> bool:
        return any(a <= t <= b for a, b in labelling)

    in_window = [s for t, s in selects if t <= duration]
    return {
        "select": _summary(in_window) | {
            "per_second": round(len(in_window) / duration, 1),
            "while_jobs_run": _summary([s for t, s in selects if during(t)])},
        "read": _summary([s for _, s in reads]) | {
            "while_jobs_run": _summary([s for t, s in reads if during(t)]),
            "otherwise": _summary([s for t, s in reads if not during(t)])},
        "errors": len(errors), "error_samples": errors[:5],
        "jobs": [{"live_after_s": round(j["ended"] - j["submitted"], 1)
                     if "ended" in j else None, "state": j.get("state"),
                     "message": j.get("message")} for j in jobs.values()],
        "job_windows_s": [[round(a, 1), round(b, 1)] for a, b in labelling],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_hub_argument(parser)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--uploads", type=int, default=3)
    parser.add_argument("--think", type=float, default=0.0,
                        help="Mean seconds a client pauses after each answer (0: back to back).")
    parser.add_argument("--concurrent-selects", type=int, default=0,
                        help="Passed to 'mll serve' (0: its default, three per core).")
    parser.add_argument("--json", action="store_true", help="Print one JSON document.")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration < 5 or args.uploads < 0 or not args.think >= 0:
        print("Error: --clients must be >= 1, --duration >= 5 s, --uploads >= 0, --think >= 0",
              file=sys.stderr)
        return 2
    if problem := hub_problem(args.hub):
        print(problem, file=sys.stderr)
        return 2
    import httpx

    from mll.hub import Hub
    from mll.hub.testing import hub_view
    from mll.serve.tokens import TokenStore

    with tempfile.TemporaryDirectory(prefix="mll-serve-load-") as tmp:
        hub = hub_view(args.hub.resolve(), Path(tmp) / "hub", writable=("artifacts", "labels"))
        with Hub.open(hub, create=False) as h:
            tokens = TokenStore(h.store)
            reader, uploader = tokens.create("reader")[1], tokens.create("uploader")[1]
        onnx = [_tiny_onnx(100 + i, Path(tmp) / f"tiny-{i}.onnx") for i in range(args.uploads)]
        port = _free_port()
        env = os.environ | {"MLL_NO_PROGRESS": "1",
                            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
        log = open(Path(tmp) / "serve.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [sys.executable, "-m", "mll", "serve", "--hub", str(hub), "--port", str(port),
             "--workers", "1", "--uploads-per-minute", "0",
             "--concurrent-selects", str(args.concurrent_selects)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"mll serve exited ({server.returncode}): "
                                     f"{(Path(tmp) / 'serve.log').read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("mll serve did not answer within 180 s")
                time.sleep(0.2)
            for task in TASKS:  # every task is answerable before the clock starts
                answer = httpx.post(f"{base}/api/select", json=task, timeout=60,
                                    headers={"Authorization": f"Bearer {reader}"})
                if answer.status_code != 200:
                    raise SystemExit(f"select {task['classes'][:2]}...: {answer.text[:300]}")
            load_before = os.getloadavg()[0]
            result = asyncio.run(_run(base, reader, uploader, onnx, args.clients, args.duration,
                                     args.think))
            load_after = os.getloadavg()[0]
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
    result = {"hub": str(args.hub), "clients": args.clients, "think_s": args.think,
              "duration_s": args.duration,
              "uploads": args.uploads, "concurrent_selects": args.concurrent_selects,
              "cores": os.cpu_count(),
              "load_average_before": round(load_before, 2),
              "load_average_after": round(load_after, 2)} | result
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    s, r = result["select"], result["read"]
    pace = f"pausing {args.think:g} s on average" if args.think else "back to back"
    print(f"{args.clients} clients ({pace}), {args.duration:g} s, {args.uploads} uploads labelled in the "
          f"background; {os.cpu_count()} cores; load average {load_before:.1f} before, "
          f"{load_after:.1f} after\n")
    print("| requests | n | per s | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|"
          "---:|---:|")
    rows = [("10-class select", s), ("select while a job runs", s["while_jobs_run"]),
            ("reads (probe)", r), ("reads while a job runs", r["while_jobs_run"]),
            ("reads otherwise", r["otherwise"])]
    for name, row in rows:
        per_s = f"{row['per_second']}" if "per_second" in row else ""
        print(f"| {name} | {row['requests']} | {per_s} | {row['p50_ms']} | {row['p95_ms']} | "
              f"{row['p99_ms']} | {row['max_ms']} |")
    print(f"\nfailed requests: {result['errors']}")
    for sample in result["error_samples"]:
        print(f"  {sample}")
    for n, up in enumerate(result["jobs"]):
        print(f"upload {n}: {up['state']}, live {up['live_after_s']} s after it was sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
