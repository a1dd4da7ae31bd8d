"""Every family on real or tiny real models, through hub.add and hub.load."""

from __future__ import annotations

import numpy as np
import pytest

from mll.errors import InvalidParameterError, MLLError
from mll.hub import families
from mll.hub.adapters.base import Expert

pytestmark = pytest.mark.filterwarnings("ignore:.*classes left unmapped")


def _check_probs(p: np.ndarray, n: int, c: int) -> None:
    assert p.shape == (n, c) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)


def test_registry_lists_every_family():
    assert families.list() == ["conse", "efficientnet-lite", "hf-clip", "lit", "onnx",
                               "open-clip", "synthetic", "torch-safetensors"]
    with pytest.raises(MLLError, match="did you mean 'onnx'"):
        families.get("onx")


def test_torch_safetensors_cnn_directory(hub, cnn_dir, classes_file, gray_images, photos):
    info = hub.add(cnn_dir, kind="expert", family="torch-safetensors", classes=classes_file,
                   name="footwear")
    assert (info.family, info.kind, info.backbone) == ("torch-safetensors", "expert", None)
    assert (info.input_spec.size, info.input_spec.channels) == (28, 1)
    assert info.n_params > 0 and info.latency_ms > 0
    assert [c.name for c in info.classes] == ["sandal", "sneaker", "boot"]
    assert info.classes[2].wnid == "n02872752" and info.classes[2].confirmed
    model = hub.load(info.id)
    assert isinstance(model, Expert) and model.wnids == [None, None, "n02872752"]
    _check_probs(model.predict_proba(gray_images + photos), 8, 3)


def test_torch_module_and_bundle_give_the_same_model(hub, small_cnn, tmp_path, classes_file):
    module = small_cnn(seed=3)
    a = hub.add(module, classes=classes_file)
    b = hub.add(module, classes=classes_file)
    assert a.id == b.id and len(hub.list()) == 1


def test_weights_that_do_not_fit_the_architecture(hub, cnn_dir, classes_file):
    (cnn_dir / "config.json").write_text('{"arch": "small-cnn", "arch_config": {"n_classes": 5}}')
    with pytest.raises(InvalidParameterError, match="do not fit"):
        hub.add(cnn_dir, classes=classes_file)


def test_onnx_expert_matches_torch(hub, onnx_file, classes_file, small_cnn, gray_images):
    import torch

    info = hub.add(onnx_file, kind="expert", classes=classes_file,
                   options={"mean": [0.5], "std": [0.5]})
    assert info.family == "onnx" and info.input_spec.size == 28
    model = hub.load(info.id)
    probs = model.predict_proba(gray_images)
    _check_probs(probs, 5, 3)
    x = torch.from_numpy(model.input_spec.prepare(gray_images))
    with torch.inference_mode():
        ref = torch.softmax(small_cnn(seed=1)(x), dim=1).numpy()
    np.testing.assert_allclose(probs, ref, atol=1e-4)


def test_declared_class_count_must_match_outputs(hub, onnx_file, tmp_path):
    with pytest.raises(InvalidParameterError, match="outputs 3 scores .* 2 classes"):
        hub.add(onnx_file, classes=["cat", "dog"])
    assert hub.list() == [] and hub.artifacts.digests() == []


@pytest.fixture(scope="module")
def lite_hub(tmp_path_factory):
    """One hub with the real Lite0 ImageNet expert and ConSE on it, shared by this module."""
    from mll.hub import Hub

    with Hub.open(tmp_path_factory.mktemp("lite-hub")) as h:
        h.add("efficientnet-lite0", kind="expert", family="efficientnet-lite")
        h.add("efficientnet-lite0", kind="vlm", family="conse", options={"top": 10})
        yield h


def test_efficientnet_lite0_real_weights(lite_hub, photos):
    hub = lite_hub
    info = hub.get("efficientnet-lite0")
    assert len(info.classes) == 1000 and all(c.confirmed for c in info.classes)
    assert info.backbone == "efficientnet-lite0@224" and info.license == "Apache-2.0"
    model = hub.load(info.id)
    probs = model.predict_proba(photos)
    _check_probs(probs, 3, 1000)
    top5 = [{model.wnids[i] for i in np.argsort(-row)[:5]} for row in probs]
    assert top5[0] & {"n02123045", "n02123159", "n02124075"}  # chelsea: tabby/tiger/Egyptian cat
    assert top5[1] & {"n07920052", "n03063599", "n07930864"}  # coffee: espresso/mug/cup


def test_unknown_lite_variant(hub):
    with pytest.raises(InvalidParameterError, match="efficientnet-lite0"):
        hub.add("efficientnet-lite9", family="efficientnet-lite")


def test_conse_zero_shot_on_real_photos(lite_hub, photos):
    hub = lite_hub
    info = hub.list(kind="vlm")[0]
    assert info.kind == "vlm" and info.classes == () and info.config["top"] == 10
    vlm = hub.load(info.id)
    img = vlm.encode_images(photos)
    txt = vlm.encode_texts(["cat", "cup of coffee", "rocket"])
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1, atol=1e-3)
    assert vlm.similarity(img, txt).shape == (3, 3)
    assert vlm.zero_shot_proba(photos, ["cat", "cup of coffee", "rocket"]).argmax(1)[:2].tolist() \
        == [0, 1]


def test_family_options_are_checked(hub):
    with pytest.raises(InvalidParameterError, match="no option.*topk"):
        hub.add("efficientnet-lite0", family="conse", options={"topk": 3})
    with pytest.raises(InvalidParameterError, match="holds experts, not vlms"):
        hub.add("efficientnet-lite0", family="efficientnet-lite", kind="vlm")


def test_vlm_refuses_classes(hub, hf_clip_dir):
    with pytest.raises(InvalidParameterError, match="VLMs have no head classes"):
        hub.add(hf_clip_dir, family="hf-clip", classes=["a", "b"])


def test_hf_clip_tiny_random_model(hub, hf_clip_dir, photos):
    import torch
    from transformers import CLIPModel

    info = hub.add(hf_clip_dir, kind="vlm", family="hf-clip")
    assert info.input_spec.size == 32 and info.kind == "vlm"
    vlm = hub.load(info.id)
    img, txt = vlm.encode_images(photos), vlm.encode_texts(["a cat", "coffee"])
    assert img.shape == (3, 16) and txt.shape == (2, 16)
    ref = CLIPModel.from_pretrained(hf_clip_dir).eval()
    with torch.inference_mode():
        out = ref.get_image_features(pixel_values=torch.from_numpy(vlm.input_spec.prepare(photos)))
    out = out if isinstance(out, torch.Tensor) else out.pooler_output
    ref_img = torch.nn.functional.normalize(out, dim=1).numpy()
    np.testing.assert_allclose(img, ref_img, atol=1e-5)
    _check_probs(vlm.zero_shot_proba(photos, ["a cat", "coffee"]), 3, 2)


def test_open_clip_adapter(tmp_path):
    pytest.importorskip("open_clip", reason="open_clip needs torchvision, which has no CPU build "
                        "for torch==2.13.0 on PyPI; install mll[openclip] to run this",
                        exc_type=ImportError)
    import open_clip
    from safetensors.torch import save_file

    from mll.hub import Hub

    model = open_clip.create_model("RN50", pretrained=None)
    save_file(model.state_dict(), str(tmp_path / "rn50.safetensors"))
    with Hub.open(tmp_path / "hub") as hub:
        info = hub.add(tmp_path / "rn50.safetensors", family="open-clip", options={"arch": "RN50"})
        assert hub.load(info.id).encode_texts(["a dog"]).shape[0] == 1


def test_open_clip_without_the_library_fails_cleanly(hub, tmp_path):
    try:
        import open_clip  # noqa: F401
    except ImportError:
        (tmp_path / "w.safetensors").write_bytes(b"")
        from safetensors.numpy import save_file

        save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "w.safetensors"))
        with pytest.raises(MLLError, match="open_clip"):
            hub.add(tmp_path / "w.safetensors", family="open-clip", options={"arch": "RN50"})
    else:
        pytest.skip("open_clip is installed")
