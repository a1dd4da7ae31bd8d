"""Read WordNet 3.0 nouns straight from the database files (wndb(5WN)), no nltk needed.

Debian's ``wordnet-base`` installs them in ``/usr/share/wordnet``; noun offsets there equal
Princeton's, hence ImageNet's wnids.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MissingDependencyError

DEFAULT_DIRS = ("/usr/share/wordnet", "/usr/local/share/wordnet", "/usr/share/wordnet/dict")
INSTALL_HINT = "install WordNet 3.0 with 'apt-get install wordnet-base' or pass --wordnet DIR"
PARENT_POINTERS = ("@", "@i")  # hypernym, instance hypernym


@dataclass
class Synset:
    offset: int
    lexfile: int
    lemmas: list[str]
    definition: str
    parents: list[int] = field(default_factory=list)


def find_wordnet_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding ``data.noun``: the argument, ``$WNHOME``/``$WNSEARCHDIR`` or Debian's."""
    candidates = [path] if path else [os.environ.get("WNSEARCHDIR"), os.environ.get("WNHOME"),
                                      *DEFAULT_DIRS]
    for cand in candidates:
        if cand and (Path(cand) / "data.noun").is_file():
            return Path(cand)
        if cand and (Path(cand) / "dict" / "data.noun").is_file():
            return Path(cand) / "dict"
    raise MissingDependencyError(f"WordNet 3.0 database not found (data.noun); {INSTALL_HINT}")


def _clean_gloss(gloss: str) -> str:
    """The definition part of a gloss, without the quoted example sentences."""
    parts = [p.strip() for p in gloss.split(";")]
    kept = [p for p in parts if p and not p.startswith('"')]
    return "; ".join(kept) if kept else gloss.strip()


def read_data_noun(path: Path) -> dict[int, Synset]:
    synsets: dict[int, Synset] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("  "):  # license header
                continue
            head, _, gloss = line.partition(" | ")
            tok = head.split()
            offset, w_cnt = int(tok[0]), int(tok[3], 16)
            lemmas = [tok[4 + 2 * i] for i in range(w_cnt)]
            i = 4 + 2 * w_cnt
            p_cnt = int(tok[i])
            parents = []
            for j in range(p_cnt):
                sym, target, pos = tok[i + 1 + 4 * j: i + 4 + 4 * j]
                if sym in PARENT_POINTERS and pos == "n":
                    parents.append(int(target))
            synsets[offset] = Synset(offset, int(tok[1]), lemmas, _clean_gloss(gloss), sorted(set(parents)))
    return synsets


def read_index_noun(path: Path) -> dict[str, list[int]]:
    """Lemma (lower case, underscores) -> synset offsets in WordNet's sense order."""
    index: dict[str, list[int]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            tok = line.split()
            synset_cnt = int(tok[2])
            index[tok[0]] = [int(t) for t in tok[-synset_cnt:]]
    return index


def read_exceptions(path: Path) -> dict[str, list[str]]:
    """Irregular inflections (``mice`` -> ``mouse``) from ``noun.exc``."""
    exc: dict[str, list[str]] = {}
    if path.is_file():
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                tok = line.split()
                if len(tok) >= 2:
                    exc.setdefault(tok[0], []).extend(tok[1:])
    return exc


def read_sense_counts(path: Path) -> dict[tuple[str, int], int]:
    """(lemma, noun offset) -> semantic-concordance tag count, from ``index.sense`` (0 if absent)."""
    counts: dict[tuple[str, int], int] = {}
    if path.is_file():
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                key, offset, _, tag_cnt = line.split()
                lemma, _, rest = key.partition("%")
                if rest.startswith("1:"):
                    counts[(lemma, int(offset))] = int(tag_cnt)
    return counts
