"""The semantic graph stage: WordNet nouns as a DAG, and matching free text to its nodes."""

from __future__ import annotations

from pathlib import Path

from ..config import HubPaths, resolve_hub
from .graph import Node, SemanticGraph, Subgraph
from .match import Candidate, Matcher

__all__ = ["Candidate", "Matcher", "Node", "SemanticGraph", "Subgraph", "build_graph", "open_graph"]


def build_graph(hub: str | Path | None = None, wordnet_dir: str | Path | None = None) -> SemanticGraph:
    """Build the graph from WordNet and store it in the hub (a no-op if the same version is there)."""
    graph = SemanticGraph.from_wordnet(wordnet_dir)
    graph.save(HubPaths(resolve_hub(hub)).graph)
    return graph


def open_graph(hub: str | Path | None = None, build: bool = True) -> SemanticGraph:
    """Load the hub's graph; build it first when missing and ``build`` is true."""
    paths = HubPaths(resolve_hub(hub))
    if build and not (paths.graph / "current.json").is_file():
        return build_graph(paths.root)
    return SemanticGraph.load(paths.graph)
