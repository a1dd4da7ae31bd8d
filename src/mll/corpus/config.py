"""How much of each source the corpus takes: one frozen config, stored in the manifest."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameterError


@dataclass(frozen=True)
class CorpusConfig:
    """Build parameters; every one of them changes which images the corpus holds.

    Variants are renderings of one picture (sizes, backgrounds, flips, ...), used in list order,
    so a smaller count is a prefix of a larger one. Caps bound the images one node gets from one
    source when several pictures map to it (12 clock faces are all ``clock``): sample images are
    what labelling runs every model over, so their count is the labelling cost.
    """

    seed: int = 0
    quick: bool = False
    sources: tuple[str, ...] = ()  # empty: every registered source
    train_variants: int = 4
    sample_variants: int = 6
    eval_variants: int = 5
    sample_cap: int = 8  # sample images per node per source (icons and photos)
    gray_sample_per_class: int = 30
    gray_eval_fraction: float = 0.25  # of MNIST and Animal-MNIST, which ship one file
    gray_train_per_class: int | None = None  # None: all that remain
    gray_eval_per_class: int | None = None
    max_concepts: int | None = None  # a seeded subset of the icon/photo nodes (tests)
    # Tux Paint photo concepts whose photos are labelled on (the rest are evaluated on)
    photo_sample_fraction: float = 0.5
    workers: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1, compare=False)

    def __post_init__(self) -> None:
        for name in ("train_variants", "sample_variants", "eval_variants", "sample_cap",
                     "gray_sample_per_class", "workers"):
            if getattr(self, name) < 1:
                raise InvalidParameterError(f"CorpusConfig.{name} must be >= 1, "
                                            f"got {getattr(self, name)}")
        if not 0.0 <= self.photo_sample_fraction < 1.0:
            raise InvalidParameterError("CorpusConfig.photo_sample_fraction must be in [0, 1), "
                                        f"got {self.photo_sample_fraction}")
        if not 0.0 <= self.gray_eval_fraction < 1.0:
            raise InvalidParameterError("CorpusConfig.gray_eval_fraction must be in [0, 1), "
                                        f"got {self.gray_eval_fraction}")

    @classmethod
    def for_quick(cls, **overrides: Any) -> CorpusConfig:
        """Fewer variants and fewer 28x28 images: for tests and the quick starter hub."""
        values: dict[str, Any] = dict(quick=True, train_variants=1, sample_variants=2,
                                      eval_variants=2, sample_cap=3, gray_sample_per_class=10,
                                      gray_train_per_class=300, gray_eval_per_class=100)
        values.update(overrides)
        return cls(**values)

    def variants(self, role: str) -> int:
        return {"train": self.train_variants, "sample": self.sample_variants,
                "eval": self.eval_variants}[role]

    def node_cap(self, role: str) -> int:
        """Images one node may get from one icon/photo source in ``role``."""
        return self.sample_cap if role == "sample" else 2 * self.variants(role)

    def to_json(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc.pop("workers")
        doc["sources"] = list(self.sources)
        return doc
