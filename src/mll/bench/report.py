"""Benchmark output: ``results.json``, ``results.md`` (tables) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

from .._io import atomic_write_bytes, atomic_write_json


def write_results(report: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", report)
    atomic_write_bytes(out / "results.md", markdown(report).encode())
    return [out / "results.json", out / "results.md", *plots(report, out)]


def markdown(r: dict) -> str:
    methods = r["methods"]
    lines = ["# mll benchmark", "",
             f"Hub `{r['hub']}`, {'quick' if r['config']['quick'] else 'full'} run, "
             f"{r['seconds']} s. Top-1 accuracy on the eval role (selection saw class names and "
             "domain words only; `oracle` picks the best single model with target labels).", "",
             "| task | classes | images | " + " | ".join(methods) + " |",
             "|---|---:|---:|" + "---:|" * len(methods)]
    for t in r["tasks"]:
        acc = r["accuracy"][t["name"]]
        best = max(acc[m] for m in methods if m != "oracle")
        cells = [f"**{acc[m]:.3f}**" if acc[m] == best and m != "oracle" else f"{acc[m]:.3f}"
                 for m in methods]
        lines.append(f"| {t['name']} | {t['classes']} | {t['images']} | " + " | ".join(cells) + " |")
    best_mean = max(r["mean_accuracy"][m] for m in methods if m != "oracle")
    lines.append("| **mean** | | | " + " | ".join(
        f"**{r['mean_accuracy'][m]:.3f}**" if r["mean_accuracy"][m] == best_mean and m != "oracle"
        else f"{r['mean_accuracy'][m]:.3f}" for m in methods) + " |")
    lines += ["", "| method | mean accuracy [95% bootstrap] | chco minus method [95% paired "
              "bootstrap] | predicted-vs-measured MAE (uncalibrated) | 90% interval coverage, "
              "tasks / classes "
              "| selection ms |", "|---|---:|---:|---:|---:|---:|"]
    for m in methods:
        vs = r["chco_vs"].get(m)
        cmp = "-" if vs is None else f"{vs['difference']:+.3f} [{vs['low']:+.3f}, {vs['high']:+.3f}]"
        mae = r["predicted_mae"][m]
        lo, hi = r["mean_accuracy_interval"][m]
        cov = f"{_pct(r.get('interval_coverage', {}).get(m))} / " \
              f"{_pct(r.get('class_interval_coverage', {}).get(m))}"
        lines.append(f"| {m} | {r['mean_accuracy'][m]:.3f} [{lo:.3f}, {hi:.3f}] | {cmp} | "
                     f"{'-' if mae is None else f'{mae:.3f}'}{_paren(r.get('proxy_mae', {}).get(m))}"
                     f" | {cov} | "
                     f"{1000 * r['selection_seconds'][m]:.1f} |")
    if r.get("calibration"):
        lines += ["", f"Predicted accuracy calibrated on {r['calibration']}."]
    lines += ["", "Per style group of tasks: mean accuracy (predicted-vs-measured MAE; share of "
              "tasks inside the 90% predicted interval).", "",
              "| group | tasks | " + " | ".join(methods) + " |",
              "|---|---|" + "---:|" * len(methods)]
    for g, doc in r.get("style_groups", {}).items():
        cover = doc.get("interval_coverage", {})
        cells = [f"{doc['accuracy'][m]:.3f}" + ("" if doc["predicted_mae"][m] is None
                                               else f" ({doc['predicted_mae'][m]:.3f}; "
                                               f"{_pct(cover.get(m))})")
                 for m in methods]
        lines.append(f"| {g} | {', '.join(doc['tasks'])} | " + " | ".join(cells) + " |")
    if r.get("looked_style"):
        lines += ["", "Target style seen in each task's unlabelled images (`chco+look`; nearest "
                  "sample images' style groups): " + ", ".join(
                      f"{name} {doc['style']}" for name, doc in r["looked_style"].items()) + "."]
    s = r["scalability"]
    lines += ["", f"Hub growth (chco, {s['orders']} random orders): " + ", ".join(
        f"{n} models {m:.3f}±{sd:.3f}" for n, m, sd in zip(s["models"], s["mean"], s["std"], strict=True)),
        "", "p2 alpha ablation (k=1): " + ", ".join(
            f"{row['alpha']}: {row['mean_accuracy']:.3f}" for row in r["ablation_alpha"]),
        "", *[f"{name} k ablation: " + ", ".join(f"k={row['k']}: {row['mean_accuracy']:.3f}"
                                                 for row in rows)
              for name, rows in r["ablation_k"].items()],
        "", "Trust signals for the experts chco chose (AUROC, own classes vs the rest, eval images): "
        "gate = the general part's mass on the expert's classes (the rule chco uses), max softmax "
        "of the expert, and the expert's labelling-time detector (on sample images).", "",
        "| task | expert | gate | max softmax | detector (labels) |", "|---|---|---:|---:|---:|",
        *[f"| {x['task']} | {x['expert']} | {x['gate_auroc']} | {x['max_softmax_auroc']} | "
          f"{x['detector_auroc_on_labels'] if x['detector_auroc_on_labels'] is None else round(x['detector_auroc_on_labels'], 3)} |"
          for x in r["trust"]],
        "", f"Predictor inference (chco, 2 cores, images/s): {json.dumps(r['inference_images_per_second'])}",
        f"Labelling cost of the hub: {r['labelling']['models']} models on "
        f"{r['labelling']['sample_images']} sample images, {r['labelling']['seconds']} s, "
        f"{r['labelling']['bytes'] / 1e6:.1f} MB of labels.", ""]
    return "\n".join(lines)


def _paren(value: float | None) -> str:
    return "" if value is None else f" ({value:.3f})"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def plots(r: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    s = r["scalability"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for curve in s["curves"]:
        ax.plot(s["models"], curve, color="0.8", linewidth=0.8)
    ax.errorbar(s["models"], s["mean"], yerr=s["std"], color="C0", marker="o", label="chco mean±sd")
    ax.set_xlabel("models in the hub")
    ax.set_ylabel("mean top-1 accuracy")
    ax.set_title("Accuracy against hub size")
    ax.legend()
    fig.tight_layout()
    paths.append(out / "scalability.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    rows = r["ablation_alpha"]
    axes[0].plot([x["alpha"] for x in rows], [x["mean_accuracy"] for x in rows], marker="o")
    axes[0].set_xlabel("alpha (p2, k=1)")
    axes[0].set_ylabel("mean accuracy")
    for name, rows in r["ablation_k"].items():
        axes[1].plot([x["k"] for x in rows], [x["mean_accuracy"] for x in rows], marker="o", label=name)
    axes[1].set_xlabel("k (models per class)")
    axes[1].legend()
    fig.tight_layout()
    paths.append(out / "ablations.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths
