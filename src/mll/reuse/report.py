"""A self-contained HTML report of a solved task (images and plot embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes

EXAMPLES_PER_CLASS = 6


def _png(img: np.ndarray, size: int = 72) -> str:
    from PIL import Image

    im = Image.fromarray(img)
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _confusion_png(matrix: np.ndarray, classes: list[str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    fig, ax = plt.subplots(figsize=(max(4, 0.45 * k + 2), max(3.5, 0.45 * k + 1.5)))
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_report(result, path: Path, images: list[np.ndarray]) -> Path:
    sel = result.selection
    classes = result.predictor.classes
    truth = result.truth
    measured = None
    if truth:
        t, p = np.array(truth), np.array(result.predictions)
        measured = [float((p[t == k] == k).mean()) if (t == k).any() else None
                    for k in range(len(classes))]
    esc = html.escape
    rows = []
    for k, choice in enumerate(sel.classes):
        nodes = "<br>".join(f"{esc(n['name'])} <code>{n['wnid']}</code> ({n['score']:.2f})"
                            for n in choice.nodes)
        models = "<br>".join(
            f"{esc(m['name'])} <small>({m['kind']}, w={m['weight']}"
            + (f", heads: {esc(', '.join(m['heads'][:4]))}" if m["heads"] else "") + ")</small>"
            for m in choice.models) or "none"
        pred = "-" if choice.predicted_accuracy is None else (
            f"{choice.predicted_accuracy:.2f} [{choice.interval[0]:.2f}, {choice.interval[1]:.2f}]")
        meas = "-" if not measured or measured[k] is None else f"{measured[k]:.2f}"
        idx = [i for i, y in enumerate(truth or result.predictions) if y == k][:EXAMPLES_PER_CLASS]
        thumbs = "".join(
            f'<figure><img src="data:image/png;base64,{_png(images[i])}">'
            f"<figcaption>{esc(classes[result.predictions[i]])}</figcaption></figure>" for i in idx)
        rows.append(f"<tr><td><b>{esc(choice.name)}</b><br><small>{choice.covered_by}</small></td>"
                    f"<td>{nodes}</td><td>{models}</td><td>{pred}</td><td>{meas}</td>"
                    f"<td class=ex>{thumbs}</td></tr>")
    confusion = ""
    if truth:
        confusion = (f'<h2>Confusion matrix</h2><img src="data:image/png;base64,'
                     f'{_confusion_png(result.confusion(), classes)}">')
    acc = "" if result.accuracy is None else f"; measured accuracy <b>{result.accuracy:.3f}</b>"
    pred_acc = "-" if sel.predicted_accuracy is None else f"{sel.predicted_accuracy:.3f}"
    explanation = "".join(f"<li>{esc(line)}</li>" for line in sel.explanation + sel.warnings)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>mll: {esc(sel.method)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px;vertical-align:top;font-size:13px}}
figure{{display:inline-block;margin:2px;text-align:center}}figcaption{{font-size:10px}}
td.ex img{{width:56px;height:56px;object-fit:contain;background:#f4f4f4}}</style></head><body>
<h1>Task of {len(classes)} classes, solved by {esc(sel.method)}</h1>
<p>Predicted accuracy <b>{pred_acc}</b>{acc}; {len(result.paths)} images,
{len(result.skipped)} skipped; models loaded: {len(sel.models)}.</p>
<ul>{explanation}</ul>
<table><tr><th>class</th><th>matched concepts</th><th>chosen models</th>
<th>predicted accuracy [90% interval]</th><th>measured</th><th>examples (predicted)</th></tr>
{''.join(rows)}</table>{confusion}</body></html>"""
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
