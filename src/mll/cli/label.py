"""``mll label``: label every model of the hub that lacks a label for the current graph and corpus."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import LabellingFailedError
from ..labels import label_hub
from ..labels.executors import executors
from ._options import emit_json, hub_option, json_option


@click.command("label")
@click.option("--model", "models", multiple=True, help="Only this model id (repeatable).")
@click.option("--executor", type=click.Choice(executors.list()), default="local",
              show_default=True, help="Where labelling runs: " + "; ".join(
                  f"{n}: {executors.get(n).__doc__.splitlines()[0]}" for n in executors))
@click.option("--ray-address", "--address", "address", default=None,
              help="Ray cluster HOST:PORT for --executor ray (default: $RAY_ADDRESS, else a "
                   "one-node cluster in this process).")
@click.option("--batch", default=256, show_default=True, type=click.IntRange(1),
              help="Images per task (one shard each: the unit of resumption).")
@click.option("--db", default=None, envvar="MLL_DB", help="SQLAlchemy URL of the hub's store.")
@hub_option
@json_option
def command(models: tuple[str, ...], executor: str, address: str | None, batch: int,
            db: str | None, hub: Path, as_json: bool) -> None:
    """Label what is missing (interrupted runs resume where they stopped).

    A model that fails is named on stderr with its reason and fix while the others are labelled;
    the run then exits 2 so scripts notice.
    """
    report = label_hub(hub, models=list(models) or None, db=db, executor=executor, batch=batch,
                       address=address)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(f"labelled {len(report.models_labelled)} model(s), "
                   f"{len(report.models_up_to_date)} already up to date; "
                   f"{report.outputs_computed} outputs computed on {report.images} sample images "
                   f"in {report.seconds:.1f}s")
        if report.labels_converted:
            click.echo(f"rewrote {len(report.labels_converted)} current label(s) in the current "
                       "layout")
        for mid, s in report.per_model.items():
            acc = s.get("mean_accuracy_own_classes", s.get("zero_shot_accuracy"))
            click.echo(f"  {mid}  {s['kind']:6} nodes covered {s['nodes_covered']:5}  "
                       f"accuracy {acc if acc is not None else '-'}  {s['bytes'] / 1024:.0f} KiB")
        if report.executor != "local":
            for where, n in sorted(report.nodes.items()):
                click.echo(f"  ran on {where}: {n['tasks']} task(s), {n['images']} images")
    for f in report.failed:
        click.echo(f"failed {f['model_id']} ({f['name']}): {f['reason']}; {f['fix']}", err=True)
    if report.failed:
        ids = ", ".join(f["model_id"] for f in report.failed)
        raise LabellingFailedError(f"{len(report.failed)} model(s) could not be labelled ({ids}); the "
                       f"other {len(report.models_labelled)} were labelled")
