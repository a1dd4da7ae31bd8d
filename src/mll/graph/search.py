"""Finding nodes by name: what a search box over the graph needs (``GET /api/nodes?q=``).

Matching free text to the node a class name *means* is the :class:`~mll.graph.Matcher`'s job; this
is the plain look-up a person browsing the graph expects: the word's own senses first, then words
that start with the query, then words that contain it.
"""

from __future__ import annotations

from .graph import SemanticGraph

MAX_RESULTS = 200


def search_names(graph: SemanticGraph, query: str, limit: int = 20) -> list[str]:
    """Wnids whose lemmas match ``query``, best first (at most ``limit``, capped at 200).

    Order: the senses of the query as a word (any inflection, WordNet's sense order), then
    lemmas starting with it (shorter first), then lemmas containing it; each node once.
    A wnid (``n04133789``) finds that node. Case, spaces and underscores do not matter.

    >>> search_names(graph, "sandal")          # doctest: +SKIP
    ['n04133789', ...]
    """
    from .._types import is_wnid
    from ..errors import InvalidParameterError

    text = query.strip()
    if not text:
        raise InvalidParameterError("empty search; give a word, part of a word or a wnid")
    limit = max(1, min(int(limit), MAX_RESULTS))
    if is_wnid(text):
        return [text] if text in graph else []
    found: dict[str, None] = dict.fromkeys(graph.lookup(text))
    key = text.lower().replace(" ", "_")
    if len(found) < limit:
        starts, contains = [], []
        for k in graph.lemma_keys():
            if k.startswith(key):
                starts.append(k)
            elif key in k:
                contains.append(k)
        for k in sorted(starts, key=lambda k: (len(k), k)) + sorted(contains,
                                                                      key=lambda k: (len(k), k)):
            for wnid in graph.lookup(k):
                found.setdefault(wnid)
            if len(found) >= limit:
                break
    return list(found)[:limit]
