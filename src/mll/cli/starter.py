"""``mll starter``: build (or complete) the starter hub of experts and VLMs, labelled."""

from __future__ import annotations

from pathlib import Path

import click

from .._io import format_seconds
from ..starter import StarterReport, build_starter
from ._options import emit_json, hub_option, json_option


@click.command("starter")
@click.option("--quick", is_flag=True,
              help="The small hub for tests and the first demo (quick corpus, fewer models).")
@hub_option
@json_option
def command(quick: bool, hub: Path, as_json: bool) -> None:
    """Build the starter hub; a second run finds everything in place and adds nothing."""
    report = build_starter(hub, quick=quick)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print(report)


def _print(report: StarterReport) -> None:
    click.echo(f"{'id':12}  {'kind':6}  {'family':17}  {'classes':>7}  {'held-out':>8}  "
               f"{'new':3}  name")
    for m in report.models:
        acc = "-" if m.heldout_accuracy is None else f"{m.heldout_accuracy:.3f}"
        click.echo(f"{m.id:12}  {m.kind:6}  {m.family:17}  {m.classes:7}  {acc:>8}  "
                   f"{'yes' if m.added else 'no':3}  {m.name}")
    if report.replaced:
        click.echo(f"retrained (their recipe changed): {', '.join(report.replaced)}")
    for name, why in report.left_out.items():
        click.echo(f"left out {name}: {why}")
    click.echo(f"{report.mode} starter hub {report.hub}: {report.count('expert')} experts, "
               f"{report.count('vlm')} VLMs, {len(report.added)} added; "
               f"{report.labels['models_labelled']} labelled in {format_seconds(report.seconds)}")
    click.echo("time by step (wall, CPU):")
    for name, wall in report.phases.items():
        click.echo(f"  {name:34} {format_seconds(wall):>8} {format_seconds(report.cpu_seconds[name]):>8}")
    for name, wall in report.background.items():
        click.echo(f"  {name + ' (in background)':34} {format_seconds(wall):>8}")
