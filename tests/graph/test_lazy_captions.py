"""Caption embeddings: the search set up front, any other node on demand, nothing embedded twice."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mll.graph.graph import SemanticGraph
from mll.graph.match import Captions, Matcher, search_nodes
from mll.graph.testing import write_wordnet
from mll.text import EmbeddingCache

# offset, lemmas, parents, gloss
SYNSETS = [
    (1, ["entity"], [], "that which exists"),
    (2, ["animal", "beast"], [1], "a living organism that feeds on organic matter"),
    (3, ["canine"], [2], "a dog-like mammal"),
    (4, ["dog"], [3], "a domesticated canine kept as a pet"),
    (5, ["wolf"], [3], "a wild canine that hunts in packs"),
    (6, ["mouse"], [2], "a small rodent with a long tail"),
    (7, ["device"], [1], "an instrumentality invented for a purpose"),
    (8, ["mouse", "computer_mouse"], [7], "a hand-operated pointing device"),
    (9, ["keyboard"], [7], "a device with keys for typing"),
    (10, ["monitor"], [7], "a screen that shows what a computer outputs"),
    (11, ["hamster"], [2], "a short-tailed rodent kept as a pet"),
    (12, ["rat"], [2], "a rodent larger than a mouse"),
]


class CountingEncoder:
    """Deterministic unit vectors from a text's hash; remembers every text it embedded."""

    id = "test/counting-encoder"
    dim = 16

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.seen += texts
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:16], dtype=np.uint8)
                .astype(np.float32) - 127.5 for t in texts]
        out = np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def graph(tmp_path) -> SemanticGraph:
    return SemanticGraph.from_wordnet(write_wordnet(tmp_path / "wn", SYNSETS, "mice mouse\n"))


def matcher(graph, tmp_path, nodes, encoder=None) -> tuple[Matcher, CountingEncoder]:
    encoder = encoder or CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache" / "text.sqlite", encoder)
    return Matcher(graph, cache, Captions(graph, cache, tmp_path / "graph", nodes=nodes)), encoder


def captions_seen(encoder: CountingEncoder, graph: SemanticGraph) -> set[str]:
    return set(encoder.seen) & set(graph.captions())


def test_only_the_search_set_is_embedded_up_front(graph, tmp_path):
    search = [graph.index(f"n{o:08d}") for o in (2, 3, 4, 5, 6)]  # the animals
    m, enc = matcher(graph, tmp_path, search)
    assert captions_seen(enc, graph) == set(graph.captions(sorted(search)))
    assert list(m.captions.nodes) == sorted(search)
    # "keyboard" is outside: found by its lemma, its caption embedded when first needed, alone
    before = len(enc.seen)
    [cands] = m.match(["keyboard"], top=3)
    assert cands[0].wnid == "n00000009" and cands[0].lexical
    new = set(enc.seen[before:]) & set(graph.captions())
    assert new == {graph.caption("n00000009")}
    assert cands[0].evidence["caption"] == pytest.approx(
        max(0.0, float(m.captions.rows([graph.index("n00000009")])[0]
                       @ enc.encode(["keyboard"])[0])), abs=1e-4)


def test_search_set_and_on_demand_rows_agree(graph, tmp_path):
    """A node's caption vector is the same whether it came in the search matrix or on demand."""
    everything = np.arange(len(graph))
    full, _ = matcher(graph, tmp_path / "full", everything)
    part, _ = matcher(graph, tmp_path / "part", everything[:4])
    np.testing.assert_array_equal(full.captions.rows(everything), part.captions.rows(everything))
    np.testing.assert_array_equal(full.captions[[7, 2]], full.captions.rows([7, 2]))


def test_matching_with_every_node_searched_is_unchanged_by_a_smaller_set(graph, tmp_path):
    """Lexical candidates keep their scores; only the nearest-caption suggestions are bounded."""
    terms = ["mouse", "keyboard", "monitor"]
    full, _ = matcher(graph, tmp_path / "full", np.arange(len(graph)))
    lexical_only = [graph.index(w) for t in terms for w in graph.lookup(t)]
    part, _ = matcher(graph, tmp_path / "part", lexical_only)
    for a, b in zip(full.match(terms, top=10), part.match(terms, top=10), strict=True):
        assert a[0].wnid == b[0].wnid
        lex_a = {c.wnid: c.evidence["lexical"] for c in a if c.lexical}
        lex_b = {c.wnid: c.evidence["lexical"] for c in b if c.lexical}
        assert lex_a == lex_b
    assert part.match(terms, top=1)[0][0].wnid == "n00000008"  # the device among devices


def test_nothing_is_embedded_twice(graph, tmp_path):
    search = np.arange(0, len(graph), 2)
    m, enc = matcher(graph, tmp_path, search)
    m.match(["wolf", "dog", "rat"], domain="photo")
    again, enc2 = matcher(graph, tmp_path, search)  # same hub: matrix file and text cache
    assert enc2.seen == []
    again.match(["wolf", "dog", "rat"], domain="photo")
    assert enc2.seen == []  # terms, domain and lexical candidates' captions come from the cache
    files = sorted(p.name for p in (tmp_path / "graph").iterdir())
    assert len(files) == 1 and files[0].startswith(f"captions-{graph.version[:16]}-test-counting")


def test_another_search_set_gets_its_own_matrix(graph, tmp_path):
    matcher(graph, tmp_path, [1, 2, 3])
    _, enc = matcher(graph, tmp_path, [1, 2, 3, 4])
    assert captions_seen(enc, graph) == set(graph.captions([4]))  # the rest from the text cache
    assert len(list((tmp_path / "graph").glob("captions-*-search-*.npy"))) == 2


def test_a_hub_with_every_caption_embedded_reads_its_matrix(graph, tmp_path):
    """Hubs built before the search set hold all captions in one matrix: nothing is embedded."""
    enc = CountingEncoder()
    every = enc.encode(graph.captions()).astype(np.float16)
    (tmp_path / "graph").mkdir()
    np.save(tmp_path / "graph" / f"captions-{graph.version[:16]}-test-counting-encoder.npy", every)
    m, enc = matcher(graph, tmp_path, [0, 1])
    assert captions_seen(enc, graph) == set()
    np.testing.assert_array_equal(m.captions.rows([5, 0]), every[[5, 0]].astype(np.float32))
    assert not list((tmp_path / "graph").glob("*-search-*.npy"))


def test_a_damaged_search_matrix_is_rebuilt(graph, tmp_path):
    first, _ = matcher(graph, tmp_path, [1, 2, 3])
    [path] = (tmp_path / "graph").glob("captions-*-search-*.npy")
    np.save(path, np.zeros((2, 3), dtype=np.float16))  # wrong shape: written by something else
    again, _ = matcher(graph, tmp_path, [1, 2, 3])
    np.testing.assert_array_equal(again.captions.search, first.captions.search)


def test_the_real_search_set_is_imagenet21k(real_hub):
    from mll.graph import open_graph

    graph = open_graph(real_hub, build=True)
    nodes = search_nodes(graph)
    assert len(nodes) == 21843 and np.all(np.diff(nodes) > 0)
    assert graph.index("n02084071") in set(nodes.tolist())  # dog


def test_the_starter_background_job_reports_its_error(tmp_path):
    """The caption thread of a starter build re-raises what it met in the waiting thread."""
    from mll.errors import NotBuiltError
    from mll.starter.build import _CaptionJob

    job = _CaptionJob(tmp_path / "no-hub")
    with pytest.raises(NotBuiltError, match="no graph"):
        job.wait()
