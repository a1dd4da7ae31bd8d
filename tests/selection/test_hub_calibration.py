"""A hub's own calibration: proxy tasks from the sample role, records, fitted rules."""

from __future__ import annotations

from mll.bench.calibrate import collect, proxy_tasks, zero_shot_methods
from mll.selection.calibration import fit


def test_proxy_tasks_hide_sample_images_and_fit_rules(toy_table):
    tasks = proxy_tasks(toy_table, seed=0, size=2)
    assert tasks and all(hide.any() and len(nodes) == 2 for _, nodes, hide, _ in tasks)
    records = collect(toy_table, 1, 2, [("chco", {}), ("vlm", {})])
    assert {r["method"] for r in records} == {"chco", "vlm"}
    assert all(0 <= r["measured"] <= 1 and r["images"] >= 1 for r in records)
    rules, checks = fit(records)
    assert "chco" in rules and "task" in rules["chco"]
    names = [m for m, _ in zero_shot_methods()]
    assert "chco" in names and "oracle" not in names


def test_calibrate_refuses_an_unknown_method_row_in_one_line(tmp_path, capsys):
    from mll.cli import main

    assert main(["calibrate", "--hub", str(tmp_path), "--methods", "chco,nonesuch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: calibrate: unknown method row(s) nonesuch") and "\n" not in err
