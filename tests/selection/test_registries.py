"""Registries drive the command line, the benchmark and family guessing: a new method, executor or
model family is seen everywhere once registered, with no list to update elsewhere."""

from __future__ import annotations

import json

import pytest

from mll.errors import InvalidParameterError
from mll.selection import Selector, selectors
from mll.selection.params import Interval


@pytest.fixture
def extra_method():
    """A method registered for one test (and removed after), taking ``k`` like P2."""

    class KOnly(Selector):
        name = "k-only"
        _parameter_constraints = {"k": [Interval(int, 1, None)]}
        bench_variants = ({"k": 1}, {"k": 2})

        def __init__(self, *, k: int = 1) -> None:
            self.k = k

    selectors.register("k-only")(KOnly)
    yield KOnly
    del selectors._items["k-only"]


def test_cli_options_follow_the_selector_signatures(extra_method):
    from mll.cli.select import method_params

    assert method_params("k-only", 2, None, None) == {"k": 2}
    with pytest.raises(InvalidParameterError, match=r"--k applies to inb, k-only, p2, random, not"):
        method_params("chco", 2, None, None)
    with pytest.raises(InvalidParameterError, match="--alpha applies to p2, not vlm"):
        method_params("vlm", None, 0.5, None)
    with pytest.raises(InvalidParameterError, match="--budget applies to chco, not p2"):
        method_params("p2", None, None, "3")
    assert method_params("chco", None, None, "40ms") == {"budget_ms": 40.0}
    # values are checked against the method's constraints before any hub is opened
    with pytest.raises(InvalidParameterError, match="KOnly: parameter k must be an integer"):
        method_params("k-only", 0, None, None)


def test_cli_help_lists_the_registered_methods(capsys):
    from mll.cli import main

    assert main(["select", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for name in selectors:
        assert (name in out) == selectors.get(name).zero_shot, name  # the oracle needs targets


def test_benchmark_rows_come_from_declared_variants(extra_method):
    from mll.bench.runner import bench_methods

    rows = bench_methods()
    assert rows[0] == ("chco", "chco", {})
    assert ("k-only-k1", "k-only", {"k": 1}) in rows and ("k-only-k2", "k-only", {"k": 2}) in rows
    assert ("random", "random", {"k": 1}) in rows and rows[-1][1] == "oracle"
    assert {method for _, method, _ in rows} == set(selectors)


def test_executor_choices_come_from_the_registry(capsys):
    from mll.cli import main
    from mll.labels.executors import executors

    assert main(["label", "--help"]) == 0
    out = capsys.readouterr().out
    assert f"[{'|'.join(executors.list())}]" in out


def test_families_declare_how_their_files_are_recognised(tmp_path):
    from mll.hub.adapters import families
    from mll.hub.hub import _family_of_path
    from mll.hub.safety import safe_formats

    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"\x08\x07")
    assert _family_of_path(onnx) == "onnx"
    for config, family in (({"model_type": "clip"}, "hf-clip"), ({"arch": "mlp"}, "torch-safetensors"),
                           ({"other": 1}, None)):
        d = tmp_path / f"dir-{family}"
        d.mkdir()
        (d / "config.json").write_text(json.dumps(config))
        assert _family_of_path(d) == family
    assert _family_of_path(tmp_path / "weights.xyz") is None
    text = safe_formats()
    declared = [families.get(n).SAFE_FORMAT for n in families if families.get(n).SAFE_FORMAT]
    assert len(declared) >= 3 and all(d in text for d in declared)
    assert [n for n in families if families.get(n).PREFERRED_PATCH] == ["conse"]
