"""``mll select`` and ``mll solve``: a task by its class names, answered from the hub's labels."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ..errors import InvalidParameterError
from ._options import emit_json, hub_option, json_option


def _taking(*params: str) -> list[str]:
    """The registered selection methods that take any of ``params`` (read from their signature)."""
    from ..selection import selectors

    return [n for n in selectors if set(params) & set(selectors.get(n).param_names())]


def task_options(fn):
    from ..selection import selectors

    zero_shot = [n for n in selectors if selectors.get(n).zero_shot]
    for opt in reversed([
        click.option("--classes", default=None, help="Class names, comma-separated."),
        click.option("--classes-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="One class per line; 'name<TAB>wnid' pins a class to a node."),
        click.option("--domain", default="", help="Words about the images, e.g. 'grayscale "
                                                  "product photo'."),
        click.option("--method", default="chco", show_default=True,
                     help=f"Selection method: {', '.join(zero_shot)}."),
        click.option("--k", type=int, default=None,
                     help=f"Models per class ({', '.join(_taking('k'))})."),
        click.option("--alpha", type=float, default=None,
                     help=f"Weight of a class's own score against the task mean "
                          f"({', '.join(_taking('alpha'))}), in [0, 1]."),
        click.option("--budget", default=None,
                     help=f"{', '.join(_taking('budget_models', 'budget_ms'))}: most models to "
                          "load ('3') or milliseconds per image ('40ms')."),
        click.option("--db", default=None, envvar="MLL_DB", help="SQLAlchemy URL of the store."),
    ]):
        fn = opt(fn)
    return fn


def make_task(classes: str | None, classes_file: Path | None, domain: str):
    from ..selection import Task

    if bool(classes) == bool(classes_file):
        raise InvalidParameterError("give the task's classes with --classes 'a,b,c' or "
                                    "--classes-file FILE (one of them)")
    if classes_file:
        return Task.from_file(classes_file, domain=domain)
    return Task.create(classes, domain=domain)


def method_params(method: str, k: int | None, alpha: float | None, budget: str | None) -> dict:
    """The selector's parameters from the command line; which method takes which option is read
    from the selector registry, and every value is checked against the method's constraints."""
    from ..selection import make_selector, selectors

    takes = set(selectors.get(method).param_names())

    def applies(flag: str, *names: str) -> None:
        if not takes & set(names):
            raise InvalidParameterError(f"{flag} applies to {', '.join(_taking(*names))}, "
                                        f"not {method}")

    params: dict = {}
    if k is not None:
        applies("--k", "k")
        params["k"] = k
    if alpha is not None:
        applies("--alpha", "alpha")
        params["alpha"] = alpha
    if budget is not None:
        applies("--budget", "budget_models", "budget_ms")
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms)?\s*", budget)
        if not m:
            raise InvalidParameterError(f"--budget {budget!r}: give a model count ('3') or "
                                        "milliseconds per image ('40ms')")
        value = float(m.group(1))
        if value <= 0:
            raise InvalidParameterError(f"--budget {budget!r} leaves no model to load; give at "
                                        "least one model ('1') or a positive time ('40ms'), or "
                                        "drop --budget for no limit")
        if m.group(2):
            params["budget_ms"] = value
        elif not value.is_integer():
            raise InvalidParameterError(f"--budget {budget!r}: a model count is a whole number; "
                                        "for milliseconds per image add 'ms'")
        else:
            params["budget_models"] = int(value)
    make_selector(method, **params).validate_params()  # before any hub is opened
    return params


def _table(hub: Path, db: str | None):
    from ..selection import LabelTable

    return LabelTable(hub, db=db)


def _print_selection(sel) -> None:
    pa = "-" if sel.predicted_accuracy is None else f"{sel.predicted_accuracy:.3f}"
    level = sel.calibration.get("level", 0.9)
    iv = "" if sel.interval is None else \
        f" ({level:.0%} interval {sel.interval[0]:.2f}-{sel.interval[1]:.2f})"
    click.echo(f"{sel.method}: predicted accuracy {pa}{iv}; {len(sel.models)} model(s) to load; "
               f"selected in {sel.seconds * 1000:.0f} ms")
    for c in sel.classes:
        node = c.nodes[0]["name"] if c.nodes else "-"
        models = ", ".join(f"{m['name']}" for m in c.models) or "none"
        acc = "-" if c.predicted_accuracy is None else f"{c.predicted_accuracy:.2f}"
        iv = " " * 11 if c.interval is None else f"({c.interval[0]:.2f}-{c.interval[1]:.2f})"
        click.echo(f"  {c.name:20.20} -> {node:20.20} {c.covered_by:6} acc {acc:>4} {iv}  {models}")
    for line in sel.explanation:
        click.echo(f"  * {line}")
    for w in sel.warnings:
        click.echo(f"  ! {w}", err=True)


@click.command("select")
@task_options
@hub_option
@json_option
def select(classes, classes_file, domain, method, k, alpha, budget, db, hub, as_json) -> None:
    """Choose models for a task from labels alone; predicted accuracy and reasons per class."""
    from ..selection import make_selector

    task = make_task(classes, classes_file, domain)
    selector = make_selector(method, **method_params(method, k, alpha, budget))
    table = _table(hub, db)
    sel = selector.fit(table).select(task)
    if as_json:
        emit_json(sel.to_dict())
    else:
        _print_selection(sel)


@click.command("solve")
@task_options
@click.option("--images", "images_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder of images (searched recursively); one sub-folder per class gives accuracy.")
@click.option("--out", "out_csv", type=click.Path(dir_okay=False, path_type=Path),
              help="Write predictions as CSV.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an HTML report.")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the assembled predictor (one zip, loadable without the hub).")
@click.option("--look", is_flag=True,
              help="Take the target's style from the images themselves (their nearest sample "
                   "images in a backbone's feature space) instead of the domain words.")
@hub_option
@json_option
def solve(classes, classes_file, domain, method, k, alpha, budget, db, images_dir, out_csv, report,
          save, look, hub, as_json) -> None:
    """Select, assemble one predictor, and predict every image under a folder."""
    from ..reuse import solve as run_solve
    from ..reuse.solve import check_output_paths

    task = make_task(classes, classes_file, domain)
    params = method_params(method, k, alpha, budget)
    check_output_paths({"--out": out_csv, "--report": report, "--save": save})
    table = _table(hub, db)
    result = run_solve(table, task, images_dir, method=method, params=params, out_csv=out_csv,
                       report=report, save=save, look=look)
    for s in result.skipped:  # stderr in both modes, so --json output stays one document
        click.echo(f"skipped {s['path']}: {s['reason']}", err=True)
    if result.skipped:
        click.echo(f"{len(result.skipped)} file(s) skipped, {len(result.paths)} predicted",
                   err=True)
    if as_json:
        emit_json(result.to_dict())
        return
    _print_selection(result.selection)
    acc = "" if result.accuracy is None else f"; measured accuracy {result.accuracy:.3f}"
    click.echo(f"predicted {len(result.paths)} images ({len(result.skipped)} skipped){acc}")
    for label, path in (("predictions", out_csv), ("report", report), ("predictor", save)):
        if path:
            click.echo(f"{label}: {path}")


commands = [select, solve]
