"""``mll hub ...`` through the real entry point: JSON output, errors as one line with exit 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mll.cli import cli, main

pytestmark = pytest.mark.filterwarnings("ignore:.*classes left unmapped")


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("MLL_HUB", str(tmp_path / "hub"))
    monkeypatch.delenv("MLL_DB", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    return invoke


def test_add_list_show_map_remove(run, onnx_file, classes_file, tmp_path):
    added = json.loads(run("hub", "add", str(onnx_file), "--kind", "expert", "--family", "onnx",
                           "--classes", str(classes_file), "--name", "shoes", "-o", "mean=[0.5]",
                           "-o", "std=[0.5]", "--json").stdout)
    assert added["name"] == "shoes" and added["input_spec"]["mean"] == [0.5]
    listed = json.loads(run("hub", "list", "--json").stdout)
    assert listed == [{"id": added["id"], "name": "shoes", "kind": "expert", "family": "onnx",
                       "classes": 3, "labelled": False, "backbone": None,
                       "n_params": added["n_params"], "latency_ms": added["latency_ms"]}]
    shown = json.loads(run("hub", "show", "shoes", "--json").stdout)
    assert shown["classes"][2] == {"index": 2, "name": "boot", "wnid": "n02872752", "score": 1.0,
                                   "confirmed": True}
    assert shown["labels"] is None and shown["content_hash"].startswith(added["id"])
    mapped = json.loads(run("hub", "map", added["id"], "--set", "sandal=n04133789",
                            "--unconfirmed", "--json").stdout)
    assert [c["name"] for c in mapped["classes"]] == ["sneaker"]
    table = run("hub", "map", added["id"], "--confirm-all").stdout
    assert "2 of 3 classes confirmed" in table and "sandal" in table
    assert "shoes" in run("hub", "list").stdout
    assert "removed" in run("hub", "remove", "shoes").stdout
    assert json.loads(run("hub", "list", "--json").stdout) == []


def test_families_and_verify(run, onnx_file, classes_file, tmp_path):
    fams = {f["family"]: f for f in json.loads(run("hub", "families", "--json").stdout)}
    assert fams["conse"]["kind"] == "vlm" and fams["conse"]["options"]["top"] == 10
    info = json.loads(run("hub", "add", str(onnx_file), "--classes", str(classes_file),
                          "--json").stdout)
    assert "all artifacts intact" in run("hub", "verify").stdout
    artifact = tmp_path / "hub" / "artifacts" / "sha256" / info["artifact_digest"][:2] / info[
        "artifact_digest"]
    artifact.write_bytes(b"tampered")
    assert main(["hub", "verify"]) == 2


@pytest.mark.parametrize("args,message", [
    (["hub", "show", "nope"], "unknown model 'nope'"),
    (["hub", "add", "/no/such/model.onnx", "--classes", "x"], "does not exist"),
    (["hub", "add", "x", "--family", "onx"], "did you mean 'onnx'"),
    (["hub", "map", "abcd", "--set", "novalue"], "CLASS=WNID"),
])
def test_user_errors_are_one_line_with_exit_2(tmp_path, monkeypatch, capsys, args, message):
    from mll.hub import Hub

    monkeypatch.setenv("MLL_HUB", str(tmp_path / "hub"))
    Hub.open(tmp_path / "hub").close()  # an existing, empty hub: reading commands need one
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("Error: ") and len(err.strip().splitlines()) == 1


def test_pickle_upload_error_names_the_safe_formats(tmp_path, monkeypatch, capsys, small_cnn):
    import torch

    monkeypatch.setenv("MLL_HUB", str(tmp_path / "hub"))
    torch.save(small_cnn(), tmp_path / "model.pt")
    assert main(["hub", "add", str(tmp_path / "model.pt"), "--family", "torch-safetensors",
                 "--classes", "x"]) == 2
    err = capsys.readouterr().err
    assert "pickle" in err and "ONNX" in err and "Traceback" not in err


def test_every_hub_command_has_help():
    group = cli.commands["hub"]
    assert group.help
    for name, command in group.commands.items():
        assert command.help, name
        assert CliRunner().invoke(cli, ["hub", name, "--help"]).exit_code == 0


def test_train_lit_command_trains_on_the_corpus_and_adds(run, monkeypatch):
    """``mll hub train-lit`` wiring, on a stand-in corpus (records, load, graph captions)."""
    import numpy as np

    from mll import corpus as corpus_pkg
    from mll.hub import FeatureCache

    rng = np.random.default_rng(0)
    concepts = {"n02084071": "dog which is a canine", "n02121808": "cat which is a feline",
                "n02958343": "car which is a motor vehicle"}
    centres = {w: rng.normal(0, 1, 1280) for w in concepts}

    class Record:
        def __init__(self, i: int, wnid: str) -> None:
            self.image_id, self.wnid = f"img{i}", wnid

    records = [Record(i, w) for i, w in enumerate(list(concepts) * 30)]

    class StandIn:
        hub_dir, version = None, "c" * 64
        graph = type("G", (), {"caption": staticmethod(concepts.__getitem__)})()

        @classmethod
        def open(cls, hub):
            cls.hub_dir = hub
            return cls()

        def records(self, role, source=None, wnids=None):
            assert role == "train"
            return records

        def load(self, ids):
            raise AssertionError("features are stubbed; no image is loaded")

    def features(self, backbone, images=None, *, keys=None, load=None):
        wnid = {r.image_id: r.wnid for r in records}
        return np.stack([centres[wnid[k]] + rng.normal(0, 0.5, 1280) for k in keys]).astype(
            np.float32)

    monkeypatch.setattr(corpus_pkg, "Corpus", StandIn)
    monkeypatch.setattr(FeatureCache, "get", features)
    out = json.loads(run("hub", "train-lit", "--epochs", "20", "--name", "lit-test",
                         "--json").stdout)
    assert out["family"] == "lit" and out["name"] == "lit-test"
    assert out["metrics"]["n_captions"] == 3 and out["metrics"]["heldout_accuracy"] > 0.8
    assert "corpus cccccccccccc role=train" in out["config"]["trained_on"]
