"""``mll hub``: add, list, show, map and remove models; train a LiT VLM."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidParameterError, MLLWarning
from ._options import emit_json, hub_option, json_option


def db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--db", default=None, envvar="MLL_DB",
                        help="SQLAlchemy URL of the hub database (default: $MLL_DB or "
                             "sqlite:///<hub>/mll.db).")(fn)


def _open(hub: Path, db: str | None, create: bool = False):
    """The hub; only commands that add models create one (a mistyped --hub is an error)."""
    from ..hub import Hub

    return Hub.open(hub, db, create=create)


@contextmanager
def _user_warnings() -> Iterator[None]:
    """Print the hub's warnings as one ``Warning:`` line each instead of Python's format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MLLWarning)
        yield
    for w in caught:
        if issubclass(w.category, MLLWarning):
            click.echo(f"Warning: {w.message}", err=True)


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE is JSON when it parses (``28``, ``[0.5]``, ``{...}``), else text.

    A VALUE that starts like a JSON object, list or string but does not parse is an error rather
    than text: it is almost always shell quoting that ate the quotes inside it.
    """
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidParameterError(f"-o/--option takes KEY=VALUE, got {pair!r}")
        if key in options:
            raise InvalidParameterError(f"-o {key} is given twice")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError as exc:
            if value.lstrip()[:1] in ("{", "[", '"'):
                raise InvalidParameterError(
                    f"-o {key}: {value!r} is not valid JSON ({exc.msg} at character {exc.pos}); "
                    f"quote the whole option for the shell, e.g. -o '{key}={{\"n_classes\": "
                    "10}'") from None
            options[key] = value
    return options


def _info_json(info) -> dict[str, Any]:
    return info.to_dict()


@click.group("hub")
def command() -> None:
    """The model hub: expert classifiers and VLMs, stored safely and labelled on the graph."""


@command.command("add")
@click.argument("model")
@click.option("--kind", type=click.Choice(["expert", "vlm"]), help="Checked against the family.")
@click.option("--family", help="Model family (see 'mll hub families'); inferred from .onnx and "
                                ".safetensors files.")
@click.option("--classes", "classes_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Class file: one class per line, optionally NAME<TAB>WNID to pin its node.")
@click.option("--name", help="Display name (default: from the file or variant).")
@click.option("--source", help="Where the model comes from (URL, paper, dataset).")
@click.option("--license", "license_", help="License of the weights.")
@click.option("--domain", default="", help="Words about the images, to help match class names.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Family option, e.g. -o top=10 (conse), -o input_size=28 (onnx).")
@click.option("--max-size", type=float, default=2048.0, show_default=True,
              help="Refuse model files larger than this many MB.")
@hub_option
@db_option
@json_option
def add(model: str, kind: str | None, family: str | None, classes_file: Path | None,
        name: str | None, source: str | None, license_: str | None, domain: str,
        options: tuple[str, ...], max_size: float, hub: Path, db: str | None,
        as_json: bool) -> None:
    """Add MODEL (a file, a directory, or a variant name such as efficientnet-lite0)."""
    with _user_warnings(), _open(hub, db, create=True) as h:
        info = h.add(model, kind=kind, family=family, classes=classes_file, name=name,
                     source=source, license=license_, domain=domain,
                     options=_parse_options(options), max_bytes=int(max_size * 1e6))
    if as_json:
        emit_json(_info_json(info))
        return
    mapped = sum(c.wnid is not None for c in info.classes)
    click.echo(f"{info.id}  {info.name}  ({info.kind}, {info.family}, {len(info.classes)} classes"
               f", {mapped} mapped, {info.latency_ms} ms/image)")


@command.command("list")
@click.option("--kind", type=click.Choice(["expert", "vlm"]))
@click.option("--family")
@hub_option
@db_option
@json_option
def list_(kind: str | None, family: str | None, hub: Path, db: str | None, as_json: bool) -> None:
    """The hub's models, oldest first."""
    with _open(hub, db) as h:
        infos = h.list(kind=kind, family=family)
    if as_json:
        emit_json([i.summary() for i in infos])
        return
    click.echo(f"{'id':12}  {'kind':6}  {'family':17}  {'classes':>7}  {'labelled':8}  name")
    for i in infos:
        click.echo(f"{i.id:12}  {i.kind:6}  {i.family:17}  {len(i.classes):>7}  "
                   f"{'yes' if i.labelled else 'no':8}  {i.name}")


@command.command("show")
@click.argument("model_id")
@hub_option
@db_option
@json_option
def show(model_id: str, hub: Path, db: str | None, as_json: bool) -> None:
    """Everything the hub records about one model (id, id prefix or unique name)."""
    with _open(hub, db) as h:
        data = _info_json(h.get(model_id))
    if as_json:
        emit_json(data)
        return
    for key in ("id", "name", "kind", "family", "backbone", "source", "license", "n_params",
                "latency_ms", "input_spec", "metrics", "artifact_digest", "artifact_bytes",
                "created_at", "labelled"):
        click.echo(f"{key:16} {data[key]}")
    if data["classes"]:
        _print_classes(data["classes"][:20])
        if len(data["classes"]) > 20:
            click.echo(f"... {len(data['classes']) - 20} more (--json shows all)")


def _print_classes(classes: list[dict[str, Any]], names: dict[str, str] | None = None) -> None:
    names = names or {}
    click.echo(f"{'#':>4}  {'class':24}  {'wnid':10}  {'node':24}  {'score':>6}  confirmed")
    for c in classes:
        score = "" if c["score"] is None else f"{c['score']:.3f}"
        click.echo(f"{c['index']:>4}  {c['name'][:24]:24}  {c['wnid'] or '-':10}  "
                   f"{names.get(c['wnid'], '')[:24]:24}  {score:>6}  "
                   f"{'yes' if c['confirmed'] else 'no'}")


@command.command("serving")
@click.argument("node")
@click.option("--kind", type=click.Choice(["expert", "vlm"]), help="Only experts or VLMs.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many models to answer.")
@hub_option
@db_option
@json_option
def serving_(node: str, kind: str | None, limit: int, hub: Path, db: str | None,
             as_json: bool) -> None:
    """Labelled models that serve NODE (a wnid), best measured accuracy there first."""
    with _open(hub, db) as h:
        rows = h.serving(node, kind=kind, limit=limit)
    if as_json:
        emit_json([r.to_dict() for r in rows])
        return
    click.echo(f"{'id':12}  {'kind':6}  {'accuracy':>8}  {'images':>6}  name")
    for r in rows:
        acc = "-" if r.accuracy is None else f"{r.accuracy:.4f}"
        click.echo(f"{r.model_id:12}  {r.kind:6}  {acc:>8}  {r.images:>6}  {r.name}")


@command.command("remove")
@click.argument("model_id")
@hub_option
@db_option
@json_option
def remove(model_id: str, hub: Path, db: str | None, as_json: bool) -> None:
    """Remove a model (and its artifact when no other model shares it)."""
    with _open(hub, db) as h:
        info = h.remove(model_id)
    if as_json:
        emit_json({"removed": info.id, "name": info.name})
    else:
        click.echo(f"removed {info.id}  {info.name}")


@command.command("map")
@click.argument("model_id")
@click.option("--set", "assignments", multiple=True, metavar="CLASS=WNID",
              help="Map a class to a node by hand (marks it confirmed).")
@click.option("--confirm", "confirm", multiple=True, metavar="CLASS",
              help="Mark a class's current node as reviewed.")
@click.option("--confirm-all", is_flag=True, help="Mark every mapped class as reviewed.")
@click.option("--rematch", is_flag=True, help="Match unconfirmed classes against the graph again.")
@click.option("--domain", default="", help="Words about the images, used by --rematch.")
@click.option("--unconfirmed", is_flag=True, help="Show only classes not yet confirmed.")
@hub_option
@db_option
@json_option
def map_(model_id: str, assignments: tuple[str, ...], confirm: tuple[str, ...],
         confirm_all: bool, rematch: bool, domain: str, unconfirmed: bool, hub: Path,
         db: str | None, as_json: bool) -> None:
    """Review an expert's class -> node mapping; with no flag, print it."""
    assign = {}
    for pair in assignments:
        cname, sep, wnid = pair.rpartition("=")
        if not sep or not cname:
            raise InvalidParameterError(f"--set takes CLASS=WNID, got {pair!r}")
        assign[cname] = wnid.strip()
    with _open(hub, db) as h:
        info = h.map(model_id, assign=assign, confirm=confirm, confirm_all=confirm_all,
                     rematch=rematch, domain=domain)
        names = _node_names(h, info)
    classes = [c for c in _info_json(info)["classes"] if not (unconfirmed and c["confirmed"])]
    if as_json:
        emit_json({"id": info.id, "name": info.name, "classes": [
            c | {"node": names.get(c["wnid"])} for c in classes]})
        return
    click.echo(f"{info.id}  {info.name}: {sum(c.confirmed for c in info.classes)} of "
               f"{len(info.classes)} classes confirmed")
    _print_classes(classes, names)


def _node_names(h, info) -> dict[str, str]:
    """Node names for the mapped wnids, when the hub has a graph."""
    if not (h.paths.graph / "current.json").is_file():
        return {}
    from ..graph import open_graph

    graph = open_graph(h.root, build=False)
    return {c.wnid: graph.name(c.wnid) for c in info.classes if c.wnid and c.wnid in graph}


@command.command("families")
@json_option
def families_(as_json: bool) -> None:
    """The model families the hub can store, with their kind and options."""
    from ..hub import families

    rows = [{"family": f, "kind": families.get(f).kind,
             "options": dict(families.get(f).OPTIONS)} for f in families.list()]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        opts = ", ".join(f"{k}={v}" for k, v in r["options"].items()) or "-"
        click.echo(f"{r['family']:18} {r['kind']:6} options: {opts}")


@command.command("verify")
@hub_option
@db_option
@json_option
def verify(hub: Path, db: str | None, as_json: bool) -> None:
    """Re-hash every model's artifact and read every label's files; exit 2 naming damaged ones."""
    from ..errors import MLLError, StoreError
    from ..hub import families

    bad = []
    with _open(hub, db) as h:
        infos = h.list()
        for info in infos:
            try:  # the hash, then what the family checks in the file (ONNX: self-contained)
                path = h.artifacts.get(info.artifact_digest)
                families.get(info.family).check_artifact(path, info.config)
            except MLLError as exc:
                bad.append({"id": info.id, "error": str(exc)})
        bad_labels = _damaged_labels(h.root, infos)
    if as_json:
        emit_json({"models": len(infos), "damaged": bad, "damaged_labels": bad_labels})
    elif not bad and not bad_labels:
        click.echo(f"{len(infos)} models, all artifacts intact and all labels readable")
    for b in bad_labels if not as_json else ():
        click.echo(f"damaged label of {b['id']}: {b['error']} ({b['path']})", err=True)
    problems = []
    if bad:
        problems.append(f"{len(bad)} damaged artifact(s): {', '.join(b['id'] for b in bad)}")
    if bad_labels:
        ids = sorted({b["id"] for b in bad_labels})
        problems.append(f"{len(bad_labels)} damaged label(s) of {', '.join(ids)}; "
                        + " and ".join(f"'mll label --model {i}'" for i in ids) + " repairs them")
    if problems:
        raise StoreError("; ".join(problems))


def _damaged_labels(root: Path, infos: list) -> list[dict[str, str]]:
    """Every published label (any graph or corpus version) whose files are missing or cut."""
    from ..labels.store import LabelStore, label_problem

    store = LabelStore(root)
    versions = [_current_version(root / stage / "current.json") for stage in ("graph", "corpus")]
    found = []
    for info in infos:
        current = store.label_dir(info.content_hash, *versions).name if all(versions) else None
        for ldir in store.published_dirs(info.content_hash):
            problem = label_problem(ldir)
            if problem is not None and ldir.name != current:
                problem += "; an outdated version nothing reads: delete the directory"
            if problem is not None:
                found.append({"id": info.id, "path": str(ldir), "error": problem})
    return found


def _current_version(meta: Path) -> str | None:
    """The version a stage's ``current.json`` names, without loading the stage."""
    try:
        return str(json.loads(meta.read_text())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@command.command("train-lit")
@click.option("--backbone", default="efficientnet-lite0@224", show_default=True)
@click.option("--role", default="train", show_default=True, help="Corpus role to train on.")
@click.option("--source", "sources", multiple=True, help="Corpus source(s) (default: all).")
@click.option("--wnids", "wnids_file", type=click.Path(dir_okay=False, path_type=Path),
              help="File of wnids (one per line) to restrict the training concepts.")
@click.option("--epochs", type=int, default=60, show_default=True)
@click.option("--data-fraction", type=float, default=1.0, show_default=True)
@click.option("--holdout", type=float, default=0.2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--name", help="Model name (default: lit-<backbone>-<concepts>).")
@hub_option
@db_option
@json_option
def train_lit(backbone: str, role: str, sources: tuple[str, ...], wnids_file: Path | None,
              epochs: int, data_fraction: float, holdout: float, seed: int, name: str | None,
              hub: Path, db: str | None, as_json: bool) -> None:
    """Train a LiT-style VLM on the corpus (image, node caption) pairs and add it to the hub."""
    from ..hub.train import train_lit_from_corpus

    wnids = None
    if wnids_file is not None:
        wnids = [w.strip() for w in wnids_file.read_text().split() if w.strip()]
    trained = train_lit_from_corpus(hub, backbone=backbone, role=role, sources=sources or None,
                                    wnids=wnids, epochs=epochs, data_fraction=data_fraction,
                                    holdout=holdout, seed=seed, name=name)
    with _user_warnings(), _open(hub, db, create=True) as h:
        info = h.add(trained, name=name or trained.name)
    if as_json:
        emit_json(_info_json(info))
    else:
        click.echo(f"{info.id}  {info.name}  held-out caption accuracy "
                   f"{info.metrics.get('heldout_accuracy')} over {info.metrics.get('n_captions')} "
                   f"concepts ({info.metrics.get('n_train')} training images)")
