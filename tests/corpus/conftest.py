"""Fixtures for the corpus tests: tiny synthetic sources registered as ``test-*`` and hubs that
borrow the session's real WordNet graph."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from mll.config import HubPaths
from mll.corpus import CorpusConfig
from mll.corpus.sources.base import SOURCES, Item, Source, Unit

DOG, BEAGLE, CAT = "n02084071", "n02088364", "n02121620"


def synthetic_image(seed: int, size: int) -> np.ndarray:
    """A deterministic picture: gray for small sizes (raw storage), RGB for large ones (PNG)."""
    rng = np.random.default_rng(seed)
    shape = (size, size) if size <= 32 else (size, size, 3)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


class SyntheticSource(Source):
    """Images made from seeds, two per unit; ``fail_on`` makes a seed's unit raise (a crash)."""

    install_hint = "part of the test suite"

    def __init__(self, name: str, role: str, seeds: list[int], wnids: list[str],
                 size: int) -> None:
        self.name, self.role, self.seeds, self.wnids, self.size = name, role, seeds, wnids, size
        self.fail_on: set[int] = set()
        self.renders = 0

    def inputs(self) -> list[Path]:
        return []

    def plan(self, cfg: CorpusConfig) -> list[Unit]:
        pairs = [[s, self.wnids[i % len(self.wnids)]] for i, s in enumerate(self.seeds)]
        return [Unit(self.name, f"part{i}", {"role": self.role, "items": pairs[i: i + 2],
                                              "size": self.size})
                for i in range(0, len(pairs), 2)]

    def render(self, params: dict[str, Any]) -> Iterator[Item]:
        self.renders += 1
        for seed, wnid in params["items"]:
            if seed in self.fail_on:
                raise RuntimeError(f"simulated crash on seed {seed}")
            yield Item(synthetic_image(seed, params["size"]), f"img{seed}", wnid, self.role,
                       "none", f"test/{self.name}", "test-license")


# seed 3 is in both sources: the same pixels as train (test-a) and as eval (test-b)
SOURCE_A = SyntheticSource("test-a", "train", [1, 2, 3, 4], [DOG, CAT], size=16)
SOURCE_B = SyntheticSource("test-b", "eval", [3, 5, 6], [DOG, BEAGLE, CAT], size=16)
SOURCE_C = SyntheticSource("test-c", "sample", [7, 8, 9], [DOG, BEAGLE, CAT], size=80)
for _src in (SOURCE_A, SOURCE_B, SOURCE_C):
    SOURCES.register(_src.name)(_src)

TEST_SOURCES = ("test-a", "test-b", "test-c")


@pytest.fixture
def synth() -> SimpleNamespace:
    """The synthetic sources and the image function, for assertions."""
    return SimpleNamespace(a=SOURCE_A, b=SOURCE_B, c=SOURCE_C, image=synthetic_image, dog=DOG,
                           beagle=BEAGLE, cat=CAT)


@pytest.fixture
def test_config() -> CorpusConfig:
    """A build of the synthetic sources only, in this process (the crash test needs that)."""
    for src in (SOURCE_A, SOURCE_B, SOURCE_C):
        src.fail_on.clear()
        src.renders = 0
    return CorpusConfig(sources=TEST_SOURCES, workers=1)


@pytest.fixture
def hub(tmp_path: Path, real_hub: Path, graph) -> Path:
    """An empty hub whose graph is the session's real WordNet graph (linked, not copied)."""
    root = tmp_path / "hub"
    root.mkdir()
    HubPaths(root).graph.symlink_to(HubPaths(real_hub).graph, target_is_directory=True)
    return root
