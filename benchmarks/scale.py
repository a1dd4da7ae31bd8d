"""The hub at 1k, 10k and 100k models: open time, concept search latency, disk per model.

Builds synthetic hubs (``mll.bench.synthetic``) drawn from a labelled hub, on SQLite and on a
throwaway local PostgreSQL server (started like the tests' ``pg_url`` fixture; skipped with a
note when PostgreSQL's binaries or psycopg are missing), then measures on each:

- **open**: ``Hub.open`` in a fresh process' first call (engine, schema check), median of 5;
- **concept search**: ``Hub.serving(node, limit=20)`` on 300 nodes drawn from the index (half of
  them among the 30 nodes with the most models, where the index range is longest), warm, p50 and
  p95; and the same for ``kind="vlm"``;
- **disk**: database bytes per model (SQLite file with its WAL; PostgreSQL ``pg_database_size``
  less that of the empty database).

With ``--selection`` it measures selection instead, on the source hub plus N synthetic experts
with label files (the source's corpus, graph and real models are shared by hard links; its
database is copied with SQLite's backup API): in a fresh process per size, the label table's
open time (models listed, sample images and prototype features loaded), chco's cold and warm
(median of 3) selection time for a 10-class and a 100-class task whose classes are sample nodes
drawn with a seed, the labels it read, and the process's peak resident memory.

Usage: .venv/bin/python benchmarks/scale.py --source HUB [--sizes 1000 10000 100000]
       [--work DIR] [--plot docs/bench/scale.png] [--json]
       .venv/bin/python benchmarks/scale.py --source HUB --selection [--sizes ...] [--work DIR]
       [--plot docs/bench/scale_selection.png] [--json]
       .venv/bin/python benchmarks/scale.py --replot docs/bench/scale.json --plot docs/bench/scale.png
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

QUERIES = 300
LIMIT = 20


@contextmanager
def postgres():
    """A throwaway PostgreSQL server's base URL (no database name), or None when unavailable."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        yield None
        return
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        yield None
        return
    bindir = Path(bins[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="mll-scale-pg-"))
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"

    def run(*cmd):
        return subprocess.run([*as_user, *cmd], check=True, capture_output=True)

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "mll")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    try:
        yield f"postgresql+psycopg://mll@127.0.0.1:{port}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def create_database(base: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return f"{base}/{name}"


def query_nodes(hub, n: int, seed: int = 0) -> list[str]:
    """Nodes to search: half among the 30 with the most models, half uniform over the index."""
    from sqlalchemy import func, select

    from mll.hub.records import LabelServing

    with hub.store.read() as s:
        counts = s.execute(select(LabelServing.node, func.count()).group_by(LabelServing.node)
                           ).all()
    counts.sort(key=lambda r: -r[1])
    rng = np.random.default_rng(seed)
    busy = [r[0] for r in counts[:30]]
    every = [r[0] for r in counts]
    return ([busy[i] for i in rng.integers(len(busy), size=n // 2)]
            + [every[i] for i in rng.integers(len(every), size=n - n // 2)])


def open_seconds(dest: Path, db: str | None) -> float:
    """Median of 5 fresh processes' ``Hub.open`` (imports excluded)."""
    code = ("import time,sys;from mll.hub import Hub;t=time.perf_counter();"
            "Hub.open(sys.argv[1], sys.argv[2] or None, create=False);"
            "print(time.perf_counter()-t)")
    times = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code, str(dest),
                              db or ""], check=True, capture_output=True, text=True)
        times.append(float(out.stdout.strip()))
    return float(np.median(times))


def latencies(hub, nodes: list[str], kind: str | None) -> dict[str, float]:
    for node in nodes[:20]:  # warm the connection pool and the page cache
        hub.serving(node, kind=kind, limit=LIMIT)
    ms = []
    for node in nodes:
        t = time.perf_counter()
        hub.serving(node, kind=kind, limit=LIMIT)
        ms.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "max_ms": round(float(np.max(ms)), 2)}


def disk_bytes(hub, dest: Path, empty: int) -> int:
    if hub.store.engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with hub.store.engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())")
                                    ).scalar()) - empty
    return sum(p.stat().st_size for p in dest.glob("mll.db*") if p.is_file())


def measure(source: str, size: int, dest: Path, db: str | None, seed: int) -> dict:
    from mll.bench.synthetic import build_synthetic_hub
    from mll.hub import Hub

    empty = 0
    if db:
        with Hub.open(dest, db=db) as hub:  # the schema alone, to subtract
            empty = disk_bytes(hub, dest, 0)
    report = build_synthetic_hub(source, dest, size, db=db, seed=seed)
    with Hub.open(dest, db=db, create=False) as hub:
        if hub.store.engine.dialect.name == "postgresql":
            from sqlalchemy import text

            with hub.store.engine.begin() as conn:
                conn.execute(text("ANALYZE"))  # fresh planner statistics, as autovacuum would
        nodes = query_nodes(hub, QUERIES, seed)
        result = {"models": size, "backend": hub.store.engine.dialect.name,
                  "build_seconds": report.seconds, "index_rows": report.index_rows,
                  "open_seconds": round(open_seconds(dest, db), 4),
                  "search": latencies(hub, nodes, None),
                  "search_vlm": latencies(hub, nodes, "vlm")}
        result["disk_bytes_per_model"] = round(disk_bytes(hub, dest, empty) / size)
    return result


def copy_hub(source: Path, dest: Path) -> None:
    """A hub at ``dest`` sharing ``source``'s immutable files (hard links), with its own
    database (SQLite backup API) and caches (copied: they are written in place)."""
    import sqlite3

    dest.mkdir(parents=True)
    for name in ("artifacts", "corpus", "graph", "labels"):
        if (source / name).exists():
            subprocess.run(["cp", "-al", str(source / name), str(dest / name)], check=True)
    if (source / "cache").exists():
        shutil.copytree(source / "cache", dest / "cache")
    src = sqlite3.connect(f"file:{source / 'mll.db'}?mode=ro", uri=True)
    dst = sqlite3.connect(dest / "mll.db")
    src.backup(dst)
    dst.close()
    src.close()


SELECTION_CODE = """
import json, resource, sys, time
import numpy as np
from mll.selection import LabelTable, Task, make_selector
t = time.perf_counter()
table = LabelTable(sys.argv[1])
_ = table.models, table.samples, table.proto_features
opened = time.perf_counter() - t
graph, rng = table.graph, np.random.default_rng(int(sys.argv[2]))
nodes = sorted(set(table.image_nodes.tolist()))
out = {"open_seconds": round(opened, 3), "labelled_models": len(table.models)}
for k in (10, 100):
    picked, names = {}, set()
    for v in rng.permutation(nodes).tolist():
        name = graph.name(v).replace(",", " ")
        if name.lower() not in names:
            names.add(name.lower())
            picked[name] = v
        if len(picked) == k:
            break
    task = Task.create(list(picked), pinned=picked, name=f"{k} classes")
    selector = make_selector("chco").fit(table)
    before = table.models.reads
    t = time.perf_counter()
    sel = selector.select(task)
    cold = time.perf_counter() - t
    warm = []
    for _ in range(3):
        t = time.perf_counter()
        selector.select(task)
        warm.append(time.perf_counter() - t)
    out[f"classes_{k}"] = {"cold_seconds": round(cold, 3),
                           "warm_seconds": round(float(np.median(warm)), 3),
                           "labels_read": table.models.reads - before,
                           "candidate_experts": sel.diagnostics.get("candidate_experts"),
                           "predicted_accuracy": sel.predicted_accuracy}
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(out))
"""


def measure_selection(source: str, size: int, work: Path, seed: int) -> dict:
    """Selection figures on ``source`` plus ``size`` synthetic experts (a fresh process). One
    hub grows from size to size: the same seed draws the same first models, so the hub at 10k
    holds the one at 1k."""
    from mll.bench.synthetic import build_synthetic_hub

    dest = work / "selection"
    if not (dest / "mll.db").is_file():
        copy_hub(Path(source), dest)
    report = build_synthetic_hub(source, dest, size, seed=seed, vlm_share=0.0)
    run = subprocess.run([sys.executable, "-c", SELECTION_CODE, str(dest), str(seed)],
                         check=True, capture_output=True, text=True,
                         env=os.environ | {"MLL_NO_PROGRESS": "1"})
    labels = sum(p.stat().st_size for p in (dest / "labels").rglob("*") if p.is_file())
    return {"synthetic": size, "build_seconds": report.seconds,
            "label_bytes": labels} | json.loads(run.stdout.strip().splitlines()[-1])


def plot_selection(results: list[dict], path: Path) -> None:
    """Warm and cold selection time, table open and peak memory against labelled models; runs
    with different ``note`` (e.g. machine load) are drawn as separate series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(r.get("note", ""), []).append(r)
    fig, (ax, mem) = plt.subplots(1, 2, figsize=(11, 6.5))
    for g, (note, rows) in enumerate(groups.items()):
        rows = sorted(rows, key=lambda r: r["labelled_models"])
        x = [r["labelled_models"] for r in rows]
        tag = f" [{note}]" if len(groups) > 1 else ""
        style = "-" if g == len(groups) - 1 else ":"
        for k, mark in ((10, "o"), (100, "s")):
            ax.plot(x, [r[f"classes_{k}"]["warm_seconds"] for r in rows], style + mark,
                    label=f"{k}-class warm{tag}")
        ax.plot(x, [r["open_seconds"] for r in rows], style + "^", label=f"table open{tag}")
        mem.plot(x, [r["peak_rss_mb"] for r in rows], style + "o", label=note or "peak RSS")
    ax.axhline(2, color="gray", lw=0.8, ls=":")
    ax.axhline(0.2, color="gray", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("labelled models")
    ax.set_ylabel("seconds")
    ax.set_title("chco selection against hub size (goals: 0.2 s, 2 s)")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(0, -0.14))  # below: off the lines
    mem.set_xscale("log")
    mem.set_xlabel("labelled models")
    mem.set_ylabel("peak RSS (MB)")
    mem.set_title("peak memory")
    mem.legend(fontsize=6, loc="upper left", bbox_to_anchor=(0, -0.14))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for backend, style in (("sqlite", "-"), ("postgresql", "--")):
        rows = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["models"])
        if not rows:
            continue
        x = [r["models"] for r in rows]
        ax.plot(x, [r["search"]["p50_ms"] for r in rows], style + "o", label=f"search p50 ({backend})")
        ax.plot(x, [r["search"]["p95_ms"] for r in rows], style + "s", label=f"search p95 ({backend})")
        ax.plot(x, [r["open_seconds"] * 1000 for r in rows], style + "^", label=f"hub open ({backend})")
    ax.axhline(50, color="gray", lw=0.8, ls=":", label="search goal (50 ms)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("models in the hub (synthetic)")
    ax.set_ylabel("milliseconds")
    ax.set_title("Concept search and hub open against hub size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help="a labelled hub to draw models from")
    parser.add_argument("--replot", type=Path, default=None, metavar="JSON",
                        help="only draw --plot from the results a --json run printed")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--work", type=Path, default=None, help="where the hubs are built "
                        "(default: a temporary directory, removed at the end)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--selection", action="store_true",
                        help="measure selection on the source plus synthetic experts")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.replot:
        if not args.plot:
            parser.error("--replot needs --plot")
        rows = json.loads(args.replot.read_text())
        (plot_selection if rows and "synthetic" in rows[0] else plot)(rows, args.plot)
        return
    if not args.source:
        parser.error("--source is required (a labelled hub, e.g. one 'mll starter --quick' built)")
    work = args.work or Path(tempfile.mkdtemp(prefix="mll-scale-"))
    results = []
    if args.selection:
        try:
            for size in args.sizes:
                results.append(measure_selection(args.source, size, work, args.seed))
                if not args.json:
                    print(json.dumps(results[-1]), flush=True)
        finally:
            if args.work is None:
                shutil.rmtree(work, ignore_errors=True)
        if args.plot:
            plot_selection(results, args.plot)
        if args.json:
            print(json.dumps(results, indent=1))
        return
    try:
        with postgres() if not args.no_postgres else _none() as pg:
            for size in args.sizes:
                results.append(measure(args.source, size, work / f"sqlite-{size}", None,
                                       args.seed))
                _print(results[-1], args.json)
                if pg is None:
                    continue
                db = create_database(pg, f"scale{size}")
                results.append(measure(args.source, size, work / f"pg-{size}", db, args.seed))
                _print(results[-1], args.json)
            if pg is None and not args.no_postgres:
                print("PostgreSQL: not measured (no server binaries or no psycopg)")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.plot:
        plot(results, args.plot)
    if args.json:
        print(json.dumps(results, indent=1))


@contextmanager
def _none():
    yield None


def _print(r: dict, as_json: bool) -> None:
    if as_json:
        return
    print(f"{r['models']:>7} models  {r['backend']:10}  open {r['open_seconds'] * 1000:7.1f} ms"
          f"  search p50 {r['search']['p50_ms']:6.2f} ms  p95 {r['search']['p95_ms']:6.2f} ms"
          f"  (vlm p50 {r['search_vlm']['p50_ms']:6.2f}, p95 {r['search_vlm']['p95_ms']:6.2f})"
          f"  {r['disk_bytes_per_model']:>6} B/model  index {r['index_rows']} rows"
          f"  built in {r['build_seconds']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
