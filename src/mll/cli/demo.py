"""``mll demo``: solve a mixed eval task from class names and show what was chosen and why."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import emit_json, hub_option, json_option


@click.command("demo")
@click.option("--task", "task_name", default="mixed-clothes-animals", show_default=True,
              help="One of the benchmark's eval tasks.")
@hub_option
@json_option
def command(task_name: str, hub: Path, as_json: bool) -> None:
    """Solve an eval task by class names alone (needs a labelled hub: 'mll starter --quick')."""
    from .._io import StepTimer
    from ..bench.demo import run_demo

    timer = StepTimer("demo")
    result, out = run_demo(hub, task_name, timer=timer)
    sel = result.selection
    if as_json:
        emit_json(result.to_dict() | {"report": str(out / "report.html"),
                                      "steps": timer.to_dict()})
        return
    click.echo(f"Task {task_name!r}: {len(sel.classes)} classes, {len(result.paths)} eval images "
               f"(never seen by selection)")
    for c in sel.classes:
        models = ", ".join(m["name"] for m in c.models)
        node = c.nodes[0]["name"] if c.nodes else "-"
        acc = "-" if c.predicted_accuracy is None else f"{c.predicted_accuracy:.2f}"
        click.echo(f"  {c.name:14.14} -> concept {node:18.18} predicted {acc:>4}  by {models}")
    for line in sel.explanation:
        click.echo(f"  * {line}")
    pa = "-" if sel.predicted_accuracy is None else f"{sel.predicted_accuracy:.3f}"
    click.echo(f"Predicted accuracy {pa}; measured accuracy {result.accuracy:.3f} "
               f"({len(sel.models)} models loaded, selection {sel.seconds * 1000:.0f} ms)")
    click.echo(f"HTML report: {out / 'report.html'}")
    click.echo(f"time by step: {timer.breakdown()} (total {timer.total:.1f}s)")
