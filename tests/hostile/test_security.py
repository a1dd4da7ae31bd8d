"""Saved predictors, model bundles and hub temp files crafted to write outside or exhaust memory.

Every hostile file is built here from a real, valid one: a small saved predictor holding an ONNX
expert and a Hugging Face CLIP model from a throwaway hub.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mll.errors import ArtifactIntegrityError, InvalidParameterError, LimitExceededError, MLLError
from mll.reuse import TaskPredictor, load_predictor
from mll.selection.plan import Component, Plan

contract = pytest.mark.contract
CLASSES = ["sandal", "sneaker", "boot"]


# -- a real saved predictor to start from ------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> SimpleNamespace:
    """A saved predictor (ONNX expert gated by a CLIP VLM), its images and its probabilities."""
    pytest.importorskip("transformers")
    import torch

    from mll.hub import Hub
    from mll.hub.archs import build
    from mll.hub.testing import export_onnx, tiny_clip_dir

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("saved")
    torch.manual_seed(1)
    onnx_file = export_onnx(build("small-cnn", {"n_classes": 3, "width": 4}), root / "tiny.onnx")
    with Hub.open(root / "hub") as hub, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes left unmapped: this hub has no graph
        expert = hub.add(onnx_file, classes=CLASSES)
        vlm = hub.add(tiny_clip_dir(root / "clip"), family="hf-clip")
        text_emb = np.random.default_rng(0).normal(size=(3, hub.load(vlm.id).dim))
        text_emb /= np.linalg.norm(text_emb, axis=1, keepdims=True)
        plan = Plan([Component("vlm", vlm.id, 1.0, "general", [], text_emb=text_emb),
                     Component("expert", expert.id, 1.0, "expert", [0, 1, 2],
                               head_map=np.eye(3, dtype=np.float32))], "gated", 3)
        selection = SimpleNamespace(plan=plan, method="hand-made", predicted_accuracy=None,
                                    task=SimpleNamespace(classes=CLASSES, domain="footwear"))
        predictor = TaskPredictor.from_selection(selection, hub)
        path = predictor.save(root / "pred.zip", hub)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(4)]
    return SimpleNamespace(path=path, expert=expert.id, vlm=vlm.id, images=images,
                           proba=predictor.predict_proba(images))


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path, monkeypatch) -> Path:
    """The system temp dir for this test; after it, no ``mll-predictor-*`` may remain."""
    tmp = tmp_path / "systmp" / "inner"
    tmp.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield tmp
    assert not list(tmp.glob("mll-predictor-*")), "load_predictor left its temp directory"


def _rewrite(src: Path, dst: Path, manifest=None, drop=(), add=None) -> Path:
    """A copy of the zip ``src``: manifest edited by ``manifest(doc)``, members dropped/added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info)
            if info.filename == "manifest.json" and manifest is not None:
                doc = json.loads(data)
                manifest(doc)
                data = json.dumps(doc).encode()
            zout.writestr(info.filename, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


def _rename_model(doc: dict, old: str, new: str) -> None:
    doc["meta"]["models"][new] = doc["meta"]["models"].pop(old)
    for c in doc["components"]:
        if c["source"] == old:
            c["source"] = new


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


# -- a valid predictor still works ---------------------------------------------------------------
@contract("security", "a valid saved predictor (ONNX expert + CLIP), loaded in a new place",
          "predicts exactly as before; its unpack directory is gone once it has loaded")
def test_valid_predictor_round_trips_and_leaves_nothing(saved, tmp_path, private_tempdir):
    work = tmp_path / "work"
    work.mkdir()
    loaded = load_predictor(saved.path, workdir=work)
    assert not list(work.iterdir()) and not list(private_tempdir.iterdir())
    np.testing.assert_array_equal(loaded.predict_proba(saved.images), saved.proba)
    assert loaded.classes == CLASSES and set(loaded.adapters) == {saved.expert, saved.vlm}
    again = load_predictor(saved.path)  # default: the system temp dir, also left clean
    np.testing.assert_array_equal(again.predict_proba(saved.images), saved.proba)


# -- names inside the file are hostile -----------------------------------------------------------
@pytest.mark.parametrize("key", ["../../x", "models/../../../x", "..", "ABSOLUTE",
                                 "abc\x00def", "link"])
@contract("security", "a saved predictor whose model id is ../../x, an absolute path, "
          "contains NUL or is any other non-id name",
          "refused before anything is written: model ids must be 12 hex digits")
def test_model_key_that_escapes_is_refused_before_writing(saved, tmp_path, key, private_tempdir):
    if key == "ABSOLUTE":
        key = str(tmp_path / "abs" / "evil")
    crafted = _rewrite(saved.path, tmp_path / "crafted.zip",
                       manifest=lambda d: _rename_model(d, saved.expert, key),
                       drop={f"models/{saved.expert}"},
                       add={f"models/{key}": b"attacker bytes"})
    work = tmp_path / "sys" / "work"
    work.mkdir(parents=True)
    before = _files_under(tmp_path)
    with pytest.raises(InvalidParameterError, match="is not 12 hex digits of a content hash"):
        load_predictor(crafted, workdir=work)
    assert _files_under(tmp_path) == before  # nothing written anywhere, not even inside work
    assert not (tmp_path / "abs").exists() and not (tmp_path / "x").exists()


@contract("security", "a saved predictor whose model member is a zip symlink entry "
          "(pointing at /etc/passwd)",
          "the link is never followed; the bytes fail the model's content hash and are refused")
def test_symlink_member_is_not_followed(saved, tmp_path):
    crafted = tmp_path / "crafted.zip"
    with zipfile.ZipFile(saved.path) as zin, zipfile.ZipFile(crafted, "w") as zout:
        for info in zin.infolist():
            if info.filename == f"models/{saved.expert}":
                link = zipfile.ZipInfo(info.filename)
                link.external_attr = (0o120777 << 16)  # S_IFLNK
                link.create_system = 3
                zout.writestr(link, "/etc/passwd")
            else:
                zout.writestr(info, zin.read(info))
    with pytest.raises(ArtifactIntegrityError, match=f"model {saved.expert} does not match its "
                                                     "content hash"):
        load_predictor(crafted, workdir=tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"systmp", "crafted.zip"}


@contract("security", "a saved predictor whose model bytes were swapped for other bytes",
          "refused: every model must match the content hash its id comes from")
def test_swapped_model_bytes_fail_the_content_hash(saved, tmp_path):
    with zipfile.ZipFile(saved.path) as zf:
        other = zf.read(f"models/{saved.vlm}")
    crafted = _rewrite(saved.path, tmp_path / "crafted.zip", drop={f"models/{saved.expert}"},
                       add={f"models/{saved.expert}": other})
    with pytest.raises(ArtifactIntegrityError, match="does not match its content hash"):
        load_predictor(crafted)


def _manifest_edits(saved) -> dict:
    def set_(path, value):
        def edit(doc):
            *head, last = path
            target = doc
            for k in head:
                target = target[k]
            target[last] = value
        return edit

    e, v = saved.expert, saved.vlm
    return {
        "classes as a string": (set_(["classes"], "sandal"), "'classes' must be a non-empty list"),
        "unknown rule": (set_(["rule"], "max"), "'rule' must be one of"),
        "unknown family": (set_(["meta", "models", e, "family"], "pickle"), "unknown family"),
        "config a list": (set_(["meta", "models", e, "config"], []), "'config' must be an object"),
        "wnids too short": (set_(["meta", "models", e, "wnids"], []), "'wnids' must give"),
        "content hash of another model": (set_(["meta", "models", e, "content_hash"],
                                               saved.vlm + "0" * 52), "starting with its id"),
        "component on a missing model": (set_(["components", 1, "source"], "0" * 12),
                                         "which the file does not hold"),
        "component kind mismatch": (set_(["components", 0, "kind"], "expert"),
                                    f"needs expert model '{v}'"),
        "class index out of range": (set_(["components", 1, "classes"], [0, 7]),
                                     "'classes' must list class indices 0..2"),
        "NaN weight": (set_(["components", 0, "weight"], float("nan")), "finite non-negative"),
        "unknown component field": (set_(["components", 0, "code"], "os.system"),
                                    "only \\['classes'"),
        "unknown backbone": (set_(["components", 0], {"kind": "proto", "source": "../x"}),
                             "unknown backbone"),
        "wrong format": (set_(["format"], "mll-predictor/9"), "unknown predictor format"),
    }


@pytest.mark.parametrize("case", list(_manifest_edits(SimpleNamespace(expert="e", vlm="v"))))
@contract("security", "a saved predictor whose manifest has a wrong type, an unknown family, "
          "rule or field, a bad class index or a dangling model reference",
          "one-line error naming the field; nothing unpacked")
def test_manifest_is_validated_completely(saved, tmp_path, case):
    edit, message = _manifest_edits(saved)[case]
    crafted = _rewrite(saved.path, tmp_path / "crafted.zip", manifest=edit)
    before = _files_under(tmp_path)
    with pytest.raises(InvalidParameterError, match=message):
        load_predictor(crafted, workdir=tmp_path)
    assert _files_under(tmp_path) == before


@pytest.mark.parametrize("data", [b"[1, 2]", b"\xff\xfe not utf-8", b"[" * 100_000,
                                  b'{"format": "mll-predictor/1"'])
@contract("security", "a saved predictor whose manifest is not JSON, not UTF-8, a list or "
          "nested 100000 deep", "one-line error: not a saved predictor / not valid JSON")
def test_manifest_that_is_not_an_object(saved, tmp_path, data):
    crafted = _rewrite(saved.path, tmp_path / "crafted.zip", drop={"manifest.json"},
                       add={"manifest.json": data})
    with pytest.raises(InvalidParameterError, match="manifest.json is not (valid JSON|a JSON object)"):
        load_predictor(crafted)


@contract("security", "a file that is not a zip, or a zip without manifest.json",
          "one-line error: not a saved mll predictor")
def test_not_a_predictor(saved, tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InvalidParameterError, match="not a saved mll predictor"):
        load_predictor(junk)
    crafted = _rewrite(saved.path, tmp_path / "crafted.zip", drop={"manifest.json"})
    with pytest.raises(InvalidParameterError, match="has no manifest.json"):
        load_predictor(crafted)


# -- memory and disk from small files --------------------------------------------------------------
@contract("memory and size", "a saved predictor whose model member is a zip bomb "
          "(16 MiB of zeros in 16 KB)", "refused on the compression ratio before unpacking "
          "(MLL_MAX_ZIP_RATIO)")
def test_zip_bomb_member_is_refused(saved, tmp_path):
    crafted = _rewrite(saved.path, tmp_path / "crafted.zip", drop={f"models/{saved.expert}"},
                       add={f"models/{saved.expert}": bytes(16 * 1024**2)})
    before = _files_under(tmp_path)
    with pytest.raises(LimitExceededError, match="compression ratio.*MLL_MAX_ZIP_RATIO"):
        load_predictor(crafted, workdir=tmp_path)
    assert _files_under(tmp_path) == before


def _patch_declared_size(path: Path, member: str, size: int) -> None:
    """Overwrite ``member``'s uncompressed size in its local header and the central directory."""
    raw = bytearray(path.read_bytes())
    name = member.encode()
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := raw.find(sig, start)) != -1:
            name_at = start + (30 if sig == b"PK\x03\x04" else 46)
            if raw[name_at: name_at + len(name)] == name:
                struct.pack_into("<I", raw, start + offset, size)
            start += 4
    path.write_bytes(bytes(raw))


@contract("memory and size", "a saved predictor whose model member declares 100 KB but "
          "inflates to 3 MB", "never inflated past what it declares: refused as damaged")
def test_member_lying_about_its_size_is_refused(saved, tmp_path, monkeypatch):
    payload = np.random.default_rng(0).integers(0, 4, 3 * 1024**2, dtype=np.uint8).tobytes()
    crafted = _rewrite(saved.path, tmp_path / "crafted.zip", drop={f"models/{saved.expert}"},
                       add={f"models/{saved.expert}": payload})
    _patch_declared_size(crafted, f"models/{saved.expert}", 100_000)
    monkeypatch.setenv("MLL_MAX_MODEL_BYTES", "1000000")
    before = _files_under(tmp_path)
    with pytest.raises(InvalidParameterError, match="is damaged|above the limit"):
        load_predictor(crafted, workdir=tmp_path)
    assert _files_under(tmp_path) == before


@contract("memory and size", "a saved predictor whose model is larger than MLL_MAX_MODEL_BYTES",
          "refused from the zip directory, naming the limit and how to raise it")
def test_model_above_the_operator_limit(saved, tmp_path, monkeypatch):
    monkeypatch.setenv("MLL_MAX_MODEL_BYTES", "20000")
    with pytest.raises(LimitExceededError, match="declared size is .* above the limit of 20,000; "
                                                 ".*MLL_MAX_MODEL_BYTES"):
        load_predictor(saved.path)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in arrays.items():
            zf.writestr(f"{name}.npy", data)
    return buf.getvalue()


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def _npy_claiming(shape: tuple[int, ...]) -> bytes:
    """An .npy header promising ``shape`` float64, followed by only 16 bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + bytes(16)


@pytest.mark.parametrize("members, message", [
    ({"0.text_emb": _npy_claiming((100_000, 100_000))}, "declares .* but holds fewer bytes"),
    ({"0.text_emb": _npy(np.array([[{"a": 1}]], dtype=object), allow_pickle=True)},
     "must be a 2-D numeric array"),
    ({"../x": _npy(np.zeros((2, 2)))}, "unexpected array '../x.npy'"),
    ({"0.text_emb": _npy(np.full((3, 16), np.inf))}, "NaN or infinite"),
    ({"0.text_emb": _npy(np.zeros((3, 7), dtype=np.float32)),
      "1.head_map": _npy(np.eye(3, dtype=np.float32))}, "needs a text_emb of shape \\(3, 16\\)"),
], ids=["huge shape", "pickled objects", "path name", "infinite", "wrong shape"])
@contract("security", "a saved predictor whose arrays.npz holds pickles, a header claiming "
          "100000x100000, an unexpected name, infinities or a wrong shape",
          "refused before allocating: no pickle, every array 2-D, finite and of the expected shape")
def test_arrays_are_bounded_and_checked(saved, tmp_path, members, message):
    crafted = _rewrite(saved.path, tmp_path / "crafted.zip", drop={"arrays.npz"},
                       add={"arrays.npz": _npz(**members)})
    with pytest.raises(InvalidParameterError, match=message):
        load_predictor(crafted)


# -- model bundles ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip_bundle(tmp_path_factory) -> SimpleNamespace:
    pytest.importorskip("transformers")
    from mll.hub.adapters import families
    from mll.hub.adapters.base import PackContext
    from mll.hub.testing import tiny_clip_dir

    root = tmp_path_factory.mktemp("bundle")
    cls = families.get("hf-clip")
    packed = cls.pack(tiny_clip_dir(root / "clip"), {}, PackContext(root, root / "text.sqlite"))
    return SimpleNamespace(cls=cls, path=packed.path, config=packed.config)


def _with_header_entries(src: Path, dst: Path, **entries: str) -> Path:
    raw = src.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8: 8 + n])
    header["__metadata__"].update(entries)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    dst.write_bytes(len(text).to_bytes(8, "little") + text.encode() + raw[8 + n:])
    return dst


@pytest.mark.parametrize("name", ["../../x", "/tmp/mll-abs-x", "sub/x", ".hidden", "evil.py"])
@contract("security", "a model bundle whose header carries mll.file.../../x (or an absolute, "
          "nested, hidden or unexpected file name)",
          "refused before any file is written; only the known tokenizer files are unpacked")
def test_bundle_file_names_stay_inside(clip_bundle, tmp_path, private_tempdir, name):
    crafted = _with_header_entries(clip_bundle.path, tmp_path / "crafted.safetensors",
                                   **{f"mll.file.{name}": "attacker text"})
    before = _files_under(tmp_path)
    with pytest.raises(InvalidParameterError, match="not a plain file name|unexpected file"):
        clip_bundle.cls.from_artifact(crafted, clip_bundle.config)
    assert _files_under(tmp_path) == before and not Path("/tmp/mll-abs-x").exists()


@contract("memory and size", "a model bundle carrying more embedded file text than "
          "MLL_MAX_METADATA_BYTES", "refused, naming the limit; nothing unpacked")
def test_bundle_files_are_bounded(clip_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("MLL_MAX_METADATA_BYTES", "1000")
    with pytest.raises(LimitExceededError, match="embedded files.*MLL_MAX_METADATA_BYTES"):
        clip_bundle.cls.from_artifact(clip_bundle.path, clip_bundle.config)


@contract("security", "a CLIP upload whose shard index names ../../secret.safetensors",
          "refused: shard names must stay inside the model directory")
def test_shard_index_cannot_reach_outside(tmp_path):
    from mll.hub.adapters.hf_clip import _weight_files

    model = tmp_path / "clip"
    model.mkdir()
    (model / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w": "../../secret.safetensors"}}))
    with pytest.raises(InvalidParameterError, match="shard name .* not a plain file name"):
        _weight_files(model)


# -- hub temp directories ----------------------------------------------------------------------------
def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@contract("storage", "leftover tmp/add-* directories of adds that were killed (kill -9), "
          "next to a running add", "swept when the hub opens; a running add's directory is kept")
def test_hub_open_sweeps_only_dead_adds(tmp_path):
    import fcntl

    from mll.hub import Hub

    with Hub.open(tmp_path / "hub") as hub:
        tmp = hub._tmp()
    killed = subprocess.run(
        [sys.executable, "-c", "import os, sys; from mll.hub import Hub; "
         "h = Hub.open(sys.argv[1]); w, _ = h._add_workdir(); (w / 'x.bin').write_bytes(b'1'*9); "
         "print(w, flush=True); os.kill(os.getpid(), 9)", str(tmp_path / "hub")],
        capture_output=True, text=True)
    killed_dir = Path(killed.stdout.strip())
    assert killed.returncode == -9 and killed_dir.is_dir()
    alive = tmp / "add-alive"
    alive.mkdir()
    holder = open(alive / ".owner.lock", "w")  # noqa: SIM115 - the live add's lock
    fcntl.flock(holder, fcntl.LOCK_EX)
    legacy_old, legacy_new = tmp / "add-legacy-old", tmp / "add-legacy-new"
    legacy_old.mkdir()
    legacy_new.mkdir()
    for d, age in ((killed_dir, 120), (alive, 7200), (legacy_old, 7200), (legacy_new, 120)):
        _age(d, age)
    try:
        Hub.open(tmp_path / "hub").close()
        assert not killed_dir.exists() and not legacy_old.exists()
        assert alive.is_dir() and legacy_new.is_dir()
    finally:
        holder.close()
    Hub.open(tmp_path / "hub").close()
    assert not alive.exists() and legacy_new.is_dir()


@contract("storage", "a hub add that fails half way", "its tmp/add-* directory is removed")
def test_failed_add_leaves_no_workdir(tmp_path):
    from mll.hub import Hub

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with Hub.open(tmp_path / "hub") as hub:
        with pytest.raises(MLLError):
            hub.add(bad, classes=CLASSES)
        assert not list(hub._tmp().iterdir())
