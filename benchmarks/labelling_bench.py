"""Labelling figures: images/s labelled per model family against the raw forward pass of the same
model measured in the same run; time to label one new expert on an existing hub; label bytes per
model; and the hub's total labelling time as recorded in its labels.

Usage: .venv/bin/python benchmarks/labelling_bench.py [--hub DIR] [--images N] [--json]
(the hub must be labelled, e.g. by 'mll starter --quick').
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

REPEATS = 3


def family_throughput(hub, corpus, n: int) -> list[dict]:
    """Per family, one model: raw forward images/s vs labelling images/s on the same images."""
    from mll.hub import FeatureCache
    from mll.labels.store import LabelStore, Outputs

    ids = [r.image_id for r in corpus.records(role="sample")][:n]
    images = corpus.load(ids)
    seen, rows = set(), []
    for info in hub.list():
        if info.family in seen:
            continue
        seen.add(info.family)
        model = hub.load(info.id)
        raw_fn = model.predict_proba if info.kind == "expert" else model.encode_images
        raw_fn(images[:4])  # warm-up
        raw, labelled = 0.0, 0.0
        for _ in range(REPEATS):  # interleaved, best of each: the machine's load varies a lot
            t0 = time.perf_counter()
            raw_fn(images)
            raw = max(raw, n / (time.perf_counter() - t0))
            with tempfile.TemporaryDirectory() as tmp:
                features = FeatureCache(Path(tmp) / "features", show_progress=False)
                store = LabelStore(Path(tmp))
                t0 = time.perf_counter()
                values = features.outputs(model, keys=ids, load=corpus.load)
                store.write_shard(info.content_hash, Outputs.from_dense(ids, values, info.kind))
                labelled = max(labelled, n / (time.perf_counter() - t0))
        rows.append({"family": info.family, "model": info.name, "raw_images_per_s": round(raw, 1),
                     "labelled_images_per_s": round(labelled, 1),
                     "ratio": round(labelled / raw, 3)})
    return rows


def new_expert_seconds(hub_dir: Path, hub, corpus) -> dict:
    """Train a small head on cached features, add it, label only it, then remove it again."""
    from mll.hub.train import train_head
    from mll.labels import label_hub

    recs = [r for r in corpus.records(role="train") if r.style.startswith("emoji")]
    wnids = sorted({r.wnid for r in recs})[:12]
    recs = [r for r in recs if r.wnid in wnids]
    feats = hub.features.get("efficientnet-lite0@224", keys=[r.image_id for r in recs],
                             load=corpus.load)
    head = train_head(feats, [wnids.index(r.wnid) for r in recs], wnids, epochs=5,
                      backbone="efficientnet-lite0@224", name="bench-new-expert", seed=123)
    info = hub.add(head, classes=[f"{w}\t{w}" for w in wnids], name="bench-new-expert")
    try:
        t0 = time.perf_counter()
        report = label_hub(hub_dir, models=[info.id], show_progress=False)
        seconds = time.perf_counter() - t0
    finally:
        hub.remove(info.id)
        shutil.rmtree(hub_dir / "labels" / info.content_hash[:16], ignore_errors=True)
    return {"seconds": round(seconds, 2), "images": report.images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hub", default=None)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--json", action="store_true", help="compact machine-readable output")
    args = parser.parse_args()
    import torch

    from mll.config import resolve_hub
    from mll.corpus import Corpus
    from mll.hub import Hub
    from mll.labels import LabelStore
    from mll.labels.store import storage_bytes

    torch.set_num_threads(2)
    hub_dir = resolve_hub(args.hub)
    corpus = Corpus.open(hub_dir)
    with Hub.open(hub_dir) as hub:
        out = {"families": family_throughput(hub, corpus, args.images),
               "new_expert": new_expert_seconds(hub_dir, hub, corpus)}
    sums = [x for x in LabelStore(hub_dir).summaries() if x["corpus_version"] == corpus.version]
    out["hub"] = {"models": len(sums),
                  "labelling_seconds": round(sum(s.get("labelling_seconds", 0) for s in sums), 1),
                  "bytes_per_model": {p.parent.name: storage_bytes(p) for p in
                                      sorted(hub_dir.glob(f"labels/*/*-{corpus.version[:12]}"))
                                      if (p / "summary.json").is_file()}}
    print(json.dumps(out, indent=2 if args.json else 1))


if __name__ == "__main__":
    main()
