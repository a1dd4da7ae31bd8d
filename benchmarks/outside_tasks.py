"""Tasks from image sources the corpus never used: chco against the VLM alone, and how far each
one's predicted accuracy lands from the accuracy measured.

The corpus draws its emoji from five iconify sets, its photos from Tux Paint, foolbox and
scikit-image. The tasks here come from elsewhere (each source is an installed package):

- ``emojione-animals``, ``emojione-objects``: Emoji One icons (``npm install
  @iconify-json/emojione``), animals and artifacts, one rendering per concept;
- ``fxemoji``: Firefox OS emoji (``npm install @iconify-json/fxemoji``), every concept the
  corpus's emoji table names;
- ``package-photos``: the photographs bundled with scikit-learn (``china.jpg``: a pagoda,
  ``flower.jpg``: a dahlia) and matplotlib (``grace_hopper.jpg``: a woman).

Classes are the concepts' WordNet names, pinned to their concepts as ``mll solve`` allows; the
domain words say the style ("emoji icon", "photo"). Selection sees names and domain words only;
accuracy is measured by the same predictor ``mll solve`` builds. Concepts are drawn with a seed
(``--classes`` per emoji task). Usage::

    python benchmarks/outside_tasks.py --hub HUB [--icons NODE_MODULES] [--classes 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from mll._io import progress
from mll.corpus.mappings import load_mapping
from mll.corpus.sources._paths import node_modules
from mll.corpus.sources.icons import svg_to_rgba
from mll.errors import MissingDependencyError
from mll.images import load_image_file, to_rgb
from mll.reuse import TaskPredictor
from mll.selection import LabelTable, Task, build_context, make_selector

METHODS = ("chco", "vlm")
ANIMAL, ARTIFACT = "n00015388", "n00021939"


def _flatten(rgba: np.ndarray) -> np.ndarray:
    """An RGBA rendering on white, as an RGB image."""
    a = rgba[:, :, 3:4].astype(np.float32) / 255
    return (rgba[:, :, :3] * a + 255 * (1 - a)).astype(np.uint8)


def _iconify_svg(data: dict, slug: str) -> bytes:
    while slug not in data["icons"]:
        slug = data["aliases"][slug]["parent"]
    icon = data["icons"][slug]
    w, h = icon.get("width", data.get("width", 16)), icon.get("height", data.get("height", 16))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="{icon.get("left", 0)} {icon.get("top", 0)} {w} {h}" width="{w}" '
            f'height="{h}">{icon["body"]}</svg>').encode()


def icon_task(table, icons: Path, icon_set: str, under: str | None, n: int, seed: int
              ) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """(concepts, images, truth): one rendering of ``n`` seeded concepts of the emoji table."""
    path = icons / "@iconify-json" / icon_set / "icons.json"
    if not path.is_file():
        raise MissingDependencyError(f"{path} not found: npm install @iconify-json/{icon_set}")
    data = json.loads(path.read_text())
    slugs = set(data["icons"]) | set(data.get("aliases", {}))
    by_key = {s.replace("-", ""): s for s in slugs}
    graph = table.graph
    found: dict[str, str] = {}
    for label, row in load_mapping("emoji").items():
        slug = label if label in slugs else by_key.get(label.replace("-", ""))
        if slug is None or row.wnid not in graph or row.wnid in found:
            continue
        if under is None or under in table.ancestors(row.wnid):
            found[row.wnid] = slug
    rng = np.random.default_rng(seed)
    wnids = sorted(rng.permutation(sorted(found))[:n].tolist())
    images = [_flatten(svg_to_rgba(_iconify_svg(data, found[w]))) for w in wnids]
    return wnids, images, np.arange(len(wnids))


def photo_task(table) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    import matplotlib
    import sklearn

    files = {"n03874965": Path(sklearn.__file__).parent / "datasets/images/china.jpg",  # pagoda
             "n11960245": Path(sklearn.__file__).parent / "datasets/images/flower.jpg",  # dahlia
             "n10787470": Path(matplotlib.get_data_path()) / "sample_data/grace_hopper.jpg"}
    wnids = [w for w in files if w in table.graph]
    return wnids, [to_rgb(load_image_file(files[w])) for w in wnids], np.arange(len(wnids))


def run(hub: str, icons: Path, n: int, seed: int) -> dict:
    start = time.perf_counter()
    table = LabelTable.open(hub)
    tasks = {
        "emojione-animals": ("emoji icon", icon_task(table, icons, "emojione", ANIMAL, n, seed)),
        "emojione-objects": ("emoji icon", icon_task(table, icons, "emojione", ARTIFACT, n, seed)),
        "fxemoji": ("emoji icon", icon_task(table, icons, "fxemoji", None, n, seed)),
        "package-photos": ("photo", photo_task(table)),
    }
    rows = []
    for name, (domain, (wnids, images, truth)) in progress(list(tasks.items()), "outside tasks"):
        names = [f"{table.graph.name(w)} ({w})" for w in wnids]
        task = Task.create(names, domain=domain, pinned=dict(zip(names, wnids, strict=True)))
        ctx = build_context(table, task)
        row = {"task": name, "classes": len(wnids), "images": len(images), "domain": domain}
        for method in METHODS:
            sel = make_selector(method).fit(table).select(task, ctx)
            pred = TaskPredictor.from_selection(sel, table.hub).predict(images)
            acc = float((np.asarray(pred) == truth).mean())
            lo, hi = sel.interval or (None, None)
            row[method] = {"accuracy": round(acc, 4), "predicted": sel.predicted_accuracy,
                           "interval": [lo, hi], "error": round(abs(sel.predicted_accuracy - acc), 4)
                           if sel.predicted_accuracy is not None else None,
                           "inside": lo is not None and lo <= acc <= hi}
        rows.append(row)
    summary = {m: {"mean_accuracy": round(float(np.mean([r[m]["accuracy"] for r in rows])), 4),
                   "mae": round(float(np.mean([r[m]["error"] for r in rows
                                               if r[m]["error"] is not None])), 4),
                   "coverage": round(float(np.mean([r[m]["inside"] for r in rows])), 4)}
               for m in METHODS}
    table.close()
    return {"hub": hub, "seed": seed, "tasks": rows, "summary": summary,
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub", required=True)
    ap.add_argument("--icons", type=Path, default=None,
                    help="a node_modules directory holding @iconify-json/emojione and fxemoji "
                         "(default: the project's, installed by make setup from package.json)")
    ap.add_argument("--classes", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    report = run(args.hub, args.icons or node_modules(), args.classes, args.seed)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print("| task | classes | chco | vlm | chco predicted [90%] | vlm predicted [90%] |")
    print("|---|---:|---:|---:|---|---|")
    for r in report["tasks"]:
        c, v = r["chco"], r["vlm"]
        print(f"| {r['task']} | {r['classes']} | {c['accuracy']:.3f} | {v['accuracy']:.3f} | "
              f"{c['predicted']} {c['interval']} | {v['predicted']} {v['interval']} |")
    for m, s in report["summary"].items():
        print(f"{m}: mean accuracy {s['mean_accuracy']:.3f}, predicted-vs-measured MAE "
              f"{s['mae']:.3f}, interval coverage {s['coverage']:.0%}")


if __name__ == "__main__":
    main()
