"""``mll data``: build, inspect and extend the image corpus."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from pathlib import Path

import click

from ._options import emit_json, hub_option, json_option


@click.group("data")
def command() -> None:
    """The image corpus: real images on graph nodes in train, sample and eval roles."""


@command.command("build")
@hub_option
@json_option
@click.option("--quick", is_flag=True, help="Fewer variants and 28x28 images (tests, quick hub).")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Build only these sources (repeatable; default: all).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the role splits.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Rendering processes (default: one per core).")
def build_cmd(hub: Path, as_json: bool, quick: bool, sources: tuple[str, ...], seed: int,
              workers: int | None) -> None:
    """Render the installed sources into the hub's corpus (incremental: only what changed)."""
    from ..corpus import CorpusConfig, build

    extra = {"sources": tuple(sources), "seed": seed}
    if workers:
        extra["workers"] = workers
    cfg = CorpusConfig.for_quick(**extra) if quick else CorpusConfig(**extra)
    report = build(hub, cfg)
    if as_json:
        emit_json(report)
        return
    state = "published" if report.changed else "unchanged"
    click.echo(f"corpus {report.version[:12]} {state}: {report.images} images "
               f"({', '.join(f'{r} {n}' for r, n in report.roles.items())}); "
               f"{report.units_rendered}/{report.units} units rendered, "
               f"{report.duplicates_dropped} duplicates dropped, {report.seconds} s")


@command.command("list")
@hub_option
@json_option
def list_cmd(hub: Path, as_json: bool) -> None:
    """Images, nodes and license per source and role."""
    from ..corpus import Corpus

    corpus = Corpus.open(hub)
    rows = corpus.summary()
    if as_json:
        emit_json({"version": corpus.version, "images": len(corpus),
                   "roles": corpus.meta["roles"], "sources": rows})
        return
    click.echo(f"corpus {corpus.version[:12]}: {len(corpus)} images")
    click.echo(f"{'source':28} {'role':7} {'images':>7} {'nodes':>6}  license")
    for r in rows:
        click.echo(f"{r.source:28} {r.role:7} {r.images:7d} {r.nodes:6d}  {r.license}")


@command.command("nodes")
@hub_option
@json_option
@click.option("--role", type=click.Choice(["train", "sample", "eval"]), default="sample",
              show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Also list the image count of every node.")
def nodes_cmd(hub: Path, as_json: bool, role: str, show_all: bool) -> None:
    """How many nodes have images in a role, and how many images each has."""
    from ..corpus import Corpus

    counts = Corpus.open(hub).node_counts(role)
    values = sorted(counts.values()) or [0]
    doc: dict = {"role": role, "nodes_with_images": len(counts)}
    if role == "sample":
        doc["nodes_with_samples"] = len(counts)
    doc["nodes_with_at_least_5"] = sum(v >= 5 for v in counts.values())
    doc["images"] = sum(counts.values())
    doc["images_per_node"] = {"min": values[0], "median": statistics.median(values),
                              "max": values[-1]}
    if show_all:
        doc["per_node"] = dict(sorted(counts.items()))
    if as_json:
        emit_json(doc)
        return
    per = doc["images_per_node"]
    click.echo(f"{len(counts)} nodes with {role} images ({doc['nodes_with_at_least_5']} with >= 5); "
               f"images per node min {per['min']}, median {per['median']}, max {per['max']}")
    for wnid, n in doc.get("per_node", {}).items():
        click.echo(f"{wnid} {n}")


@command.command("show")
@hub_option
@json_option
@click.argument("wnid")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG to write (default: ./<WNID>.png).")
@click.option("--role", type=click.Choice(["train", "sample", "eval"]), default=None,
              help="Only this role (default: all).")
@click.option("--descendants", is_flag=True, help="Include images of the nodes below it.")
@click.option("--limit", type=click.IntRange(min=1), default=64, show_default=True)
def show_cmd(hub: Path, as_json: bool, wnid: str, out: Path | None, role: str | None,
             descendants: bool, limit: int) -> None:
    """Write a contact sheet of a node's images."""
    from PIL import Image

    from .._io import atomic_path
    from ..corpus import Corpus
    from ..corpus.sheet import contact_sheet
    from ..errors import UnknownNameError

    corpus = Corpus.open(hub)
    corpus.graph.index(wnid)  # unknown or malformed wnids fail here, with a clear message
    nodes = {wnid} | (corpus.graph.descendants(wnid) if descendants else set())
    records = corpus.records(role=role, wnids=nodes)
    if not records:
        raise UnknownNameError("node with images", wnid,
                               hint=f"{corpus.graph.name(wnid)} has no corpus images"
                                    + (f" in role {role}" if role else ""))
    shown = spread(records, limit)
    sheet = contact_sheet(corpus.load([r.image_id for r in shown]),
                          [f"{r.role[:1]} {r.style.split('/')[-1]}" for r in shown])
    out = out or Path(f"{wnid}.png")
    with atomic_path(out) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    doc = {"wnid": wnid, "name": corpus.graph.name(wnid), "images": len(records),
           "shown": len(shown), "out": str(out), "records": shown}
    if as_json:
        emit_json(doc)
    else:
        click.echo(f"{wnid} {doc['name']}: {len(shown)} of {len(records)} images -> {out}")


def spread(records: list, limit: int) -> list:
    """Up to ``limit`` records taken in turn from each (source, style, role), so a sheet shows
    every kind of image a node has rather than the first source's."""
    groups: dict[tuple[str, str, str], list] = {}
    for r in records:
        groups.setdefault((r.source, r.style, r.role), []).append(r)
    out: list = []
    queues = list(groups.values())
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


@command.command("import")
@hub_option
@json_option
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--role", type=click.Choice(["sample", "eval"]), required=True,
              help="sample: node images for labelling; eval: a target task for benchmarking.")
@click.option("--task", default=None, help="Name of the import (default: the folder's name).")
def import_cmd(hub: Path, as_json: bool, directory: Path, role: str, task: str | None) -> None:
    """Import an ImageNet-style folder tree DIR/<class>/<images> (class = wnid or name)."""
    from ..corpus.folders import import_folder

    report = import_folder(hub, directory, role, task)
    if as_json:
        emit_json(asdict(report))
        return
    for p in report.problems:
        click.echo(f"skipped {p.path}: {p.reason}", err=True)
    click.echo(f"imported {report.images} images of {len(report.classes)} classes as "
               f"{report.role} task {report.task!r}; corpus {report.version[:12]}"
               + (f"; {len(report.problems)} problems (above)" if report.problems else ""))
