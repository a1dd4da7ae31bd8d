"""The graph on a tiny hand-made WordNet (edge cases) and on the real one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mll.errors import InvalidParameterError, MLLError, UnknownNameError
from mll.graph.graph import SemanticGraph
from mll.graph.testing import write_wordnet as toy_wordnet

# offset, lemmas, parents, gloss: a DAG with two parents for "dog" (canine and pet).
TINY = [
    (1, ["entity"], [], "that which exists"),
    (2, ["animal", "beast"], [1], "a living organism"),
    (3, ["canine"], [2], "a dog-like mammal"),
    (4, ["pet"], [2], "a domesticated animal kept for companionship"),
    (5, ["dog"], [3, 4], "a domesticated canine; \"the dog barked\""),
    (6, ["wolf"], [3], "a wild canine"),
    (7, ["mouse"], [2], "a small rodent"),
    (8, ["device"], [1], "an instrumentality"),
    (9, ["mouse", "computer_mouse"], [8], "a hand-operated pointing device"),
]


def write_wordnet(directory: Path, synsets=TINY, extra_parent: tuple[int, int] | None = None) -> Path:
    """The toy WordNet, optionally with one more parent edge ``(child, parent)``."""
    if extra_parent:
        synsets = [(o, lemmas, [*parents, extra_parent[1]] if o == extra_parent[0] else parents, g)
                   for o, lemmas, parents, g in synsets]
    return toy_wordnet(directory, synsets, "mice mouse\n")


@pytest.fixture
def tiny(tmp_path) -> SemanticGraph:
    return SemanticGraph.from_wordnet(write_wordnet(tmp_path / "wn"))


def test_nodes_and_captions(tiny):
    dog = tiny.node("n00000005")
    assert dog.name == "dog" and dog.parents == ("n00000003", "n00000004")
    assert dog.definition == "a domesticated canine"  # example sentence dropped
    assert dog.caption == "dog which is a domesticated canine"
    assert dog.depth == 3 and tiny.root == "n00000001"


def test_queries(tiny):
    assert tiny.ancestors("n00000005") == {"n00000001", "n00000002", "n00000003", "n00000004"}
    assert tiny.descendants("n00000002") == {"n00000003", "n00000004", "n00000005", "n00000006",
                                             "n00000007"}
    assert tiny.lowest_common_ancestors("n00000005", "n00000006") == ["n00000003"]
    assert tiny.distance("n00000005", "n00000006") == 2
    assert tiny.distance("n00000007", "n00000009") == 4
    assert tiny.path_to_root("n00000005")[-1] == "n00000001"
    sub = tiny.subgraph(["n00000002", "n00000003", "n00000005", "n00000009"])
    assert sub.edges == (("n00000002", "n00000003"), ("n00000003", "n00000005"))
    assert 0 < tiny.similarity("n00000005", "n00000006") < tiny.similarity("n00000005", "n00000005") == 1


def test_lookup_morphology_and_senses(tiny):
    assert tiny.lookup("Mice") == ["n00000007", "n00000009"]
    assert tiny.lookup("dogs") == ["n00000005"]
    assert tiny.resolve("mouse.n.02") == "n00000009"
    assert tiny.resolve("computer mouse") == "n00000009"


def test_bad_input(tiny):
    with pytest.raises(UnknownNameError, match="did you mean 'dog'"):
        tiny.resolve("dogg")
    with pytest.raises(InvalidParameterError):
        tiny.resolve("   ")
    with pytest.raises(InvalidParameterError):
        tiny.index("dog")
    with pytest.raises(UnknownNameError):
        tiny.index("n99999999")


def test_cycle_and_roots_refused(tmp_path):
    with pytest.raises(MLLError, match="cycle"):
        SemanticGraph.from_wordnet(write_wordnet(tmp_path / "cyc", extra_parent=(3, 5)))
    two_roots = [s for s in TINY if s[0] != 8] + [(8, ["device"], [], "x")]
    two_roots = [s if s[0] != 2 else (2, ["animal"], [], "x") for s in two_roots]
    with pytest.raises(MLLError, match="roots"):
        SemanticGraph.from_wordnet(write_wordnet(tmp_path / "roots", synsets=two_roots))


def test_save_load_roundtrip_and_version(tiny, tmp_path):
    tiny.save(tmp_path / "g")
    loaded = SemanticGraph.load(tmp_path / "g")
    assert loaded.version == tiny.version and len(loaded) == len(tiny)
    assert loaded.node("n00000005") == tiny.node("n00000005")
    with pytest.raises(MLLError, match="mll graph build"):
        SemanticGraph.load(tmp_path / "missing")


def test_real_wordnet(graph, real_hub):
    assert len(graph) == 82115 and graph.root == "n00001740"
    dog = graph.node("n02084071")
    assert dog.synset == "dog.n.01" and "n02083346" in dog.parents
    assert "n02084071" in graph.ancestors("n02110958")  # pug is a dog
