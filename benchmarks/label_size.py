"""Label bytes per model before and after the compact layout, and what the quantisation changes.

For every model's current label the two layouts are written side by side into a scratch
directory from the same outputs: format 1 (64-byte ids per row, float16 values, stats with node
names and a dense confusion matrix, as labels were published before) and the current layout
(``mll.labels.store.FORMAT``, ``current_bytes``). Either may be on disk: format 1 is rebuilt from a
compact label's dequantised values (the bytes do not depend on the values), the current layout
from a format-1 label; a format-2 label on disk is measured as it is (``mll label`` converts it).
Models are grouped as small experts (up to 64 heads), wide experts (ImageNet classifiers) and VLMs;
per group: median bytes in each layout and their ratio, and the largest difference between the two
layouts' probabilities (experts) or cosines to the label's node captions (VLMs). The shared image
list of the corpus version is counted once for the whole hub.

Usage: .venv/bin/python benchmarks/label_size.py --hub HUB [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np


def format1_bytes(label, n_classes: int, kind: str, scratch: Path) -> int:
    """Bytes of ``label`` written as format 1 (what ``publish`` wrote before format 2)."""
    from mll.labels.store import CompactOutputs

    out = label.outputs.to_outputs() if isinstance(label.outputs, CompactOutputs) else \
        label.outputs
    stats = dict(label.stats)
    if "pred_node" in stats:  # back to the dense confusion matrix format 1 held
        dense = np.zeros(tuple(stats.pop("pred_shape")), dtype=np.int32)
        dense[stats.pop("pred_node"), stats.pop("pred_head")] = stats.pop("pred_n")
        stats["predictions"] = dense
    stats = {k: (v.astype(np.int32) if v.dtype.kind in "iu" and k != "predictions" else v)
             for k, v in stats.items()}
    files = {**out.arrays()}
    if kind == "vlm":
        files |= {"text_nodes": np.asarray(label.text_nodes),
                  "text_emb": np.asarray(label.text_emb, np.float16)}
    scratch.mkdir(parents=True)
    for name, arr in files.items():
        np.save(scratch / f"{name}.npy", arr)
    np.savez(scratch / "stats.npz", **stats)
    (scratch / "summary.json").write_text(json.dumps(label.summary, indent=1, sort_keys=True))
    return sum(p.stat().st_size for p in scratch.iterdir())


def measure(hub_dir: Path) -> dict:
    from mll.corpus import Corpus
    from mll.graph import open_graph
    from mll.hub import Hub
    from mll.labels.store import FORMAT, CompactOutputs, LabelStore, load_label, storage_bytes

    graph, corpus = open_graph(hub_dir), Corpus.open(hub_dir)
    rows = []
    with Hub.open(hub_dir, create=False) as hub, tempfile.TemporaryDirectory() as tmp:
        infos = hub.list()
        store = LabelStore(hub_dir)
        scratch = LabelStore(Path(tmp))
        for info in infos:
            ldir = store.label_dir(info.content_hash, graph.version, corpus.version)
            if not (ldir / "summary.json").is_file():
                continue
            label = load_label(ldir, info.id, mmap=False)
            n = len(info.classes)
            before = format1_bytes(label, n, info.kind, Path(tmp) / "v1" / info.id)
            if isinstance(label.outputs, CompactOutputs):
                after, compact = storage_bytes(ldir), label
                v1_values = label.outputs.to_outputs().matrix(info.kind, n)
            else:
                dest = scratch.label_dir(info.content_hash, graph.version, corpus.version)
                extra = {} if info.kind == "expert" else {"text_nodes": label.text_nodes,
                                                          "text_emb": label.text_emb}
                scratch.publish(dest, label.outputs, label.stats, extra, label.summary,
                                n_classes=n)
                after, compact = storage_bytes(dest), load_label(dest, info.id)
                v1_values = label.outputs.matrix(info.kind, n)
            v2_values = compact.outputs.matrix(info.kind, n)
            if info.kind == "vlm":
                text = np.asarray(compact.text_emb, np.float32)

                def cos(x, text=text):
                    return (x / np.linalg.norm(x, axis=1, keepdims=True)) @ text.T

                err = float(np.abs(cos(v1_values) - cos(v2_values)).max())
                group = "vlm"
            else:
                err = float(np.abs(v1_values - v2_values).max())
                group = "wide expert" if n > 64 else "small expert"
            rows.append({"model_id": info.id, "name": info.name, "group": group, "heads": n,
                         "format1_bytes": before, "current_bytes": after, "max_error": err})
    shared = sum(p.stat().st_size for p in (hub_dir / "labels" / "_images").glob("*/*")
                 if p.is_file()) if (hub_dir / "labels" / "_images").is_dir() else None
    groups = {}
    for g in ("small expert", "wide expert", "vlm"):
        mine = [r for r in rows if r["group"] == g]
        if not mine:
            continue
        b = statistics.median(r["format1_bytes"] for r in mine)
        a = statistics.median(r["current_bytes"] for r in mine)
        groups[g] = {"models": len(mine), "format1_median_bytes": int(b),
                     "current_median_bytes": int(a), "ratio": round(b / a, 2),
                     "min_ratio": round(min(r["format1_bytes"] / r["current_bytes"] for r in mine), 2),
                     "max_error": round(max(r["max_error"] for r in mine), 5)}
    total1 = sum(r["format1_bytes"] for r in rows)
    total2 = sum(r["current_bytes"] for r in rows)
    return {"hub": str(hub_dir), "models": len(rows), "images": len(corpus.records(role="sample")),
            "format": FORMAT, "groups": groups, "total_format1_bytes": total1,
            "total_current_bytes": total2,
            "shared_list_bytes": shared, "per_model": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub", type=Path, required=True)
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()
    result = measure(args.hub)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{result['models']} models, {result['images']} sample images")
    print(f"{'group':<14}{'models':>7}{'format 1':>12}{'format ' + str(result['format']):>12}"
          f"{'ratio':>8}{'min':>7}{'max err':>10}")
    for g, r in result["groups"].items():
        print(f"{g:<14}{r['models']:>7}{r['format1_median_bytes']:>12,}"
              f"{r['current_median_bytes']:>12,}{r['ratio']:>8}{r['min_ratio']:>7}"
              f"{r['max_error']:>10}")
    print(f"total: {result['total_format1_bytes']:,} -> {result['total_current_bytes']:,} bytes "
          f"(+ {result['shared_list_bytes'] or 0:,} for the shared image list)")


if __name__ == "__main__":
    main()
