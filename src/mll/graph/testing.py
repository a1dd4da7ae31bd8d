"""A toy WordNet in the real file format, for tests that need a graph in milliseconds.

The files go through the same reader as WordNet 3.0 (``SemanticGraph.from_wordnet``), so the
tests exercise the real parsing, not a shortcut around it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

#: ``(offset, lemmas, parent offsets, gloss)``: one synset of a toy WordNet.
Synset = tuple[int, Sequence[str], Sequence[int], str]


def write_wordnet(directory: Path, synsets: Iterable[Synset], exceptions: str = "",
                  lexfile: int = 5) -> Path:
    """Write ``data.noun``, ``index.noun`` and ``noun.exc`` for ``synsets`` into ``directory``.

    ``exceptions`` is the text of ``noun.exc`` (irregular plurals, e.g. ``"mice mouse\\n"``);
    ``lexfile`` the lexicographer file of every synset (5 is noun.animal, 6 noun.artifact).
    """
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["  1 toy wordnet for tests"]
    senses: dict[str, list[int]] = {}
    for offset, lemmas, parents, gloss in synsets:
        words = " ".join(f"{w} 0" for w in lemmas)
        ptrs = " ".join(f"@ {p:08d} n 0000" for p in parents)
        lines.append(f"{offset:08d} {lexfile:02d} n {len(lemmas):02x} {words} {len(parents):03d} {ptrs} | "
                     f"{gloss}")
        for w in lemmas:
            senses.setdefault(w.lower(), []).append(offset)
    (directory / "data.noun").write_text("\n".join(lines) + "\n")
    index = [f"{w} n {len(o)} 1 @ {len(o)} 0 " + " ".join(f"{x:08d}" for x in o)
             for w, o in sorted(senses.items())]
    (directory / "index.noun").write_text("\n".join(index) + "\n")
    (directory / "noun.exc").write_text(exceptions)
    return directory
