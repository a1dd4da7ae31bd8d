"""``mll graph``: build and query the semantic graph."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..graph import Matcher, build_graph, open_graph
from ..graph.graph import SemanticGraph
from ._options import emit_json, hub_option, json_option


@click.group("graph")
def command() -> None:
    """The semantic graph of visual concepts (WordNet 3.0 nouns)."""


@command.command("build")
@hub_option
@click.option("--wordnet", "wordnet_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory of the WordNet database files (default: /usr/share/wordnet).")
@json_option
def build(hub: Path, wordnet_dir: Path | None, as_json: bool) -> None:
    """Build the graph from WordNet and store it in the hub."""
    start = time.perf_counter()
    graph = build_graph(hub, wordnet_dir)
    info = _info(graph, hub) | {"seconds": round(time.perf_counter() - start, 3)}
    if as_json:
        emit_json(info)
    else:
        click.echo(f"graph {info['version'][:16]}: {info['nodes']} nodes, {info['edges']} edges, "
                   f"built in {info['seconds']:.1f}s -> {hub / 'graph'}")


def _info(graph: SemanticGraph, hub: Path) -> dict:
    return {"version": graph.version, "nodes": len(graph), "edges": graph.num_edges,
            "root": graph.root, "root_name": graph.name(graph.root),
            "max_depth": int(graph.depth.max()), "path": str(hub / "graph")}


@command.command("info")
@hub_option
@json_option
def info(hub: Path, as_json: bool) -> None:
    """Version, size and root of the hub's graph ('mll graph build' makes it)."""
    data = _info(open_graph(hub), hub)
    if as_json:
        emit_json(data)
    else:
        for k, v in data.items():
            click.echo(f"{k:10} {v}")


@command.command("show")
@click.argument("term")
@hub_option
@json_option
def show(term: str, hub: Path, as_json: bool) -> None:
    """One node: by wnid, synset name (dog.n.01) or word (its first sense)."""
    graph = open_graph(hub)
    wnid = graph.resolve(term)
    node = graph.node(wnid)
    data = {"wnid": wnid, "name": node.name, "synset": node.synset, "lexname": node.lexname,
            "lemmas": list(node.lemmas), "definition": node.definition, "caption": node.caption,
            "depth": node.depth,
            "parents": [{"wnid": p, "name": graph.name(p)} for p in node.parents],
            "children": [{"wnid": c, "name": graph.name(c)} for c in graph.children(wnid)],
            "other_senses": [{"wnid": w, "synset": graph.synset_name(w),
                              "definition": graph.definition(w)}
                             for w in graph.lookup(term) if w != wnid]}
    if as_json:
        emit_json(data)
        return
    click.echo(f"{wnid}  {node.synset}  ({node.lexname}, depth {node.depth})")
    click.echo(f"  {node.definition}")
    click.echo(f"  lemmas:   {', '.join(node.lemmas)}")
    click.echo("  parents:  " + ", ".join(f"{p['name']} ({p['wnid']})" for p in data["parents"]))
    click.echo(f"  children: {len(data['children'])}")
    for other in data["other_senses"]:
        click.echo(f"  also: {other['synset']} ({other['wnid']}): {other['definition'][:70]}")


@command.command("match")
@click.argument("terms", nargs=-1, required=True)
@click.option("--context", default="", help="Other class names of the task, comma-separated.")
@click.option("--domain", default="", help="Words about the images, e.g. 'satellite photo'.")
@click.option("--top", default=5, show_default=True, type=click.IntRange(1, 50))
@hub_option
@json_option
def match(terms: tuple[str, ...], context: str, domain: str, top: int, hub: Path,
          as_json: bool) -> None:
    """Rank nodes for class names; the terms disambiguate each other."""
    matcher = Matcher.for_hub(hub)
    extra = [c.strip() for c in context.split(",") if c.strip()]
    start = time.perf_counter()
    ranked = matcher.match(list(terms), context=extra, domain=domain, top=top)
    seconds = time.perf_counter() - start
    if as_json:
        emit_json({"terms": [{"term": t, "candidates": [
            {"wnid": c.wnid, "name": c.name, "synset": matcher.graph.synset_name(c.wnid),
             "score": c.score, "lexical": c.lexical, "evidence": c.evidence} for c in cands]}
            for t, cands in zip(terms, ranked, strict=True)], "seconds": round(seconds, 4)})
        return
    for term, cands in zip(terms, ranked, strict=True):
        click.echo(f"{term}:")
        for c in cands:
            how = "word" if c.lexical else "text"
            click.echo(f"  {c.score:.3f}  {c.wnid}  {matcher.graph.synset_name(c.wnid):28} [{how}] "
                       f"{matcher.graph.definition(c.wnid)[:60]}")


@command.command("path")
@click.argument("a")
@click.argument("b")
@hub_option
@json_option
def path(a: str, b: str, hub: Path, as_json: bool) -> None:
    """How two nodes relate: lowest common ancestors, distance and the path through them."""
    graph = open_graph(hub)
    wa, wb = graph.resolve(a), graph.resolve(b)
    lcas = graph.lowest_common_ancestors(wa, wb)
    da, db = graph.up_distances(wa), graph.up_distances(wb)
    via = min(lcas, key=lambda c: (da[c] + db[c], c))
    route = _up_path(graph, wa, via) + list(reversed(_up_path(graph, wb, via)[:-1]))
    data = {"a": wa, "b": wb, "distance": graph.distance(wa, wb),
            "similarity": round(graph.similarity(wa, wb), 4),
            "lowest_common_ancestors": [{"wnid": c, "name": graph.name(c)} for c in lcas],
            "path": [{"wnid": w, "name": graph.name(w)} for w in route]}
    if as_json:
        emit_json(data)
    else:
        click.echo(" -> ".join(f"{p['name']} ({p['wnid']})" for p in data["path"]))
        click.echo(f"distance {data['distance']}, Wu-Palmer similarity {data['similarity']}")


def _up_path(graph: SemanticGraph, start: str, ancestor: str) -> list[str]:
    """A shortest hypernym chain from ``start`` up to ``ancestor``."""
    target = graph.up_distances(start)[ancestor]
    chain = [start]
    while len(chain) <= target:
        remaining = target - len(chain) + 1
        chain.append(next(p for p in graph.parents(chain[-1])
                          if graph.up_distances(p).get(ancestor) == remaining - 1))
    return chain
