"""Match free-text class names to graph nodes.

A term's candidates come from two sources: WordNet lemma look-up (after normalising case,
separators, camelCase and inflection) and embedding similarity between the term and the node
captions of the search set (:func:`search_nodes`). Candidates are then scored on five pieces of
evidence: the lexical hit, WordNet's sense order, caption similarity, a prior for depictable
concepts, and agreement with the rest of the task (the deepest ancestor a candidate shares with
the other terms' candidates, and the domain words).
That last part is what turns "mouse" into the rodent among "rat, hamster" and into the device among
"keyboard, monitor".
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_path
from .._timm_data import timm_info_file
from ..config import HubPaths, resolve_hub
from ..errors import InvalidParameterError
from ..text import DEFAULT_ENCODER, EmbeddingCache, get_text_encoder
from .graph import SemanticGraph, wu_palmer

logger = logging.getLogger(__name__)

# How readily a class name in an image task means a synset of each lexicographer file: animals,
# artifacts, body parts, food, objects, plants, shapes, substances fully; people half (a person sense
# is usually a metaphor competing with the animal: "tiger", "shrew", "boxer"); places, numbers and
# written signs half (digits are pictured as numerals); the rest not at all.
VISUAL_LEXFILES = {5: 1.0, 6: 1.0, 8: 1.0, 13: 1.0, 17: 1.0, 19: 1.0, 20: 1.0, 25: 1.0, 27: 1.0,
                   10: 0.5, 15: 0.5, 18: 0.5, 23: 0.5}
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# How much each kind of evidence counts in a candidate's score, a weighted mean over the evidence
# the term has (so the weights need not sum to 1): lexical (the term is one of the node's lemmas),
# sense (WordNet's sense order), caption (term vs node caption embedding), visual
# (VISUAL_LEXFILES), context (closeness to the other terms' candidates), domain (caption vs the
# task's domain words). Set by hand with the matcher, not fitted; the top-1 floor of
# tests/graph/test_match_table.py (real class names of public benchmarks) guards them.
WEIGHTS = {"lexical": 0.38, "sense": 0.08, "caption": 0.22, "visual": 0.08, "context": 0.24,
           "domain": 0.10}
EMBEDDING_POOL = 8  # nearest captions added to each term's candidates
SEARCH_LIST = "imagenet21k_goog_synsets.txt"  # the nodes whose captions are searched: search_nodes
PRELIMINARY = 3  # candidates per term that vote on the others' context
NEIGHBOURS = 0.2  # share of the other terms a candidate must be close to (at least 3)
VOTE_TEMPERATURE = 0.05  # a vote counts exp(-(gap to the term's best candidate) / T)
MAX_VOTERS = 40  # in larger tasks, only the terms nearest in text vote on a term's context
CONTEXT_CANDIDATES = 6  # candidates per term whose context is scored
MAX_TERM_POOLS = 4096  # terms whose candidate pools are kept between tasks


@dataclass(frozen=True)
class Candidate:
    """A node proposed for a term, with its score in [0, 1] and the evidence behind it."""

    wnid: str
    name: str
    score: float
    lexical: bool
    evidence: dict[str, float]


# How far a name's best candidate can be trusted. Fitted on this matcher's best-candidate scores
# for the 84 benchmark class names of tests/graph/test_match_table.py (matched as their tasks)
# against 40 gibberish names (25 seeded random letter strings and 15 made-up words such as
# "xqzzkk", mixed into those tasks and alone) and 27 unusual real names (brands, typos, compounds):
# - every best candidate without a lexical hit scored 0.19-0.38, for gibberish and real names
#   alike, and was a guess ("sneeker" -> sneezer, "smartphone" -> desk phone): below
#   NO_MATCH_BELOW without a lexical hit, a name matches nothing;
# - correct lexical matches scored 0.61-0.93 (5% quantile 0.71), while matches on the head noun
#   only ("stop sign" -> signboard, "bubble tea" -> tea) scored 0.47-0.68: below UNCERTAIN_BELOW
#   a match is reported for review.
NO_MATCH_BELOW = 0.45
UNCERTAIN_BELOW = 0.6


def match_status(candidate: Candidate | None) -> str:
    """``"confident"``, ``"uncertain"`` (used, but worth a look) or ``"none"`` (matches nothing)."""
    if candidate is None or (not candidate.lexical and candidate.score < NO_MATCH_BELOW):
        return "none"
    return "uncertain" if candidate.score < UNCERTAIN_BELOW else "confident"


def split_words(term: str) -> str:
    """Lower-case words of a class name: camelCase, underscores and extra spaces undone."""
    term = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", term.strip())
    term = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", " ", term)
    return re.sub(r"[\s_]+", " ", term).strip().lower()


def term_forms(term: str) -> list[tuple[str, float]]:
    """Look-up forms of a term with how strongly a hit on each speaks for the whole term."""
    base = split_words(term)
    if base.isdigit() and len(base) == 1:
        base = DIGITS[int(base)]  # a digit class ("7") means the numeral seven
    forms: dict[str, float] = {}

    def add(form: str, weight: float) -> None:
        form = form.strip(" -.,")
        if form and forms.get(form, 0.0) < weight:
            forms[form] = weight

    add(base, 1.0)
    add(base.replace("-", " "), 1.0)
    add(base.replace("-", ""), 0.95)
    add(base.replace(" ", ""), 0.9)
    add(base.replace(" ", "-"), 0.95)
    parts = [p for p in re.split(r"\s*(?:/|,|&|\bor\b|\band\b)\s*", base) if p]
    if len(parts) > 1:
        for p in parts:
            add(p, 0.9)
            add(p.replace("-", " "), 0.9)
    for p in parts:
        words = p.replace("-", " ").split()
        if len(words) > 1:
            add(words[-1], 0.55)  # the head noun: "ankle boot" is a boot
            add(" ".join(words[-2:]), 0.7)
    return list(forms.items())


class Matcher:
    """Ranks graph nodes for class names; ``for_hub`` wires the hub's graph and caches."""

    def __init__(self, graph: SemanticGraph, embeddings: EmbeddingCache,
                 captions: Captions) -> None:
        if captions.graph is not graph:
            raise InvalidParameterError("the caption embeddings belong to another graph")
        self.graph, self.embeddings, self.captions = graph, embeddings, captions
        self._memo: dict[tuple, list[list[Candidate]]] = {}  # a task re-selected is matched once
        # a term's candidates and their lexical and caption evidence depend on the term alone, so
        # a term met in an earlier task (another subset of a user's classes) skips the search
        self._term_pools: dict[str, dict[str, dict[str, float]]] = {}
        self._closeness = self._closeness_memo()

    @classmethod
    def for_hub(cls, hub: str | Path | None = None, encoder: str = DEFAULT_ENCODER, *,
                build: bool = False) -> Matcher:
        """The hub's matcher; a hub without a graph is NotBuiltError unless ``build``."""
        from . import open_graph

        paths = HubPaths(resolve_hub(hub))
        graph = open_graph(paths.root, build=build)
        cache = EmbeddingCache(paths.cache / "text.sqlite", get_text_encoder(encoder))
        return cls(graph, cache, Captions(graph, cache, paths.graph))

    # -- public ---------------------------------------------------------------------------------
    def match(self, terms: Sequence[str], context: Sequence[str] = (), domain: str = "",
              top: int = 5) -> list[list[Candidate]]:
        """Ranked candidates per term; every term is context for the others."""
        key = (tuple(terms), tuple(context), domain, top)
        if key not in self._memo:
            if len(self._memo) > 256:
                self._memo.clear()
            self._memo[key] = self._match(list(terms), context, domain, top)
        return [list(c) for c in self._memo[key]]

    def _match(self, terms: list[str], context: Sequence[str], domain: str,
               top: int) -> list[list[Candidate]]:
        for t in terms:
            if not isinstance(t, str) or not split_words(t):
                raise InvalidParameterError(f"empty class name in {terms!r}; give a word or phrase")
        extra = [c for c in context if split_words(c)]
        all_terms = terms + extra
        term_vecs = self.embeddings.encode([split_words(t) for t in all_terms])
        dom_vec = self.embeddings.encode([domain])[0] if domain.strip() else None
        pools = self._pools(all_terms, term_vecs)
        base = [self._base_scores(pool, dom_vec) for pool in pools]
        context_scores = self._context(pools, base, term_vecs) if len(all_terms) > 1 else None
        ranked = []
        for ti in range(len(terms)):
            cands = []
            for wnid, ev in pools[ti].items():
                ev = dict(ev, **base[ti][wnid])
                if context_scores is not None:
                    ev["context"] = context_scores[ti][wnid]
                if dom_vec is None:
                    ev.pop("domain", None)
                used = {k: WEIGHTS[k] for k in ev if k in WEIGHTS}
                score = sum(WEIGHTS[k] * ev[k] for k in used) / sum(used.values())
                cands.append(Candidate(wnid, self.graph.name(wnid), round(float(score), 4),
                                       ev["lexical"] > 0, {k: round(float(v), 4) for k, v in ev.items()}))
            cands.sort(key=lambda c: (-c.score, c.wnid))
            ranked.append(cands[:top])
        return ranked

    # -- evidence -------------------------------------------------------------------------------
    def _pools(self, terms: list[str], vecs: np.ndarray) -> list[dict[str, dict[str, float]]]:
        """Per term: its lexical candidates and nearest search-set captions with their caption
        similarity (copies: callers may add evidence); terms not met before are searched together."""
        new = sorted({j for j, t in enumerate(terms) if t not in self._term_pools},
                     key=lambda j: terms[j])
        if new:
            if len(self._term_pools) > MAX_TERM_POOLS:
                self._term_pools.clear()
            found = self._search_pools([terms[j] for j in new], vecs[new])
            self._term_pools.update(zip((terms[j] for j in new), found, strict=True))
        return [{w: dict(ev) for w, ev in self._term_pools[t].items()} for t in terms]

    def _search_pools(self, terms: list[str], vecs: np.ndarray) -> list[dict[str, dict[str, float]]]:
        """``_pools`` for terms not met before; captions outside the search set are embedded
        once, in one batch."""
        search = self.captions.search_similarities(vecs)  # (search nodes, terms) in one product
        pools = [self._pool(t, search[:, j]) for j, t in enumerate(terms)]
        index = {w: self.graph.index(w) for pool in pools for w in pool}
        outside = sorted(i for i in set(index.values()) if self.captions.position(i) < 0)
        rows = dict(zip(outside, self.captions.rows(outside) @ vecs.T, strict=True))
        for j, pool in enumerate(pools):
            for wnid, ev in pool.items():
                k = self.captions.position(index[wnid])
                sim = search[k, j] if k >= 0 else rows[index[wnid]][j]
                ev["caption"] = max(0.0, float(sim))
        return pools

    def _pool(self, term: str, sims: np.ndarray) -> dict[str, dict[str, float]]:
        """Candidates with their lexical evidence (caption similarity is added by ``_pools``);
        ``sims`` is the term's similarity to each search-set caption."""
        pool: dict[str, dict[str, float]] = {}
        for form, weight in term_forms(term):
            senses = self.graph.lookup_counts(form)
            top_count = max((c for _, c in senses), default=0)
            for rank, (wnid, count) in enumerate(senses):
                # WordNet's sense order, sharpened by how often the sense was tagged in text
                prior = 0.5 / (1.0 + rank) + 0.5 * (count + 1.0) / (top_count + 1.0)
                ev = pool.setdefault(wnid, {"lexical": 0.0, "sense": 0.0})
                if (weight, prior) > (ev["lexical"], ev["sense"]):
                    ev["lexical"], ev["sense"] = weight, prior
        nearest = (np.argpartition(-sims, EMBEDDING_POOL)[:EMBEDDING_POOL]
                   if len(sims) > EMBEDDING_POOL else np.arange(len(sims)))
        for k in nearest:
            pool.setdefault(self.graph.wnid(int(self.captions.nodes[k])),
                            {"lexical": 0.0, "sense": 0.0})
        return pool

    def _base_scores(self, pool: dict[str, dict[str, float]],
                     dom_vec: np.ndarray | None) -> dict[str, dict[str, float]]:
        out = {}
        index = [self.graph.index(w) for w in pool]
        domain = self.captions.rows(index) @ dom_vec if dom_vec is not None else None
        for k, (wnid, i) in enumerate(zip(pool, index, strict=True)):
            ev = {"visual": VISUAL_LEXFILES.get(int(self.graph.lexfile[i]), 0.0)}
            if domain is not None:
                ev["domain"] = max(0.0, float(domain[k]))
            out[wnid] = ev
        return out

    def _context(self, pools: list[dict[str, dict[str, float]]],
                 base: list[dict[str, dict[str, float]]], vecs: np.ndarray) -> list[dict[str, float]]:
        """Per candidate: mean closeness to its nearest other terms (Wu-Palmer style).

        Each term votes with its few strongest candidates, weighted by their context-free score;
        closeness through a common ancestor ``a`` is ``2 (d_a + 1) / (2 (d_a + 1) + hops up from
        either side)``. In large tasks only the ``MAX_VOTERS`` terms nearest in text vote, and only
        each term's ``CONTEXT_CANDIDATES`` strongest candidates are scored, which keeps matching a
        1000-class task to seconds.
        """
        n = len(pools)
        ranked = [sorted(pool, key=lambda w, t=ti: -self._prelim(pool[w], base[t][w]))
                  for ti, pool in enumerate(pools)]
        voters = []
        for ti, order in enumerate(ranked):
            # a term with no candidate at all (nothing by lemma or caption) has no vote
            top = self._prelim(pools[ti][order[0]], base[ti][order[0]]) if order else 0.0
            voters.append([(w, float(np.exp(-(top - self._prelim(pools[ti][w], base[ti][w]))
                                            / VOTE_TEMPERATURE))) for w in order[:PRELIMINARY]])
        sims = vecs @ vecs.T
        np.fill_diagonal(sims, -np.inf)
        near = np.argsort(-sims, axis=1)[:, : min(n - 1, MAX_VOTERS)]
        neighbours = min(near.shape[1], max(min(3, n - 1), int(np.ceil(NEIGHBOURS * (n - 1)))))
        closeness = self._closeness
        result = []
        for ti, order in enumerate(ranked):
            scores = dict.fromkeys(pools[ti], 0.0)
            for w in order[:CONTEXT_CANDIDATES]:
                best = sorted((max((wt * closeness(w, c) for c, wt in voters[tj]), default=0.0)
                               for tj in near[ti]), reverse=True)
                scores[w] = sum(best[:neighbours]) / neighbours
            result.append(scores)
        return result

    def _closeness_memo(self):
        """closeness(a, b) with the hypernym distances and pair results kept between tasks."""
        ups: dict[str, dict[str, int]] = {}
        memo: dict[tuple[str, str], float] = {}
        depth = {}

        def up(w: str) -> dict[str, int]:
            if w not in ups:
                ups[w] = self.graph.up_distances(w)
                for a in ups[w]:
                    if a not in depth:
                        depth[a] = self.graph.wu_palmer_scale(a)
            return ups[w]

        def closeness(a: str, b: str) -> float:
            key = (a, b) if a < b else (b, a)
            if key not in memo:
                memo[key] = wu_palmer(up(a), up(b), depth.__getitem__)
            return memo[key]

        return closeness

    @staticmethod
    def _prelim(ev: dict[str, float], base: dict[str, float]) -> float:
        return (WEIGHTS["lexical"] * ev["lexical"] + WEIGHTS["sense"] * ev["sense"]
                + WEIGHTS["caption"] * ev["caption"] + WEIGHTS["visual"] * base["visual"])


def search_nodes(graph: SemanticGraph) -> np.ndarray:
    """Graph indices of the nodes a name may be matched to by caption similarity alone.

    These are ImageNet-21k's synsets (the list in the timm wheel): the WordNet nouns that people
    have collected pictures of, 21,843 of the 82,115. Any node is still found by its lemmas, so
    the search set only bounds the fuzzy suggestions, and embedding its captions takes a quarter
    of the time of all of them. Measured against searching every caption: the same best
    candidate with the same score for all 2,364 names tried (the benchmark's tasks, the matching
    test table, CIFAR-100 and the ImageNet-1k class names); only low-ranked suggestions differ.
    """
    wnids = timm_info_file(SEARCH_LIST).read_text(encoding="utf-8").split()
    return np.array(sorted({graph.index(w) for w in wnids if w in graph}), dtype=np.int64)


class Captions:
    """Node caption embeddings: one matrix over the search set, any other node on demand.

    Matching a name needs every search-set caption (its nearest captions join the candidates), but
    other nodes only when they are candidates by lemma, or sample-image nodes for P2; those are
    embedded when first asked for. Every caption goes through the hub's text cache (keyed by
    encoder and text), so none is embedded twice; a hub that already holds the matrix of every
    node (``captions-<graph>-<encoder>.npy``, as hubs built before the search set have) reads
    all rows from it.
    """

    def __init__(self, graph: SemanticGraph, cache: EmbeddingCache, directory: Path,
                 nodes: np.ndarray | None = None) -> None:
        self.graph, self.cache = graph, cache
        self.nodes = np.unique(search_nodes(graph) if nodes is None else np.asarray(nodes, np.int64))
        self._pos = np.full(len(graph), -1, dtype=np.int64)
        self._pos[self.nodes] = np.arange(len(self.nodes))
        slug = re.sub(r"[^A-Za-z0-9]+", "-", cache.id).strip("-")
        stem = f"captions-{graph.version[:16]}-{slug}"
        every = directory / f"{stem}.npy"
        self._every = np.load(every, mmap_mode="r") if every.is_file() else None
        if self._every is not None:
            matrix = self._every[self.nodes]
        else:
            key = hashlib.sha256(self.nodes.astype("<i8").tobytes()).hexdigest()[:12]
            matrix = self._search_matrix(directory / f"{stem}-search-{key}.npy")
        # float32 in memory: numpy has no fast float16 matrix product
        self.search = np.asarray(matrix, dtype=np.float32)
        self._extra: dict[int, np.ndarray] = {}

    def _search_matrix(self, dest: Path) -> np.ndarray:
        if dest.is_file():
            matrix = np.load(dest, mmap_mode="r")
            if matrix.shape == (len(self.nodes), self.cache.dim):
                return matrix
        texts = self.graph.captions(self.nodes.tolist())
        matrix = self.cache.encode(texts, description="embedding node captions for matching")
        if dest.parent.is_dir() and not os.access(dest.parent, os.W_OK):
            # a read-only hub: keep the matrix in memory
            return matrix.astype(np.float16)
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, matrix.astype(np.float16))
        return np.load(dest, mmap_mode="r")

    def __len__(self) -> int:
        return len(self.graph)

    def position(self, index: int) -> int:
        """Row of graph node ``index`` in the search matrix, -1 outside the search set."""
        return int(self._pos[index])

    def search_similarities(self, vecs: np.ndarray) -> np.ndarray:
        """(search nodes, texts) cosine similarities of unit vectors to the search captions."""
        return self.search @ np.asarray(vecs, dtype=np.float32).T

    def rows(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Caption embeddings (float32) of graph nodes, in the order given."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        out = np.empty((len(idx), self.cache.dim), dtype=np.float32)
        if self._every is not None:
            if len(idx):
                out[:] = self._every[idx]
            return out
        pos = self._pos[idx]
        inside = pos >= 0
        out[inside] = self.search[pos[inside]]
        need = sorted({int(i) for i in idx[~inside]} - set(self._extra))
        if need:
            vecs = self.cache.encode(self.graph.captions(need))
            self._extra.update(zip(need, vecs, strict=True))
        for k in np.flatnonzero(~inside):
            out[k] = self._extra[int(idx[k])]
        return out

    def __getitem__(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.rows(indices)
