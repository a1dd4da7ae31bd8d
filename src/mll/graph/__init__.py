"""The semantic graph stage: WordNet nouns as a DAG, and matching free text to its nodes."""

from __future__ import annotations

from pathlib import Path

from ..config import HubPaths, resolve_hub
from ..errors import NotBuiltError
from .graph import Node, SemanticGraph, Subgraph
from .match import Candidate, Matcher

__all__ = ["Candidate", "Matcher", "Node", "SemanticGraph", "Subgraph", "build_graph", "open_graph"]


def build_graph(hub: str | Path | None = None, wordnet_dir: str | Path | None = None) -> SemanticGraph:
    """Build the graph from WordNet and store it in the hub (a no-op if the same version is there)."""
    graph = SemanticGraph.from_wordnet(wordnet_dir)
    graph.save(HubPaths(resolve_hub(hub)).graph)
    return graph


def open_graph(hub: str | Path | None = None, build: bool = False) -> SemanticGraph:
    """Load the hub's graph; when it is missing, build it if ``build`` else raise NotBuiltError.

    Only commands that build (``graph build``, ``label``, ``starter``) pass ``build=True``: a
    reading command on a mistyped hub must say so at once, not spend minutes building a graph.
    """
    paths = HubPaths(resolve_hub(hub))
    if not (paths.graph / "current.json").is_file():
        if build:
            return build_graph(paths.root)
        raise NotBuiltError(f"no graph in {paths.root}; build one with 'mll graph build' (or a "
                            "whole hub with 'mll starter --quick'), or pass the right --hub")
    return SemanticGraph.load(paths.graph)
