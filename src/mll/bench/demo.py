"""The demo: a mixed task from the eval role, solved from its class names alone.

Exports the task's eval images as a folder tree (one sub-folder per class), then runs the same
``solve`` that ``mll solve`` runs, so the measured accuracy comes from the folder names.
"""

from __future__ import annotations

from pathlib import Path

from .._io import StepTimer
from ..config import resolve_hub
from ..images import to_rgb
from .tasks import standard_tasks

DEMO_TASK = "mixed-clothes-animals"


def export_task(corpus, task, root: Path) -> Path:
    """Write the task's images as PNG files under ``root/<class>/``, once."""
    from PIL import Image

    for cls, image_id, img in zip((task.classes[k] for k in task.truth), task.image_ids,
                                  corpus.load(task.image_ids), strict=True):
        folder = root / cls.replace("/", "-")
        path = folder / f"{image_id[:16]}.png"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(to_rgb(img) if img.ndim == 3 else img).save(path)
    return root


def run_demo(hub_dir: str | Path | None, task_name: str = DEMO_TASK, db: str | None = None,
             timer: StepTimer | None = None):
    """Solve ``task_name`` on the hub; ``timer`` (if given) gets each step's seconds."""
    from ..reuse import solve
    from ..selection import LabelTable, Task

    timer = timer or StepTimer("demo", announce=False)
    hub_dir = resolve_hub(hub_dir)
    with timer.step("open hub"):
        table = LabelTable(hub_dir, db=db)
    with timer.step("export eval images"):
        task = next(t for t in standard_tasks(table.corpus, table.graph, quick=True)
                    if t.name == task_name)
        out = hub_dir / "demo" / task.name
        images = export_task(table.corpus, task, out / "images")
    with timer.step("match, select, predict, report"):
        result = solve(table, Task.create([c.replace("/", "-") for c in task.classes],
                                          domain=task.domain, name=task.name),
                       images, report=out / "report.html", out_csv=out / "predictions.csv",
                       save=out / "predictor.zip")
    table.close()
    return result, out
