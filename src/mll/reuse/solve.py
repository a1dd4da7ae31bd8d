"""``solve``: select for a task, assemble the predictor, predict a folder of images, report.

When the folder has one sub-folder per class name, the truth is known and the result carries the
measured accuracy and confusion matrix next to the predicted accuracy.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..errors import InvalidParameterError
from ..graph.match import split_words
from ..images import load_image_file
from .predictor import TaskPredictor

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


@dataclass
class SolveResult:
    selection: object
    predictor: TaskPredictor
    paths: list[str]
    predictions: list[int]
    confidences: list[float]
    truth: list[int] | None
    skipped: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        if not self.truth:
            return None
        return float(np.mean(np.array(self.predictions) == np.array(self.truth)))

    def confusion(self) -> np.ndarray | None:
        if not self.truth:
            return None
        k = len(self.predictor.classes)
        m = np.zeros((k, k), dtype=int)
        np.add.at(m, (np.array(self.truth), np.array(self.predictions)), 1)
        return m

    def to_dict(self) -> dict:
        sel = self.selection.to_dict()
        return sel | {"images": len(self.paths), "skipped": self.skipped,
                      "accuracy": None if self.accuracy is None else round(self.accuracy, 4),
                      "confusion": None if self.truth is None else self.confusion().tolist(),
                      "timings": {k: round(v, 3) for k, v in self.seconds.items()}}


def find_images(root: Path) -> tuple[list[Path], list[dict]]:
    if not root.is_dir():
        raise InvalidParameterError(f"{root} is not a directory of images")
    files, skipped = [], []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            if p.suffix.lower() in IMAGE_SUFFIXES:
                files.append(p)
            else:
                skipped.append({"path": str(p), "reason": "not an image file"})
    return files, skipped


def read_images(files: list[Path]) -> tuple[list[np.ndarray], list[Path], list[dict]]:
    """Decode every file; unreadable or oversized ones become ``{"path", "reason"}`` entries.

    One bad file (a decompression bomb, a truncated JPEG) must not cost the predictions for the
    rest of the folder.
    """
    images, kept, skipped = [], [], []
    for f in files:
        try:
            images.append(load_image_file(f))
            kept.append(f)
        except InvalidParameterError as exc:
            skipped.append({"path": str(f), "reason": str(exc).removeprefix(f"{f}: ")})
    return images, kept, skipped


def check_output_paths(outputs: dict[str, str | Path | None]) -> None:
    """Refuse output paths that could not be written, before any prediction work is spent.

    ``outputs`` maps an option name (``--out``) to its path or None. Each path must name a file
    (not a directory) in an existing directory where a file can be created: the writers create a
    temporary file beside the target and rename it, so that is exactly what is probed (and
    removed); write permission bits alone mislead when running as root or on /proc-like mounts.
    """
    seen: dict[Path, str] = {}
    for option, raw in outputs.items():
        if raw is None or raw == "":
            continue
        path = Path(raw).expanduser()
        if path.is_dir():
            raise InvalidParameterError(f"{option} {path} is a directory; give a file name")
        parent = path.parent
        if not parent.is_dir():
            raise InvalidParameterError(f"{option} {path}: directory {parent} does not exist; "
                                        "create it first")
        try:
            fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
        except OSError as exc:
            raise InvalidParameterError(f"{option} {path}: cannot create files in {parent} "
                                        f"({exc.strerror or exc})") from None
        os.close(fd)
        os.unlink(probe)
        key = path.resolve()
        if key in seen:
            raise InvalidParameterError(f"{option} and {seen[key]} both name {path}; give "
                                        "each output its own file")
        seen[key] = option


def folder_truth(root: Path, files: list[Path], classes: list[str]) -> list[int] | None:
    """Class index per file when every top-level folder is one of the class names."""
    key = {split_words(c).replace("-", " "): i for i, c in enumerate(classes)}
    truth = []
    for f in files:
        rel = f.relative_to(root).parts
        if len(rel) < 2:
            return None
        k = key.get(split_words(rel[0]).replace("-", " "))
        if k is None:
            return None
        truth.append(k)
    return truth or None


def solve(table, task, images_dir: str | Path, *, method: str = "chco", params: dict | None = None,
          out_csv: str | Path | None = None, report: str | Path | None = None,
          save: str | Path | None = None, batch_size: int = 32, look: bool = False
          ) -> SolveResult:
    """Select with ``method`` from the fitted ``LabelTable``, then predict every image.

    ``look``: take the target's style group from the images themselves (their nearest sample
    images in the prototype backbone's feature space, :func:`mll.selection.style.style_of_images`)
    instead of from the domain words; only pixels are read, never the folder names.

    Output paths are checked first; unreadable or oversized images are skipped with their reason
    (``result.skipped``) while the rest are predicted.
    """
    from ..selection import make_selector

    check_output_paths({"--out": out_csv, "--report": report, "--save": save})
    root = Path(images_dir)
    files, skipped = find_images(root)
    if not files:
        raise InvalidParameterError(f"no image files under {root} (looked for "
                                    f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    images, kept, unreadable = read_images(files)
    skipped += unreadable
    if not kept:
        raise InvalidParameterError(f"none of the {len(files)} image files under {root} could be "
                                    f"read; {unreadable[0]['path']}: {unreadable[0]['reason']}")
    start = time.perf_counter()
    selection = select_with_look(table, task, images, method, params, batch_size) if look else \
        make_selector(method, **(params or {})).fit(table).select(task)
    t_select = time.perf_counter() - start
    predictor = TaskPredictor.from_selection(selection, table.hub)
    start = time.perf_counter()
    proba = predictor.predict_proba(images, batch_size)
    t_predict = time.perf_counter() - start
    result = SolveResult(selection, predictor, [str(f) for f in kept],
                         proba.argmax(axis=1).tolist(), proba.max(axis=1).round(4).tolist(),
                         folder_truth(root, kept, list(task.classes)), skipped,
                         {"select": t_select, "predict": t_predict,
                          "images_per_second": len(kept) / max(t_predict, 1e-9)})
    if out_csv:
        write_csv(result, Path(out_csv))
    if save:
        predictor.save(save, table.hub)
    if report:
        from .report import write_report

        write_report(result, Path(report), images)
    return result


def select_with_look(table, task, images, method: str = "chco", params: dict | None = None,
                     batch_size: int = 32):
    """Selection whose target style is seen in the (unlabelled) images, said in its explanation."""
    from dataclasses import replace

    from ..hub.backbones import get_backbone
    from ..selection import build_context, make_selector
    from ..selection.style import style_of_images

    feats = get_backbone(table.proto_backbone).features(list(images), batch_size)
    style, shares = style_of_images(table, feats)
    ctx = build_context(table, task, target_style=style)
    sel = make_selector(method, **(params or {})).fit(table).select(task, ctx)
    votes = ", ".join(f"{g} {v:.0%}" for g, v in sorted(shares.items(), key=lambda x: -x[1]))
    return replace(sel, explanation=[f"target style seen in the images: {style} (nearest sample "
                                     f"images: {votes})", *sel.explanation])


def write_csv(result: SolveResult, path: Path) -> None:
    classes = result.predictor.classes
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "prediction", "confidence"] + (["truth"] if result.truth else []))
            for i, p in enumerate(result.paths):
                row = [p, classes[result.predictions[i]], result.confidences[i]]
                if result.truth:
                    row.append(classes[result.truth[i]])
                w.writerow(row)
