"""Web UI and solve figures of ``mll serve``: how long each page takes to render, a password
login, and a task solved over HTTP from real sample images.

    MLL_TEST_HUB=... .venv/bin/python benchmarks/serve_pages.py [--hub DIR] [--repeat 20]

Runs on a private view of a labelled hub (default: the quick starter hub of the tests,
``$MLL_TEST_HUB`` or ``.test-hub``; its databases copied, so the hub itself is not changed),
through the app in this process (FastAPI's TestClient), with ``torch.set_num_threads(2)``.
Pages and solves are timed after one warm-up request each (labels loaded, text encoder ready).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _hubarg import add_hub_argument, hub_problem

PASSWORD = "benchmark password"
CLASSES = "sandal\nsneaker\nankle boot"


def timed(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` calls of ``fn`` (after one untimed call)."""
    fn()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_hub_argument(parser)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    if problem := hub_problem(args.hub):
        print(problem, file=sys.stderr)
        return 2

    import torch
    from fastapi.testclient import TestClient

    from mll.hub import Hub
    from mll.hub.testing import hub_view
    from mll.serve import ServeSettings, create_app
    from mll.serve.accounts import Accounts
    from mll.serve.tokens import TokenStore

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="mll-serve-pages-") as tmp:
        hub = hub_view(args.hub.resolve(), Path(tmp) / "hub")
        with Hub.open(hub, create=False) as h:
            Accounts(h.store).create_user("bench", "reader", PASSWORD)
            bearer = {"Authorization": f"Bearer {TokenStore(h.store).create('reader')[1]}"}
        settings = ServeSettings(solve_per_minute=0)  # time the solves, not the limiter
        client = TestClient(create_app(hub, settings=settings))
        start = time.perf_counter()
        form = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        answer = client.post("/login", data={"csrf": csrf, "name": "bench",
                                             "password": PASSWORD}, follow_redirects=False)
        login = time.perf_counter() - start
        assert answer.status_code == 303, answer.text
        service = client.app.state.service
        service.warm()
        model = service.models(concept="sandal")["models"][0]["id"]
        rows = [("password login (argon2id check, session row)", login)]
        pages = {"home": "/", "search 'sandal'": "/search?q=sandal",
                 "model page (cnn-footwear)": f"/models/{model}", "node page (sandal)":
                 "/nodes/sandal", "task plan (3 classes)":
                 "/task?classes=sandal%0Asneaker%0Aankle+boot"}
        for name, url in pages.items():
            def get(url=url):
                assert client.get(url).status_code == 200
            rows.append((name, timed(get, args.repeat)))
        images = []
        for word in ("sandal", "sneaker", "boot"):
            for sample in service.node(word)["samples"][:2]:
                images.append((f"{word}.png", client.get(sample["url"]).content))

        def solve():
            answer = client.post("/api/solve", data={"classes": CLASSES}, headers=bearer,
                                 files=[("files", f) for f in images])
            assert answer.status_code == 200, answer.text
        rows.append((f"POST /api/solve ({len(images)} images; report and predictor written)",
                     timed(solve, max(3, args.repeat // 4))))
        service.close()
    print(f"| step | ms (median of {args.repeat}; solve of {max(3, args.repeat // 4)}) |")
    print("|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1000:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
