"""The ImageNet-1k label space (wnids, lemmas, definitions), read from files in the timm wheel.

The files come from the timm wheel through :func:`mll._timm_data.timm_info_file`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

from .._timm_data import timm_info_file


@dataclass(frozen=True)
class ImageNetClasses:
    """The 1000 classes in the classifiers' output order."""

    wnids: tuple[str, ...]
    lemmas: tuple[str, ...]  # first lemma of each synset
    definitions: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Unique class names: the first lemma, with the wnid added where two classes share it."""
        counts = Counter(self.lemmas)
        return tuple(f"{lem} ({w})" if counts[lem] > 1 else lem
                     for lem, w in zip(self.lemmas, self.wnids, strict=True))

    def captions(self, template: str = "{lemma} which is {definition}") -> list[str]:
        return [template.format(lemma=lem, definition=d, wnid=w)
                for lem, d, w in zip(self.lemmas, self.definitions, self.wnids, strict=True)]


def _tab_file(name: str) -> dict[str, str]:
    lines = timm_info_file(name).read_text(encoding="utf-8").splitlines()
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


@cache
def imagenet_classes() -> ImageNetClasses:
    wnids = tuple(timm_info_file("imagenet_synsets.txt").read_text().split())
    lemmas, definitions = _tab_file("imagenet_synset_to_lemma.txt"), _tab_file(
        "imagenet_synset_to_definition.txt")
    return ImageNetClasses(wnids, tuple(lemmas[w].split(",")[0].strip() for w in wnids),
                           tuple(definitions[w].strip() for w in wnids))
