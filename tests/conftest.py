"""Shared fixtures: a real hub (WordNet graph, caption embeddings) reused across test runs, and a
PostgreSQL server for the tests of the hub database (``pg_url``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def real_hub() -> Path:
    """A hub directory for integration tests on real data.

    Everything in it is content-addressed and deterministic, so it is kept between runs (under
    ``.test-hub`` or ``$MLL_TEST_HUB``) and only what is missing gets built.
    """
    path = Path(os.environ.get("MLL_TEST_HUB", REPO / ".test-hub"))
    if not path.exists():
        _seed_from_demo_hub(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _seed_from_demo_hub(path: Path) -> None:
    """Start a new test hub from the quick hub ``make demo`` built, if there is one.

    Both come from the same content-addressed plan, so the starter build then finds everything in
    place instead of spending minutes rebuilding it. Immutable files (written once, by rename) are
    hard-linked; the SQLite databases are copied through SQLite's backup API; locks are left out.
    """
    from mll.config import resolve_hub
    from mll.hub.testing import backup_sqlite, link_or_copy

    demo = resolve_hub(None)
    try:
        quick = json.loads((demo / "corpus" / "current.json").read_text())["config"]["quick"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if quick is not True or not (demo / "mll.db").is_file() or demo == path.resolve():
        return
    staging = path.with_name(path.name + ".seeding")
    shutil.rmtree(staging, ignore_errors=True)
    databases = ("mll.db", "text.sqlite")
    shutil.copytree(demo, staging, copy_function=link_or_copy, ignore=shutil.ignore_patterns(
        "tmp", "*.lock", "*-wal", "*-shm", "*.tmp", *databases))
    for db in [p for p in demo.rglob("*") if p.name in databases]:
        backup_sqlite(db, staging / db.relative_to(demo))
    os.replace(staging, path)


@pytest.fixture(scope="session")
def graph(real_hub):
    from mll.graph import open_graph

    return open_graph(real_hub, build=True)


@pytest.fixture(scope="session")
def matcher(real_hub):
    from mll.graph import Matcher

    return Matcher.for_hub(real_hub, build=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def hub_view(starter_hub):
    """``hub_view(dest, writable=())``: a private hub at ``dest`` over the quick starter hub.

    Directories named in ``writable`` (e.g. artifacts, labels) are hard-linked copies the view may
    add to (files there are written once, by rename); the rest are symlinks, only read. The
    databases are copied, so migrations and writes in the view never touch the shared hub.
    """
    from mll.hub.testing import hub_view as view

    return lambda dest, writable=(): view(starter_hub, dest, writable)


@pytest.fixture(scope="session")
def starter_hub(real_hub) -> Path:
    """The quick starter hub, labelled, built in ``real_hub`` (only what is missing is built)."""
    from mll.starter import build_starter

    build_starter(real_hub, quick=True)
    return real_hub


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_url():
    """A PostgreSQL URL: ``MLL_TEST_PG_URL``, or a throwaway local server when PostgreSQL's
    binaries and the psycopg driver are installed; otherwise the test is skipped."""
    import glob
    import os
    import shutil
    import subprocess

    if os.environ.get("MLL_TEST_PG_URL"):
        yield os.environ["MLL_TEST_PG_URL"]
        return
    pytest.importorskip("psycopg", reason="PostgreSQL driver not installed (mll[postgres])")
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("no PostgreSQL server binaries; set MLL_TEST_PG_URL")
    bindir = Path(bins[-1]).parent
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="mll-test-pg-"))  # pytest's tmp is private to root
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data = root / "data"
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True)  # noqa: E731
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "mll")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a local PostgreSQL server: {exc}")
    try:
        yield f"postgresql+psycopg://mll@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=[
    pytest.param("sqlite:///:memory:", id="sqlite-memory"),
    pytest.param("file", id="sqlite-file"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """An empty hub store on in-memory SQLite, file SQLite and (when reachable) PostgreSQL."""
    from mll.hub.store import Store

    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    elif request.param == "file":
        url = f"sqlite:///{tmp_path / 'mll.db'}"
    else:
        url = request.param
    s = Store(url)
    yield s
    if s.engine.dialect.name == "postgresql":
        _empty(s.engine)
    s.engine.dispose()


@pytest.fixture
def pg_hub(tmp_path, pg_url):
    """A new hub in ``tmp_path / "hub"`` whose database is on the test PostgreSQL server."""
    from mll.hub import Hub

    (tmp_path / "hub").mkdir()
    hub = Hub.open(tmp_path / "hub", db=pg_url, create=True)
    try:
        yield hub
    finally:
        _empty(hub.store.engine)
        hub.close()


def _empty(engine) -> None:
    """Drop every table: the PostgreSQL server is shared by the whole test session."""
    from sqlalchemy import MetaData

    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
