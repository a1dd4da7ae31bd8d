"""Importing a user's ImageNet-style folder tree, bad input included."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mll.cli import main
from mll.corpus import Corpus, build
from mll.corpus.folders import import_folder, matcher_resolver
from mll.errors import InvalidParameterError

MOUSE = "n02330245"  # the rodent


def save_png(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def lookup_resolver(graph):
    """First WordNet sense: a fast stand-in for the matcher (tested on its own below)."""
    return lambda names: [(graph.lookup(n) or [None])[0] for n in names]


@pytest.fixture
def tree(tmp_path, synth) -> Path:
    root = tmp_path / "pets"
    save_png(root / "n02084071" / "dog1.png", synth.image(11, 80))
    save_png(root / "n02084071" / "sub" / "dog2.png", synth.image(12, 16))
    buf = io.BytesIO()
    Image.fromarray(synth.image(13, 80)).save(buf, format="PNG")
    (root / "n02084071" / "truncated.png").write_bytes(buf.getvalue()[:200])
    (root / "n02084071" / "notes.txt").write_text("not an image")
    save_png(root / "mouse" / "m1.png", synth.image(14, 80))
    (root / "empty").mkdir()
    save_png(root / "zzqxv" / "z.png", synth.image(15, 80))
    save_png(root / "n99999999" / "x.png", synth.image(16, 80))
    (root / "readme.md").write_text("class folders below")
    return root


def test_bad_input_is_reported_and_the_rest_imported(hub, tree, graph):
    report = import_folder(hub, tree, "eval", resolver=lookup_resolver(graph))
    assert report.task == "pets" and report.images == 3
    assert report.classes == {"n02084071": "n02084071", "mouse": MOUSE,
                              "empty": graph.lookup("empty")[0]}
    problems = {Path(p.path).relative_to(tree).as_posix(): p.reason for p in report.problems}
    assert set(problems) == {"n02084071/truncated.png", "n02084071/notes.txt", "empty",
                             "zzqxv", "n99999999", "readme.md"}
    assert "truncated" in problems["n02084071/truncated.png"]
    assert "not a readable image" in problems["n02084071/notes.txt"]
    assert "empty folder" in problems["empty"]
    assert "matches no graph node" in problems["zzqxv"]
    records = Corpus.open(hub).records(source="user-pets")
    assert sorted(r.orig_id for r in records) == ["mouse/m1.png", "n02084071/dog1.png",
                                                  "n02084071/sub/dog2.png"]
    assert {r.role for r in records} == {"eval"} and {r.style for r in records} == {"user/pets"}


def test_import_survives_builds_and_reimport_replaces(hub, tree, graph, test_config):
    import_folder(hub, tree, "sample", task="mine", resolver=lookup_resolver(graph))
    build(hub, test_config)
    corpus = Corpus.open(hub)
    assert len(corpus.records(source="user-mine")) == 3
    assert len(corpus.records(source="test-a")) == 3  # img3 is test-b's (eval)
    (tree / "mouse" / "m1.png").unlink()
    report = import_folder(hub, tree, "sample", task="mine", resolver=lookup_resolver(graph))
    assert report.images == 2
    assert len(Corpus.open(hub).records(source="user-mine")) == 2


def test_imported_eval_image_leaves_train(hub, tmp_path, graph, test_config, synth):
    build(hub, test_config)
    assert Corpus.open(hub).records(role="train", wnids=[synth.dog])  # img1 of test-a
    save_png(tmp_path / "t" / "dog" / "same.png", synth.image(1, 16))
    report = import_folder(hub, tmp_path / "t", "eval", task="t", resolver=lookup_resolver(graph))
    assert report.duplicates_dropped == 2  # img1 from train; img3 (test-a vs test-b) as before
    corpus = Corpus.open(hub)
    holders = [(r.source, r.role) for r in corpus.records() if r.orig_id in ("img1",
                                                                                "dog/same.png")]
    assert holders == [("user-t", "eval")]


def test_invalid_calls(hub, tree, graph, tmp_path):
    with pytest.raises(InvalidParameterError, match="does not exist"):
        import_folder(hub, tmp_path / "nowhere", "eval", resolver=lookup_resolver(graph))
    with pytest.raises(InvalidParameterError, match="role"):
        import_folder(hub, tree, "train", resolver=lookup_resolver(graph))
    with pytest.raises(InvalidParameterError, match="task name"):
        import_folder(hub, tree, "eval", task="../x", resolver=lookup_resolver(graph))
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.txt").write_text("x")
    with pytest.raises(InvalidParameterError, match="no class folders"):
        import_folder(hub, tmp_path / "flat", "eval", resolver=lookup_resolver(graph))


def test_matcher_resolves_names_in_context(matcher):
    resolve = matcher_resolver(matcher)
    assert resolve(["hamster", "rat", "mouse", "qqzzxv"])[2:] == [MOUSE, None]


def test_cli_import_and_errors(hub, tree, capsys, monkeypatch, graph):
    import mll.corpus.folders as folders

    monkeypatch.setattr(folders, "matcher_resolver", lambda m: lookup_resolver(graph))
    monkeypatch.setattr("mll.graph.Matcher.for_hub", classmethod(lambda cls, hub: None))
    code = main(["data", "import", str(tree), "--role", "eval", "--hub", str(hub), "--json"])
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert code == 0 and doc["images"] == 3 and len(doc["problems"]) == 6
    code = main(["data", "import", str(tree / "nope"), "--role", "eval", "--hub", str(hub)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("Error: ") and err.count("\n") == 1
