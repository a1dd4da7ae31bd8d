"""Fixtures of the server tests: an empty hub with one token per role, and a private view of the
quick starter hub.

The starter hub is shared with other checkouts and must stay as it is. Opening its database from
this code would add the serve stage's table (and its Alembic revision) to it, so the read tests run
on a view instead: a temporary directory whose models, labels, corpus, graph and feature cache
are symlinks into the starter hub, with copies of the two files a server writes (the database,
upgraded there, and the text-embedding cache).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest


@pytest.fixture
def empty_hub(tmp_path) -> Path:
    """A hub with a database and no models."""
    from mll.hub import Hub

    root = tmp_path / "hub"
    Hub.open(root, create=True).close()
    return root


@pytest.fixture
def tokens(empty_hub) -> dict[str, str]:
    """One token per role on ``empty_hub``, plus a revoked reader token."""
    from mll.hub import Hub
    from mll.serve.tokens import TokenStore

    with Hub.open(empty_hub, create=False) as hub:
        store = TokenStore(hub.store)
        made = {role: store.create(role, f"test {role}")[1]
                for role in ("reader", "uploader", "admin")}
        info, made["revoked"] = store.create("reader", "gone")
        store.revoke(info.id)
    return made


def _built(hub: Path) -> bool:
    return all((hub / p).exists() for p in ("mll.db", "labels", "graph/current.json",
                                            "corpus/current.json"))


@pytest.fixture(scope="session")
def starter_view(real_hub, tmp_path_factory, request) -> Path:
    """A writable view of the quick starter hub (built first only when missing)."""
    if not _built(real_hub):
        request.getfixturevalue("starter_hub")
    view = tmp_path_factory.mktemp("starter-view")
    for name in ("artifacts", "corpus", "graph", "labels"):
        (view / name).symlink_to(real_hub / name, target_is_directory=True)
    (view / "cache").mkdir()
    (view / "cache" / "features").symlink_to(real_hub / "cache" / "features",
                                             target_is_directory=True)
    if (real_hub / "cache" / "text.sqlite").exists():
        shutil.copyfile(real_hub / "cache" / "text.sqlite", view / "cache" / "text.sqlite")
    source = sqlite3.connect(f"file:{real_hub / 'mll.db'}?mode=ro", uri=True)
    target = sqlite3.connect(view / "mll.db")
    with target:
        source.backup(target)  # a consistent copy, write-ahead log included
    source.close()
    target.close()
    return view
