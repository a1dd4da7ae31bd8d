"""Selection figures: seconds to select for 10-, 100- and 1000-class tasks (cold: class names seen
for the first time, their texts embedded; warm: the same task again), that
selection time does not depend on the number of target images, and predictor images/s.

Usage: .venv/bin/python benchmarks/selection_bench.py [--hub DIR] [--method chco] [--json]
(the hub must be labelled, e.g. by 'mll starter --quick').
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def class_names(table, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct concept names: sample nodes first, then their parents."""
    graph = table.graph
    nodes = sorted(set(table.image_nodes.tolist()))
    names: dict[str, str] = {}
    for w in nodes + sorted({p for v in nodes for p in graph.parents(v)}):
        names.setdefault(graph.name(w).lower(), w)
    keys = sorted(names)
    rng = np.random.default_rng(seed)
    return [keys[i] for i in rng.permutation(len(keys))[:n]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hub", default=None)
    parser.add_argument("--method", default="chco")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from mll.config import resolve_hub
    from mll.reuse import TaskPredictor
    from mll.selection import LabelTable, Task, make_selector

    start = time.perf_counter()
    table = LabelTable(resolve_hub(args.hub))
    load_s = time.perf_counter() - start
    selector = make_selector(args.method).fit(table)
    selector.select(Task.create(["cat", "dog"]))  # loads the models: not selection time
    out: dict = {"hub_models": len(table.models), "label_table_load_seconds": round(load_s, 2)}
    for n in (10, 100, 1000):
        task = Task.create(class_names(table, n))
        cold = selector.select(task)
        warm = [selector.select(task).seconds for _ in range(3 if n < 1000 else 1)]
        out[f"select_{n}_classes"] = {"cold_seconds": round(cold.seconds, 4),
                                      "warm_seconds": round(float(np.median(warm)), 4),
                                      "models": len(cold.models)}
    task = Task.create(["T-shirt/top", "Sandal", "Sneaker", "bear", "zebra", "apple", "banana",
                        "bicycle", "guitar", "hammer"])
    sel = selector.select(task)
    predictor = TaskPredictor.from_selection(sel, table.hub)
    ids = [r.image_id for r in table.corpus.records(role="eval")]
    images = table.corpus.load(ids[:: max(1, len(ids) // 256)][:256])
    predictor.predict(images[:4])
    rows = []
    for n in (16, 64, 256):
        t0 = time.perf_counter()
        s = selector.select(task).seconds
        predictor.predict(images[:n])
        rows.append({"images": n, "select_seconds": round(s, 4),
                     "predict_seconds": round(time.perf_counter() - t0 - s, 3)})
    out["select_vs_images"] = rows
    out["predictor_images_per_second"] = round(256 / max(rows[-1]["predict_seconds"], 1e-9), 2)
    table.close()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:32} {v}")


if __name__ == "__main__":
    main()
