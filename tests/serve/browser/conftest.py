"""A real server for the browser tests: uvicorn in a thread over a private, writable view of the
quick starter hub, a background worker labelling uploads, and headless Debian chromium driven by
Playwright (its own browser download is never used: ``executable_path`` points at chromium)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

PASSWORD = "correct horse battery"


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the browser tests need playwright (mll[dev])")
    path = chromium_path()
    if path is None:
        pytest.skip("the browser tests need Debian's chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def site(hub_view, tmp_path_factory):
    """A running server (``url``, ``hub``) with a token per role (``tokens``) and a password user
    per role (named as the role, password ``password``), and a worker labelling uploads."""
    import uvicorn

    from mll.hub import Hub
    from mll.serve import create_app
    from mll.serve.accounts import Accounts
    from mll.serve.tokens import TokenStore
    from mll.serve.worker import Worker

    hub_dir = hub_view(tmp_path_factory.mktemp("browser") / "hub",
                       writable=("artifacts", "labels"))
    with Hub.open(hub_dir, create=False) as hub:
        tokens = {r: TokenStore(hub.store).create(r, f"browser {r}")[1]
                  for r in ("reader", "uploader")}
        for role in ("reader", "uploader"):
            Accounts(hub.store).create_user(role, role, PASSWORD)
    app = create_app(hub_dir)
    app.state.service.warm()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    serving = threading.Thread(target=server.run, daemon=True, name="uvicorn")
    serving.start()
    stop = threading.Event()
    worker = Worker(hub_dir, lease=30, poll=0.3)
    working = threading.Thread(target=worker.run, args=(stop,), daemon=True, name="worker")
    working.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and serving.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "hub": Path(hub_dir), "tokens": tokens,
           "password": PASSWORD}
    stop.set()
    server.should_exit = True
    serving.join(30)
    working.join(120)
    worker.close()
    app.state.service.close()


@pytest.fixture
def page(browser, site):
    context = browser.new_context(base_url=site["url"], viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(60_000)
    pg = context.new_page()
    yield pg
    context.close()
