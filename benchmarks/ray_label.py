"""Labelling N real models on a Ray cluster of 1 and of 2 worker nodes on this machine.

    MLL_TEST_HUB=... .venv/bin/python benchmarks/ray_label.py [--models 8] [--nodes 1 2]
        [--batch 64] [--no-local] [--out docs/bench/ray_label.json] [--json]

The models are the first N small CNNs (``cnn-*``) of a labelled hub (default: the quick starter
hub of the tests): each run gets a private view of that hub (corpus and graph symlinked, labels
hard-linked, databases copied) with those models' labels removed, so it labels exactly them,
``(N models x sample images)`` outputs in shards of ``--batch`` images. Each cluster is a head
with 0 CPUs (it only schedules) plus K worker nodes of 1 CPU, each its own ``ray start``
(raylet, object store, workers); the driver is ``mll label --executor ray --ray-address``, a
separate process, timed from its start to its exit (``wall``) and by its own report
(``seconds``, which excludes interpreter start-up). The local executor in one process (torch on
every core) is the baseline, and every run's labels are checked equal to it.

This machine has 2 cores shared with other work: 2 worker nodes cannot run more than ~2x faster
than 1, and the driver, the head and the raylets compete with them for those cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _hubarg import add_hub_argument, hub_problem


def unlabelled_view(source: Path, dest: Path, n: int, pattern: str) -> list[str]:
    """A private view of ``source`` whose first ``n`` models named ``pattern`` have no labels."""
    from fnmatch import fnmatch

    from mll.hub import Hub
    from mll.hub.testing import hub_view
    from mll.labels import LabelStore

    hub_view(source, dest, writable=("labels",))
    with Hub.open(dest) as hub:
        infos = [i for i in hub.list() if fnmatch(i.name, pattern)][:n]
    if len(infos) < n:
        raise SystemExit(f"{source} has {len(infos)} models named {pattern!r}, {n} asked")
    for info in infos:
        shutil.rmtree(LabelStore(dest).model_dir(info.content_hash), ignore_errors=True)
    return [i.id for i in infos]


def run_label(hub: Path, ids: list[str], batch: int, executor: str, address: str | None = None,
              env: dict[str, str] | None = None) -> dict:
    """``mll label`` as a separate driver process: its --json report plus ``wall`` seconds."""
    cmd = [sys.executable, "-m", "mll", "label", "--hub", str(hub), "--executor", executor,
           "--batch", str(batch), "--json"]
    if address:
        cmd += ["--ray-address", address]
    for i in ids:
        cmd += ["--model", i]
    start = time.perf_counter()
    out = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"mll label failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout) | {"wall": round(wall, 2)}


def label_values(hub: Path, ids: list[str]) -> dict[str, list]:
    import numpy as np

    from mll.hub import Hub
    from mll.labels import LabelStore, read_outputs

    out = {}
    with Hub.open(hub) as h:
        for i in ids:
            (label,) = LabelStore(hub).published_dirs(h.get(i).content_hash)
            outputs = read_outputs(label)
            out[i] = [outputs.id_list(), np.asarray(outputs.values)]
    return out


def same(a: dict, b: dict) -> bool:
    import numpy as np

    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0] and np.array_equal(a[k][1], b[k][1]) for k in a)


def summarise(name: str, report: dict, images: int, node_names: dict[str, str]) -> dict:
    nodes = {node_names.get(k.rsplit(":", 1)[-1], k): v for k, v in report["nodes"].items()}
    return {"run": name, "wall_s": report["wall"], "seconds": report["seconds"],
            "outputs": report["outputs_computed"],
            "images_per_s_wall": round(images / report["wall"], 1),
            "images_per_s": round(images / report["seconds"], 1), "tasks_per_node": nodes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_hub_argument(parser)
    parser.add_argument("--models", type=int, default=8, help="how many models to label")
    parser.add_argument("--pattern", default="cnn-*", help="which models (by name)")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2],
                        help="worker-node counts to measure")
    parser.add_argument("--batch", type=int, default=64, help="sample images per task")
    parser.add_argument("--no-local", action="store_true", help="skip the local baseline")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if args.models < 1 or args.batch < 1 or any(k < 1 for k in args.nodes):
        parser.error("--models, --batch and every --nodes value must be positive")
    if problem := hub_problem(args.hub):
        print(problem, file=sys.stderr)
        return 2

    from mll._io import progress
    from mll.corpus import Corpus
    from mll.labels.localray import LocalRayCluster

    source = args.hub.resolve()
    samples = len(Corpus.open(source).records(role="sample"))
    images = samples * args.models
    result = {"models": args.models, "pattern": args.pattern, "sample_images": samples,
              "images": images, "batch": args.batch, "cpus": os.cpu_count(),
              "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "runs": []}
    runs = ([] if args.no_local else ["local"]) + [f"ray-{k}" for k in args.nodes]
    reference = None
    with tempfile.TemporaryDirectory(prefix="mll-ray-label-") as tmp:
        for name in progress(runs, "labelling runs", total=len(runs)):
            hub = Path(tmp) / name
            ids = unlabelled_view(source, hub, args.models, args.pattern)
            if name == "local":
                row = summarise(name, run_label(hub, ids, args.batch, "local"), images, {})
            else:
                k = int(name.split("-")[1])
                with LocalRayCluster([0] + [1] * k) as cluster:
                    names = {str(n.manager_port): n.name for n in cluster.nodes}
                    report = run_label(hub, ids, args.batch, "ray", cluster.address, cluster.env)
                row = summarise(name, report, images, names) | {"worker_nodes": k}
            values = label_values(hub, ids)
            reference = reference or values
            row["labels_equal_first_run"] = same(reference, values)
            result["runs"].append(row)
            shutil.rmtree(hub, ignore_errors=True)
            print(f"{name}: {row['wall_s']} s wall, {row['images_per_s_wall']} images/s, "
                  f"tasks {row['tasks_per_node']}", file=sys.stderr)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    by = {r["run"]: r for r in result["runs"]}
    if "ray-1" in by and "ray-2" in by:
        result["speedup_2_over_1_nodes"] = round(by["ray-1"]["seconds"] / by["ray-2"]["seconds"], 2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{args.models} models x {samples} sample images = {images} outputs, "
              f"batch {args.batch}, {os.cpu_count()} CPUs")
        print(f"{'run':8} {'wall s':>7} {'images/s':>9} {'report s':>9}  tasks per node")
        for r in result["runs"]:
            tasks = ", ".join(f"{k}: {v['tasks']}" for k, v in r["tasks_per_node"].items())
            print(f"{r['run']:8} {r['wall_s']:7.1f} {r['images_per_s_wall']:9.1f} "
                  f"{r['seconds']:9.1f}  {tasks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
