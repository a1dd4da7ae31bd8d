"""Reviewed source-label -> node tables shipped in ``mll/corpus/_data``.

Each ``<name>.tsv`` has rows ``label<TAB>wnid<TAB>synset name[<TAB>extra...]``; lines starting
with ``#`` are comments. The tables were proposed by matching labels to the graph within their
category and then checked by hand for the visual sense (``mouse`` the animal, ``bat`` by its
emoji category); tests/corpus/test_mappings.py checks every wnid against the real graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from ..errors import UnknownNameError


@dataclass(frozen=True)
class MappingRow:
    label: str
    wnid: str
    synset: str
    extra: tuple[str, ...] = ()


def mapping_names() -> list[str]:
    files = resources.files("mll.corpus").joinpath("_data").iterdir()
    return sorted(f.name[:-4] for f in files if f.name.endswith(".tsv"))


@cache
def load_mapping(name: str) -> dict[str, MappingRow]:
    """The table ``name`` keyed by source label, in file order."""
    path = resources.files("mll.corpus").joinpath("_data", f"{name}.tsv")
    if not path.is_file():
        raise UnknownNameError("mapping table", name, mapping_names())
    rows: dict[str, MappingRow] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, wnid, synset, *extra = line.split("\t")
        rows[label] = MappingRow(label, wnid, synset, tuple(extra))
    return rows
