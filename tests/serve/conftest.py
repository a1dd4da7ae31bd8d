"""Fixtures of the server tests: an empty hub with one token per role, and a private view of the
quick starter hub.

The starter hub is shared with other checkouts and must stay as it is. Opening its database from
this code would add the serve stage's table (and its Alembic revision) to it, so the read tests run
on a view instead: a temporary directory whose models, labels, corpus, graph and feature cache
are symlinks into the starter hub, with copies of the two files a server writes (the database,
upgraded there, and the text-embedding cache).
"""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def starter_view(hub_view, tmp_path_factory) -> Path:
    """A writable view of the quick starter hub (built first only when missing)."""
    return hub_view(tmp_path_factory.mktemp("starter-view") / "hub")


@pytest.fixture
def upload_hub(hub_view, tmp_path) -> Path:
    """A private copy of the quick starter hub that uploads may write to: the corpus, graph and
    feature cache are symlinks (only read), artifacts and labels hard-linked copies (files there
    are written once, by rename), the databases copied."""
    return hub_view(tmp_path / "hub", writable=("artifacts", "labels"))


@pytest.fixture
def upload_tokens(upload_hub) -> dict[str, str]:
    """One token per role on ``upload_hub``."""
    return _role_tokens(upload_hub)


def _role_tokens(hub: Path) -> dict[str, str]:
    from mll.hub import Hub
    from mll.serve.tokens import TokenStore

    with Hub.open(hub, create=False) as h:
        store = TokenStore(h.store)
        return {role: store.create(role, f"test {role}")[1]
                for role in ("reader", "uploader", "admin")}


@pytest.fixture
def tiny_onnx(tmp_path) -> bytes:
    """A tiny real CNN (28x28 gray in, 3 classes out) exported to ONNX."""
    import torch

    from mll.hub.archs import build
    from mll.hub.testing import export_onnx

    torch.manual_seed(3)
    module = build("small-cnn", {"n_classes": 3, "width": 4}).eval()
    return export_onnx(module, tmp_path / "tiny.onnx").read_bytes()
