"""Selection, reuse and solve on the quick starter hub: real models, real labels, real images."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from mll.cli import main
from mll.reuse import TaskPredictor, load_predictor, solve
from mll.selection import Task, make_selector, selectors

pytestmark = pytest.mark.slow

MIXED = ["T-shirt/top", "Trouser", "Sandal", "Sneaker", "Bag", "bear", "elephant", "giraffe",
         "zebra", "horse"]
DOMAIN = "small 28x28 grayscale image"


@pytest.fixture(scope="module")
def table(starter_hub):
    from mll.selection import LabelTable

    t = LabelTable(starter_hub)
    yield t
    t.close()


@pytest.fixture(scope="module")
def mixed_folder(table, tmp_path_factory):
    """Eval images of the mixed task as a class-per-folder tree, plus two bad files."""
    from mll.bench.demo import export_task
    from mll.bench.tasks import standard_tasks

    task = next(t for t in standard_tasks(table.corpus, table.graph, quick=True)
                if t.name == "mixed-clothes-animals")
    root = export_task(table.corpus, task, tmp_path_factory.mktemp("mixed") / "images")
    first = sorted(p for p in root.iterdir() if p.is_dir())[0]
    (first / "notes.txt").write_text("not an image")
    (first / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return task, root


@pytest.mark.parametrize("method", [m for m in selectors.list() if m != "oracle"])
def test_every_method_returns_the_common_structure(table, method):
    sel = make_selector(method).fit(table).select(Task.create(MIXED, domain=DOMAIN))
    doc = sel.to_dict()
    assert {"classes", "predicted_accuracy", "models", "seconds"} <= set(doc)
    assert len(doc["classes"]) == len(MIXED) and doc["models"]
    for c in doc["classes"]:
        assert {"name", "nodes", "models", "predicted_accuracy", "covered_by"} <= set(c)
        assert c["covered_by"] in ("expert", "vlm", "none")
        if c["predicted_accuracy"] is not None:
            lo, hi = c["interval"]
            assert 0 <= lo <= c["predicted_accuracy"] <= hi <= 1
    json.dumps(doc, default=str)


def test_chco_uses_experts_on_their_classes_and_explains(table):
    sel = make_selector("chco").fit(table).select(Task.create(MIXED, domain=DOMAIN))
    covered = {c.name: c.covered_by for c in sel.classes}
    assert sum(v == "expert" for v in covered.values()) >= 5
    assert sel.explanation and "general part" in sel.explanation[0]
    assert sel.predicted_accuracy is not None and sel.predicted_accuracy > 0.3


def test_budget_limits_models(table):
    one = make_selector("chco", budget_models=2).fit(table).select(Task.create(MIXED, domain=DOMAIN))
    assert len(one.models) <= 2


def test_unmatched_class_is_patched_with_a_warning(table):
    sel = make_selector("chco").fit(table).select(Task.create(["sandal", "flibbertyjib"]))
    assert any("flibbertyjib" in w and "general VLM" in w for w in sel.warnings)
    assert sel.classes[1].covered_by == "vlm"


def test_selection_touches_no_target_image_and_is_fast(table):
    task = Task.create(MIXED, domain=DOMAIN)
    selector = make_selector("chco").fit(table)
    selector.select(task)
    sel = selector.select(task)
    assert sel.seconds < 30  # correctness bound only; the benchmark reports the real figure


def test_solve_folder_report_csv_and_saved_predictor(table, mixed_folder, tmp_path):
    task, root = mixed_folder
    result = solve(table, Task.create([c.replace("/", "-") for c in task.classes], domain=DOMAIN),
                   root, out_csv=tmp_path / "p.csv", report=tmp_path / "r.html",
                   save=tmp_path / "pred.zip")
    assert result.truth is not None and 0.3 < result.accuracy <= 1.0
    assert {s["reason"][:12] for s in result.skipped} >= {"not an image"}
    assert any("broken.png" in s["path"] for s in result.skipped)
    assert (tmp_path / "p.csv").read_text().count("\n") == len(result.paths) + 1
    html = (tmp_path / "r.html").read_text()
    assert "Confusion matrix" in html and "data:image/png;base64" in html
    assert zipfile.is_zipfile(tmp_path / "pred.zip")
    loaded = load_predictor(tmp_path / "pred.zip")
    images = table.corpus.load(task.image_ids[:24])
    np.testing.assert_allclose(loaded.predict_proba(images), result.predictor.predict_proba(images),
                               atol=1e-5)
    assert isinstance(loaded, TaskPredictor) and loaded.classes == result.predictor.classes


def test_solve_can_take_the_style_from_the_images(table, mixed_folder, tmp_path, capsys):
    """--look: the target's style is seen in the images (grayscale 28x28 here), not read from
    words (none are given), and said in the explanation."""
    task, root = mixed_folder
    classes = ",".join(c.replace("/", "-") for c in task.classes)
    code = main(["solve", "--hub", str(table.hub_dir), "--classes", classes, "--images",
                 str(root), "--look", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    sel = doc  # the selection's fields, then the solve's own
    assert sel["explanation"][0].startswith("target style seen in the images: gray28")
    assert sel["calibration"]["situation"] == "direct"
    lo, hi = sel["interval"]
    assert lo <= sel["predicted_accuracy"] <= hi


def test_cli_select_json_and_errors(starter_hub, capsys):
    code = main(["select", "--hub", str(starter_hub), "--classes", ",".join(MIXED),
                 "--domain", DOMAIN, "--json"])
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert code == 0 and len(doc["classes"]) == len(MIXED)
    assert doc["calibration"]["level"] == 0.9 and doc["calibration"]["situation"] == "direct"
    for c in doc["classes"]:  # a calibrated 90% interval per class, and the proxy's own figures
        lo, hi = c["interval"]
        assert 0 <= lo <= c["predicted_accuracy"] <= hi <= 1
        assert c["evidence"]["proxy_accuracy"] is not None
    code = main(["select", "--hub", str(starter_hub), "--classes", ",".join(MIXED),
                 "--domain", DOMAIN])
    assert code == 0 and "90% interval" in capsys.readouterr().out
    code = main(["select", "--hub", str(starter_hub), "--classes", "cat"])
    assert code == 2 and "at least two" in capsys.readouterr().err
    code = main(["select", "--hub", str(starter_hub), "--classes", "cat,dog", "--k", "2"])
    assert code == 2 and "--k applies" in capsys.readouterr().err
