"""Benchmark of the corpus stage: build time, cached rebuild, loading speed, coverage, storage.

    .venv/bin/python benchmarks/corpus_build.py [--quick] [--workers 2] [--hub DIR] [--out FILE]

Builds the whole corpus from the installed sources into a fresh hub (the WordNet graph is built
there first, ~2 s, and not timed), rebuilds it (nothing to do), then loads every role and reports
images per second, nodes covered and per-role counts. It also times the two storage codecs on
real corpus images, the measurement behind storing 28x28 images raw and larger ones as PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from mll.config import HubPaths
from mll.corpus import ROLES, Corpus, CorpusConfig, build
from mll.corpus.records import CODEC_PNG, CODEC_RAW
from mll.corpus.store import decode, shape3
from mll.graph.graph import SemanticGraph


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the rendering workers)."""
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def load_rates(corpus: Corpus) -> dict[str, dict[str, float]]:
    """Images per second loading each role, all of it, in manifest order."""
    out = {}
    for role in ROLES:
        ids = [r.image_id for r in corpus.records(role=role)]
        _, seconds = timed(corpus.load, ids)
        out[role] = {"images": len(ids), "seconds": round(seconds, 2),
                     "images_per_s": round(len(ids) / seconds)}
    return out


def codec_rates(corpus: Corpus, n: int = 300) -> dict[str, dict[str, float]]:
    """Bytes per image and decode rate of raw vs PNG for 28x28 gray and 224x224 RGB images."""
    import io

    from PIL import Image

    out = {}
    for label, style in (("gray28", "gray28/fashion-mnist"), ("emoji224", "emoji/openmoji")):
        recs = corpus.records(style=style)[:n]
        if not recs:
            continue
        images = corpus.load([r.image_id for r in recs])
        raw = [img.tobytes() for img in images]
        pngs = []
        for img in images:
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG", compress_level=6)
            pngs.append(buf.getvalue())
        for codec, blobs, name in ((CODEC_RAW, raw, "raw"), (CODEC_PNG, pngs, "png")):
            t0 = time.perf_counter()
            for img, blob in zip(images, blobs, strict=True):
                decode(codec, blob, shape3(img))
            rate = len(blobs) / (time.perf_counter() - t0)
            out[f"{label}/{name}"] = {"bytes_per_image": round(statistics.mean(map(len, blobs))),
                                      "decode_per_s": round(rate)}
    return out


def coverage(corpus: Corpus) -> dict[str, object]:
    out: dict[str, object] = {}
    for role in ROLES:
        counts = np.array(list(corpus.node_counts(role).values()))
        out[role] = {"nodes": int(len(counts)), "nodes_with_at_least_5": int((counts >= 5).sum()),
                     "images_per_node": {"min": int(counts.min()),
                                         "median": float(np.median(counts)),
                                         "max": int(counts.max())}}
    out["nodes_any_role"] = len({r.wnid for r in corpus.records()})
    return out


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(hub: Path, cfg: CorpusConfig) -> dict[str, object]:
    SemanticGraph.from_wordnet().save(HubPaths(hub).graph)
    cpu0, load0 = cpu_seconds(), os.getloadavg()[0]
    first, build_s = timed(build, hub, cfg)
    build_cpu, load1 = cpu_seconds() - cpu0, os.getloadavg()[0]
    second, rebuild_s = timed(build, hub, cfg)
    corpus = Corpus.open(hub)
    return {
        "config": cfg.to_json(), "workers": cfg.workers,
        "build_seconds": round(build_s, 1), "build_cpu_seconds": round(build_cpu, 1),
        "load_average_before_after": [round(load0, 1), round(load1, 1)], "units": first.units,
        "rebuild_seconds": round(rebuild_s, 2), "rebuild_units_rendered": second.units_rendered,
        "rebuild_changed": second.changed, "version": corpus.version,
        "images": len(corpus), "roles": first.roles,
        "duplicates_dropped": first.duplicates_dropped,
        "disk_megabytes": round(disk_bytes(HubPaths(hub).corpus) / 2**20, 1),
        "load": load_rates(corpus), "coverage": coverage(corpus), "codecs": codec_rates(corpus),
        "sources": [{"source": s.source, "role": s.role, "images": s.images, "nodes": s.nodes}
                    for s in corpus.summary()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick corpus (tests, quick hub)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hub", type=Path, default=None,
                        help="build here (default: a fresh temporary directory)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    cfg = (CorpusConfig.for_quick if args.quick else CorpusConfig)(workers=args.workers)
    with tempfile.TemporaryDirectory(prefix="mll-corpus-bench-") as tmp:
        result = run(args.hub or Path(tmp), cfg)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
