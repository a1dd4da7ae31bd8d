"""``mll bench``: every selection method on the eval tasks, with intervals and ablations."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import emit_json, hub_option, json_option


@click.command("bench")
@click.option("--quick", is_flag=True, help="Fewer eval images and emoji classes (minutes).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("bench-results"), show_default=True, help="Where results go.")
@click.option("--orders", default=10, show_default=True, type=click.IntRange(1),
              help="Random orders for the hub-growth curve.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--db", default=None, envvar="MLL_DB", help="SQLAlchemy URL of the store.")
@hub_option
@json_option
def command(quick: bool, out_dir: Path, orders: int, seed: int, db, hub: Path, as_json: bool) -> None:
    """Benchmark chco against the papers' baselines on the hub's eval images."""
    from ..bench import BenchConfig, run_bench, write_results

    report = run_bench(hub, BenchConfig(quick=quick, seed=seed, orders=orders), db=db)
    paths = write_results(report, out_dir)
    if as_json:
        emit_json(report | {"files": [str(p) for p in paths]})
        return
    click.echo((out_dir / "results.md").read_text())
    click.echo("written: " + ", ".join(str(p) for p in paths))


@click.command("calibrate")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(1),
              help="Seeded rounds of proxy tasks (more: tighter rules, longer run).")
@click.option("--classes", default=20, show_default=True, type=click.IntRange(2),
              help="Concepts per proxy task.")
@click.option("--methods", default=None, metavar="ROWS",
              help="Comma-separated benchmark rows to fit (e.g. chco,vlm); the others keep the "
                   "shipped rules. Default: every zero-shot method.")
@click.option("--db", default=None, envvar="MLL_DB", help="SQLAlchemy URL of the store.")
@hub_option
@json_option
def calibrate(seeds: int, classes: int, methods: str | None, db, hub: Path, as_json: bool) -> None:
    """Fit the hub's predicted-accuracy calibration on proxy tasks from its own sample images."""
    from ..bench.calibrate import calibrate_hub

    rows = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    doc = calibrate_hub(hub, seeds=seeds, size=classes, methods=rows, db=db)
    if as_json:
        emit_json({k: v for k, v in doc.items() if k != "rules"})
        return
    click.echo(f"{doc['fitted_on']}: {doc['records']} records in {doc['seconds']} s")
    for method, levels in sorted(doc["checks"].items()):
        check = levels.get("task", {}).get("any")
        if check:
            click.echo(f"  {method:10s} task error {check['calibrated_mae_heldout']:.3f} "
                       f"(uncalibrated {check['raw_mae']:.3f}), 90% interval coverage "
                       f"{check['coverage_heldout']:.0%} on held-out proxy tasks")
    click.echo(f"written: {doc['path']}")


commands = [command, calibrate]
