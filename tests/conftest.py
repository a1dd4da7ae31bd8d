"""Shared fixtures: a real hub (WordNet graph, caption embeddings) reused across test runs."""

from __future__ import annotations

import os
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
    path.mkdir(parents=True, exist_ok=True)
    return path


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
def starter_hub(real_hub) -> Path:
    """The quick starter hub, labelled, built in ``real_hub`` (only what is missing is built)."""
    from mll.starter import build_starter

    build_starter(real_hub, quick=True)
    return real_hub
