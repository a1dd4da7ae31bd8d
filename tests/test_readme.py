"""The README's promises, checked as written: its Python block runs verbatim, ``~`` paths work."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# README classes -> (corpus source, WordNet node) of real eval images of that class
README_CLASSES = {"sandal": ("fashion-mnist", "n04133789"), "sneaker": ("fashion-mnist", "n03472535"),
                  "zebra": ("animal-mnist", "n02391049"), "giraffe": ("animal-mnist", "n02439033")}
PER_CLASS = 5


def readme_python_block() -> str:
    """The one ```python block of README.md, exactly as a reader copies it."""
    blocks = re.findall(r"^```python\n(.*?)^```$", (REPO / "README.md").read_text(), re.S | re.M)
    assert len(blocks) == 1, f"README.md should have one Python block, found {len(blocks)}"
    return blocks[0]


@pytest.fixture
def home_with_hub(starter_hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME whose documented default hub (``~/.local/share/mll/hub``) is the starter hub."""
    home = tmp_path / "home"
    (home / ".local" / "share" / "mll").mkdir(parents=True)
    (home / ".local" / "share" / "mll" / "hub").symlink_to(starter_hub.resolve(),
                                                        target_is_directory=True)
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_DATA_HOME", "MLL_HUB", "MLL_DB"):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the block saves "task.zip" in the current directory
    return home


def test_readme_python_block_runs_verbatim(home_with_hub: Path, starter_hub: Path) -> None:
    from mll.corpus import Corpus
    from mll.reuse import load_predictor

    corpus = Corpus.open(starter_hub)
    ids, truth = [], []
    for k, (source, wnid) in enumerate(README_CLASSES.values()):
        records = corpus.records(role="eval", source=source, wnids=wnid)[:PER_CLASS]
        assert len(records) == PER_CLASS, f"the starter hub has too few eval images of {wnid}"
        ids += [r.image_id for r in records]
        truth += [k] * PER_CLASS
    images = corpus.load(ids)

    namespace: dict = {"images": images}
    exec(compile(readme_python_block(), "README.md", "exec"), namespace)  # noqa: S102

    selection, labels = namespace["selection"], np.asarray(namespace["labels"])
    assert namespace["table"].hub_dir == starter_hub.resolve()
    assert 0.0 < selection.predicted_accuracy <= 1.0
    assert labels.shape == (len(images),)
    # the selection never saw these images; far above the 0.25 of guessing on 4 classes
    assert (labels == np.asarray(truth)).mean() >= 0.6
    saved = Path("task.zip")
    assert saved.is_file()
    assert np.array_equal(load_predictor(saved).predict(images), labels)  # "no hub needed"


def test_tilde_reaches_the_same_hub_at_every_entry_point(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``~`` means HOME for the stages' own path helpers, not a directory named '~'."""
    from mll.config import HubPaths
    from mll.corpus.builder import CorpusLayout
    from mll.errors import NotBuiltError
    from mll.labels import label_hub
    from mll.selection import LabelTable

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    hub = tmp_path / "hub"
    hub.mkdir()
    assert CorpusLayout.of("~/hub").root == HubPaths(hub).corpus
    assert LabelTable("~/hub").hub_dir == hub
    with pytest.raises(NotBuiltError, match=re.escape(str(hub))):  # looked in HOME/hub
        label_hub("~/hub")
    with pytest.raises(NotBuiltError):
        LabelTable("~/hub").models  # noqa: B018 - loading is what raises
    assert not (tmp_path / "~").exists()
