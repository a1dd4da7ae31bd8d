"""The semantic graph: WordNet noun synsets as nodes, hypernym -> hyponym edges.

Stored as a handful of compact numpy arrays (CSR adjacency, UTF-8 text blobs) in one ``.npz`` whose
content hash is the graph's version; loading takes a few tens of milliseconds.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .._io import atomic_path, atomic_write_json
from .._packed import pack_texts
from .._types import is_wnid
from ..errors import (
    InvalidParameterError,
    MissingDependencyError,
    NotBuiltError,
    UnknownNameError,
)
from . import wordnet

logger = logging.getLogger(__name__)

LEXNAMES = {3: "noun.Tops", 4: "noun.act", 5: "noun.animal", 6: "noun.artifact",
            7: "noun.attribute", 8: "noun.body", 9: "noun.cognition", 10: "noun.communication",
            11: "noun.event", 12: "noun.feeling", 13: "noun.food", 14: "noun.group",
            15: "noun.location", 16: "noun.motive", 17: "noun.object", 18: "noun.person",
            19: "noun.phenomenon", 20: "noun.plant", 21: "noun.possession", 22: "noun.process",
            23: "noun.quantity", 24: "noun.relation", 25: "noun.shape", 26: "noun.state",
            27: "noun.substance", 28: "noun.time"}
# Above this many common ancestors, the lowest ones are taken to be the deepest instead of being
# checked exactly (each check walks an ancestor's descendants). WordNet 3.0 nouns have at most 35
# ancestors counting themselves (n10815648, measured over every node), so on the graph mll builds
# the exact rule always applies; the cut-off only bounds the cost on a deeper hierarchy.
EXACT_LCA_LIMIT = 64
_SUFFIXES = (("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
             ("men", "man"), ("ies", "y"), ("s", ""))


@dataclass(frozen=True)
class Node:
    """One concept: a WordNet noun synset."""

    wnid: str
    name: str
    synset: str
    lexname: str
    lemmas: tuple[str, ...]
    definition: str
    depth: int
    parents: tuple[str, ...]

    @property
    def caption(self) -> str:
        return f"{self.name} which is {self.definition}"


@dataclass(frozen=True)
class Subgraph:
    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]  # (hypernym, hyponym)


def _csr(lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum([len(x) for x in lists], out=ptr[1:])
    idx = np.fromiter((j for x in lists for j in x), dtype=np.int32, count=int(ptr[-1]))
    return ptr, idx


class _Texts:
    """Lazy view of a packed UTF-8 blob: decode one string at a time."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self._blob, self._off = blob, offsets

    def __getitem__(self, i: int) -> str:
        return bytes(self._blob[self._off[i]: self._off[i + 1]]).decode("utf-8")

    def __len__(self) -> int:
        return len(self._off) - 1


class SemanticGraph:
    """Query API over the WordNet noun DAG; node arguments are wnids (``n02084071``)."""

    def __init__(self, arrays: dict[str, np.ndarray], version: str) -> None:
        self._a = arrays
        self.version = version
        self.offsets = arrays["offsets"]
        self._names = _Texts(arrays["name_blob"], arrays["name_off"])
        self._defs = _Texts(arrays["def_blob"], arrays["def_off"])
        self._lemmas = _Texts(arrays["lemma_blob"], arrays["lemma_off"])
        self._senses = arrays["sense"]
        self.depth = arrays["depth"]
        self.lexfile = arrays["lexfile"]
        self._pptr, self._pidx = arrays["parent_ptr"], arrays["parent_idx"]
        self._cptr, self._cidx = arrays["child_ptr"], arrays["child_idx"]
        self.root = self.wnid(int(arrays["root"]))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_wordnet(cls, wordnet_dir: str | Path | None = None) -> SemanticGraph:
        """Build from the WordNet database files; verifies a single root and no cycles."""
        wn_dir = wordnet.find_wordnet_dir(wordnet_dir)
        synsets = wordnet.read_data_noun(wn_dir / "data.noun")
        index = wordnet.read_index_noun(wn_dir / "index.noun")
        exceptions = wordnet.read_exceptions(wn_dir / "noun.exc")
        tag_counts = wordnet.read_sense_counts(wn_dir / "index.sense")
        offsets = np.array(sorted(synsets), dtype=np.int64)
        pos = {int(o): i for i, o in enumerate(offsets)}
        n = len(offsets)
        parents = [[pos[p] for p in synsets[int(o)].parents if p in pos] for o in offsets]
        children: list[list[int]] = [[] for _ in range(n)]
        for i, ps in enumerate(parents):
            for p in ps:
                children[p].append(i)
        for ch in children:
            ch.sort()
        roots = [i for i in range(n) if not parents[i]]
        if len(roots) != 1:
            raise MissingDependencyError(f"WordNet noun graph has {len(roots)} roots, expected 1; "
                                         f"{wordnet.INSTALL_HINT}")
        depth = _min_depth(children, roots[0], n)
        if (depth < 0).any():
            raise MissingDependencyError("WordNet noun graph has nodes unreachable from the root; "
                                         f"{wordnet.INSTALL_HINT}")
        _check_acyclic(children, n)
        # sense number of a synset = its rank in index.noun for its first lemma
        sense = np.ones(n, dtype=np.int16)
        for i, o in enumerate(offsets):
            first = synsets[int(o)].lemmas[0].lower()
            senses = index.get(first, [])
            sense[i] = senses.index(int(o)) + 1 if int(o) in senses else 1
        names = [synsets[int(o)].lemmas[0].replace("_", " ") for o in offsets]
        defs = [synsets[int(o)].definition for o in offsets]
        lemmas = ["|".join(synsets[int(o)].lemmas) for o in offsets]
        lemma_keys = sorted(index)
        lemma_targets = [[pos[o] for o in index[k] if o in pos] for k in lemma_keys]
        exc_keys = sorted(exceptions)
        lexfile = np.array([synsets[int(o)].lexfile for o in offsets], dtype=np.int8)
        arrays: dict[str, np.ndarray] = {"offsets": offsets, "depth": depth.astype(np.int16),
                                         "lexfile": lexfile,
                                         "sense": sense, "root": np.array(roots[0])}
        arrays["name_blob"], arrays["name_off"] = pack_texts(names)
        arrays["def_blob"], arrays["def_off"] = pack_texts(defs)
        arrays["lemma_blob"], arrays["lemma_off"] = pack_texts(lemmas)
        arrays["parent_ptr"], arrays["parent_idx"] = _csr(parents)
        arrays["child_ptr"], arrays["child_idx"] = _csr(children)
        arrays["lkey_blob"], arrays["lkey_off"] = pack_texts(lemma_keys)
        arrays["ltgt_ptr"], arrays["ltgt_idx"] = _csr(lemma_targets)
        arrays["ltgt_cnt"] = np.array([tag_counts.get((k, o), 0) for k in lemma_keys
                                       for o in index[k] if o in pos], dtype=np.int32)
        arrays["exc_blob"], arrays["exc_off"] = pack_texts(
            [k + "\t" + "|".join(exceptions[k]) for k in exc_keys])
        return cls(arrays, _content_hash(arrays))

    def save(self, directory: Path) -> Path:
        """Write ``graph-<version>.npz`` and point ``current.json`` at it (both atomically)."""
        directory.mkdir(parents=True, exist_ok=True)
        dest = directory / f"graph-{self.version[:16]}.npz"
        if not dest.exists():
            with atomic_path(dest) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **self._a)
        atomic_write_json(directory / "current.json",
                          {"version": self.version, "file": dest.name, "nodes": len(self),
                           "edges": self.num_edges, "root": self.root})
        return dest

    @classmethod
    def load(cls, directory: Path) -> SemanticGraph:
        import json

        meta_file = directory / "current.json"
        if not meta_file.is_file():
            raise NotBuiltError(f"no graph in {directory.parent}; build it with 'mll graph build'")
        meta = json.loads(meta_file.read_text())
        with np.load(directory / meta["file"]) as data:
            arrays = {k: data[k] for k in data.files}
        return cls(arrays, meta["version"])

    # -- nodes --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def num_edges(self) -> int:
        return int(self._pptr[-1])

    @cached_property
    def _wnids(self) -> list[str]:
        """Every node's wnid, by index: graph walks convert often enough to keep them (6 MB)."""
        return [f"n{o:08d}" for o in self.offsets.tolist()]

    @cached_property
    def _indices(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self._wnids)}

    def wnid(self, i: int) -> str:
        return self._wnids[i]

    def index(self, wnid: str) -> int:
        i = self._indices.get(wnid) if isinstance(wnid, str) else None
        if i is not None:
            return i
        if not is_wnid(wnid):
            raise InvalidParameterError(f"expected a wnid like 'n02084071', got {wnid!r}")
        i = int(np.searchsorted(self.offsets, int(wnid[1:])))
        if i >= len(self.offsets) or self.offsets[i] != int(wnid[1:]):
            raise UnknownNameError("wnid", wnid, hint="not a WordNet 3.0 noun synset")
        return i

    def __contains__(self, wnid: object) -> bool:
        try:
            self.index(wnid)  # type: ignore[arg-type]
        except (InvalidParameterError, UnknownNameError):
            return False
        return True

    def name(self, wnid: str) -> str:
        return self._names[self.index(wnid)]

    def definition(self, wnid: str) -> str:
        return self._defs[self.index(wnid)]

    def lemmas(self, wnid: str) -> tuple[str, ...]:
        return tuple(self._lemmas[self.index(wnid)].split("|"))

    def caption(self, wnid: str) -> str:
        i = self.index(wnid)
        return f"{self._names[i]} which is {self._defs[i]}"

    def captions(self, indices: Iterable[int] | None = None) -> list[str]:
        """Captions of the nodes at ``indices`` (default: every node, in index order)."""
        which = range(len(self)) if indices is None else indices
        return [f"{self._names[i]} which is {self._defs[i]}" for i in which]

    def synset_name(self, wnid: str) -> str:
        i = self.index(wnid)
        return f"{self._lemmas[i].split('|')[0].lower()}.n.{int(self._senses[i]):02d}"

    def node(self, wnid: str) -> Node:
        i = self.index(wnid)
        return Node(wnid=wnid, name=self._names[i], synset=self.synset_name(wnid),
                    lexname=LEXNAMES.get(int(self.lexfile[i]), "noun.unknown"),
                    lemmas=tuple(self._lemmas[i].split("|")), definition=self._defs[i],
                    depth=int(self.depth[i]), parents=self.parents(wnid))

    # -- structure ------------------------------------------------------------------------------
    def _parents_i(self, i: int) -> np.ndarray:
        return self._pidx[self._pptr[i]: self._pptr[i + 1]]

    def _children_i(self, i: int) -> np.ndarray:
        return self._cidx[self._cptr[i]: self._cptr[i + 1]]

    def parents(self, wnid: str) -> tuple[str, ...]:
        return tuple(self.wnid(j) for j in self._parents_i(self.index(wnid)))

    def children(self, wnid: str) -> tuple[str, ...]:
        return tuple(self.wnid(j) for j in self._children_i(self.index(wnid)))

    def _closure(self, start: int, step) -> dict[int, int]:
        """Breadth-first distances from ``start`` following ``step`` (parents or children)."""
        dist = {start: 0}
        queue = deque([start])
        while queue:
            i = queue.popleft()
            for j in step(i):
                j = int(j)
                if j not in dist:
                    dist[j] = dist[i] + 1
                    queue.append(j)
        return dist

    def ancestors(self, wnid: str, include_self: bool = False) -> set[str]:
        dist = self._closure(self.index(wnid), self._parents_i)
        return {self.wnid(j) for j, d in dist.items() if include_self or d > 0}

    def descendants(self, wnid: str, include_self: bool = False) -> set[str]:
        dist = self._closure(self.index(wnid), self._children_i)
        return {self.wnid(j) for j, d in dist.items() if include_self or d > 0}

    def up_distances(self, wnid: str) -> dict[str, int]:
        """Hops from ``wnid`` to each of its ancestors (and 0 to itself)."""
        return {self.wnid(j): d for j, d in self._closure(self.index(wnid), self._parents_i).items()}

    def lowest_common_ancestors(self, a: str, b: str) -> list[str]:
        """Common ancestors (or selves) of which no other common ancestor is a descendant."""
        common = set(self.up_distances(a)) & set(self.up_distances(b))
        lowest = [c for c in common if not (self.descendants(c) & common)] \
            if len(common) < EXACT_LCA_LIMIT else self._deepest(common)
        return sorted(lowest)

    def _deepest(self, nodes: Iterable[str]) -> list[str]:
        nodes = list(nodes)
        best = max(int(self.depth[self.index(c)]) for c in nodes)
        return [c for c in nodes if int(self.depth[self.index(c)]) == best]

    def distance(self, a: str, b: str) -> int:
        """Shortest number of edges between two nodes through a common ancestor."""
        da, db = self.up_distances(a), self.up_distances(b)
        return min(da[c] + db[c] for c in set(da) & set(db))

    def similarity(self, a: str, b: str) -> float:
        """Wu-Palmer similarity in (0, 1]: ``2 (d + 1) / (2 (d + 1) + hops_a + hops_b)``.

        ``d`` is the depth of the common ancestor and the hops are counted up to it; the best
        common ancestor wins. The matcher scores task coherence with the same function.
        """
        return wu_palmer(self.up_distances(a), self.up_distances(b), self.wu_palmer_scale)

    def wu_palmer_scale(self, wnid: str) -> float:
        """``2 (d + 1)`` for a node at depth ``d``: the common ancestor's term in :func:`wu_palmer`."""
        return 2.0 * (float(self.depth[self.index(wnid)]) + 1.0)

    def path_to_root(self, wnid: str) -> list[str]:
        """The shortest hypernym path from ``wnid`` up to the root (both included)."""
        i = self.index(wnid)
        path = [i]
        while self._parents_i(path[-1]).size:
            ps = self._parents_i(path[-1])
            path.append(int(min(ps, key=lambda j: (self.depth[j], j))))
        return [self.wnid(j) for j in path]

    def subgraph(self, wnids: Iterable[str]) -> Subgraph:
        """The nodes given and the hypernym edges among them."""
        nodes = sorted(set(wnids))
        idx = {self.index(w) for w in nodes}
        edges = sorted((self.wnid(int(p)), self.wnid(i)) for i in idx for p in self._parents_i(i)
                       if int(p) in idx)
        return Subgraph(tuple(nodes), tuple(edges))

    # -- lemma look-up ------------------------------------------------------------------------
    @cached_property
    def _lemma_index(self) -> dict[str, int]:
        keys = _Texts(self._a["lkey_blob"], self._a["lkey_off"])
        return {keys[i]: i for i in range(len(keys))}

    @cached_property
    def _exceptions(self) -> dict[str, list[str]]:
        rows = _Texts(self._a["exc_blob"], self._a["exc_off"])
        out = {}
        for i in range(len(rows)):
            k, _, v = rows[i].partition("\t")
            out[k] = v.split("|")
        return out

    def lemma_keys(self) -> list[str]:
        return list(self._lemma_index)

    def base_forms(self, word: str) -> list[str]:
        """Noun base forms of ``word`` (WordNet's morphy): itself, irregular forms, suffix rules."""
        word = word.strip().lower().replace(" ", "_")
        forms = [word] + self._exceptions.get(word, [])
        if not word.endswith("ss"):
            forms += [word[: -len(s)] + r for s, r in _SUFFIXES if word.endswith(s)]
        out = []
        for f in forms:
            if f and f in self._lemma_index and f not in out:
                out.append(f)
        return out

    def resolve(self, term: str) -> str:
        """A wnid from a wnid, a synset name (``dog.n.01``) or a word (its first noun sense)."""
        term = term.strip()
        if not term:
            raise InvalidParameterError("empty term; give a word, a synset name or a wnid")
        if is_wnid(term):
            self.index(term)
            return term
        synset = re.match(r"^(.+)\.n\.(\d+)$", term)
        if synset:
            senses = self.lookup(synset.group(1))
            rank = int(synset.group(2)) - 1
            matches = [w for w in senses if self.synset_name(w) == term.lower()]
            if matches:
                return matches[0]
            if 0 <= rank < len(senses):
                return senses[rank]
        senses = self.lookup(term)
        if senses:
            return senses[0]
        raise UnknownNameError("word", term, self._close_keys(term),
                               hint="try 'mll graph match' for free text")

    def _close_keys(self, term: str) -> list[str]:
        key = term.lower().replace(" ", "_")
        return [k for k in self._lemma_index if k[:1] == key[:1] and abs(len(k) - len(key)) < 4]

    def lookup(self, word: str) -> list[str]:
        """Synsets whose lemma is ``word`` (any inflection), in WordNet's sense order."""
        return [w for w, _ in self.lookup_counts(word)]

    def lookup_counts(self, word: str) -> list[tuple[str, int]]:
        """Like :meth:`lookup`, with each sense's tag count in the semantic concordance."""
        ptr, idx, cnt = self._a["ltgt_ptr"], self._a["ltgt_idx"], self._a["ltgt_cnt"]
        out: dict[str, int] = {}
        for form in self.base_forms(word):
            k = self._lemma_index[form]
            for j in range(ptr[k], ptr[k + 1]):
                out.setdefault(self.wnid(int(idx[j])), int(cnt[j]))
        return list(out.items())


def _min_depth(children: list[list[int]], root: int, n: int) -> np.ndarray:
    depth = np.full(n, -1, dtype=np.int32)
    depth[root] = 0
    queue = deque([root])
    while queue:
        i = queue.popleft()
        for j in children[i]:
            if depth[j] < 0:
                depth[j] = depth[i] + 1
                queue.append(j)
    return depth


def _check_acyclic(children: list[list[int]], n: int) -> None:
    """Kahn's algorithm: every node must be removable in topological order."""
    indeg = np.zeros(n, dtype=np.int64)
    for ch in children:
        for j in ch:
            indeg[j] += 1
    queue = deque(int(i) for i in np.flatnonzero(indeg == 0))
    seen = 0
    while queue:
        i = queue.popleft()
        seen += 1
        for j in children[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                queue.append(j)
    if seen != n:
        raise MissingDependencyError(f"WordNet noun graph has a cycle through {n - seen} nodes; "
                                     f"{wordnet.INSTALL_HINT}")


def wu_palmer(up_a: Mapping[str, int], up_b: Mapping[str, int],
              scale: Callable[[str], float]) -> float:
    """Wu-Palmer similarity of two nodes from their hops up to each ancestor (``up_distances``).

    ``s / (s + hops_a + hops_b)`` through the best common ancestor, with ``s = scale(ancestor)``
    (``SemanticGraph.wu_palmer_scale``: ``2 (depth + 1)``); 0 when they share none.
    """
    if len(up_b) < len(up_a):
        up_a, up_b = up_b, up_a
    return max((scale(c) / (scale(c) + h + up_b[c]) for c, h in up_a.items() if c in up_b),
               default=0.0)


def _content_hash(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        buf = io.BytesIO()
        np.save(buf, arrays[key], allow_pickle=False)
        h.update(key.encode())
        h.update(buf.getvalue())
    return h.hexdigest()
