"""Match free-text class names to graph nodes.

A term's candidates come from two sources: WordNet lemma look-up (after normalising case,
separators, camelCase and inflection) and embedding similarity between the term and every node
caption. Candidates are then scored on five pieces of evidence: the lexical hit, WordNet's sense
order, caption similarity, a prior for depictable concepts, and agreement with the rest of the task
(the deepest ancestor a candidate shares with the other terms' candidates, and the domain words).
That last part is what turns "mouse" into the rodent among "rat, hamster" and into the device among
"keyboard, monitor".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_path
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
PRELIMINARY = 3  # candidates per term that vote on the others' context
NEIGHBOURS = 0.2  # share of the other terms a candidate must be close to (at least 3)
VOTE_TEMPERATURE = 0.05  # a vote counts exp(-(gap to the term's best candidate) / T)
MAX_VOTERS = 40  # in larger tasks, only the terms nearest in text vote on a term's context
CONTEXT_CANDIDATES = 6  # candidates per term whose context is scored


@dataclass(frozen=True)
class Candidate:
    """A node proposed for a term, with its score in [0, 1] and the evidence behind it."""

    wnid: str
    name: str
    score: float
    lexical: bool
    evidence: dict[str, float]


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
                 caption_matrix: np.ndarray) -> None:
        if caption_matrix.shape[0] != len(graph):
            raise InvalidParameterError("caption matrix does not match the graph's node count")
        self.graph, self.embeddings = graph, embeddings
        # float32 in memory: numpy has no fast float16 matrix product
        self.captions = np.asarray(caption_matrix, dtype=np.float32)
        self._memo: dict[tuple, list[list[Candidate]]] = {}  # a task re-selected is matched once
        self._closeness = self._closeness_memo()

    @classmethod
    def for_hub(cls, hub: str | Path | None = None, encoder: str = DEFAULT_ENCODER, *,
                build: bool = False) -> Matcher:
        """The hub's matcher; a hub without a graph is NotBuiltError unless ``build``."""
        from . import open_graph

        paths = HubPaths(resolve_hub(hub))
        graph = open_graph(paths.root, build=build)
        cache = EmbeddingCache(paths.cache / "text.sqlite", get_text_encoder(encoder))
        return cls(graph, cache, caption_matrix(graph, cache, paths.graph))

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
        sims = self.captions @ term_vecs.T  # (nodes, terms) in one product
        pools = [self._pool(t, sims[:, j]) for j, t in enumerate(all_terms)]
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

    def best(self, term: str, context: Sequence[str] = (), domain: str = "") -> Candidate:
        return self.match([term], context=context, domain=domain, top=1)[0][0]

    # -- evidence -------------------------------------------------------------------------------
    def _pool(self, term: str, sims: np.ndarray) -> dict[str, dict[str, float]]:
        """Candidates with their lexical evidence and caption similarity."""
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
        for i in np.argpartition(-sims, EMBEDDING_POOL)[:EMBEDDING_POOL]:
            pool.setdefault(self.graph.wnid(int(i)), {"lexical": 0.0, "sense": 0.0})
        for wnid, ev in pool.items():
            ev["caption"] = max(0.0, float(sims[self.graph.index(wnid)]))
        return pool

    def _base_scores(self, pool: dict[str, dict[str, float]],
                     dom_vec: np.ndarray | None) -> dict[str, dict[str, float]]:
        out = {}
        for wnid in pool:
            i = self.graph.index(wnid)
            ev = {"visual": VISUAL_LEXFILES.get(int(self.graph.lexfile[i]), 0.0)}
            if dom_vec is not None:
                ev["domain"] = max(0.0, float(self.captions[i] @ dom_vec))
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
            top = self._prelim(pools[ti][order[0]], base[ti][order[0]])
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
                best = sorted((max(wt * closeness(w, c) for c, wt in voters[tj]) for tj in near[ti]),
                              reverse=True)
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


def caption_matrix(graph: SemanticGraph, cache: EmbeddingCache, directory: Path) -> np.ndarray:
    """Every node caption embedded (float16, rows in graph order), built once per graph+encoder."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", cache.id).strip("-")
    dest = directory / f"captions-{graph.version[:16]}-{slug}.npy"
    if dest.is_file():
        return np.load(dest, mmap_mode="r")
    matrix = cache.encode(graph.captions()).astype(np.float16)
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, matrix)
    return np.load(dest, mmap_mode="r")
