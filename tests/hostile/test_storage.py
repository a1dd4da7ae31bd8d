"""Hostile and careless storage: database URLs, broken hub databases, read-only hubs, damaged
labels, and reading commands pointed at a hub that does not exist (they must never build one).

Every hub, database and label here is built in ``tmp_path`` by the test itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from mll.cli import main
from mll.errors import NotBuiltError, StoreError
from mll.hub import Hub
from mll.hub.store import ClassRow, ModelRow, Store
from mll.labels.store import DamagedLabelError, LabelStore, Outputs, label_problem, load_label

contract = pytest.mark.contract
GRAPH_V, CORPUS_V = "a" * 64, "b" * 64


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``mll ARGV`` in this process: exit code, stdout, stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    return lines[0]


def _model_row(hub: Hub, name: str = "tiny") -> ModelRow:
    """A model row whose artifact really is in the hub's artifact store."""
    src = hub.root / f"{name}.bin"
    src.write_bytes(name.encode() * 100)
    digest = hub.artifacts.put_file(src)
    chash = hashlib.sha256(name.encode()).hexdigest()
    row = ModelRow(id=chash[:12], content_hash=chash, name=name, kind="expert",
                   family="torch-safetensors",
                   source="", license="MIT", n_params=10, latency_ms=1.0, input_size=28,
                   input_channels=1, input_mean=[0.5], input_std=[0.5], backbone=None,
                   artifact_digest=digest, artifact_bytes=src.stat().st_size, config={},
                   metrics={}, created_at=datetime.now(UTC))
    row.classes = [ClassRow(idx=j, name=n, wnid=None, score=None, confirmed=False)
                   for j, n in enumerate(["a", "b"])]
    return row


@pytest.fixture
def small_hub(tmp_path) -> tuple[Path, str]:
    """A hub directory with one model (row and artifact), closed again."""
    root = tmp_path / "hub"
    with Hub.open(root) as hub:
        row = _model_row(hub)
        assert hub.store.insert(row)
    return root, row.id


def _publish_label(root: Path, model_id: str, *, n: int = 6, heads: int = 2) -> Path:
    """A whole published label for the model, written the way labelling writes one."""
    with Hub.open(root) as hub:
        info = hub.get(model_id)
    store = LabelStore(root)
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    probs = np.random.default_rng(0).dirichlet(np.ones(heads), size=n).astype(np.float32)
    dest = store.label_dir(info.content_hash, GRAPH_V, CORPUS_V)
    store.publish(dest, Outputs.from_dense(ids, probs, "expert"),
                  {"count": np.arange(3), "correct": np.zeros(3)}, {},
                  {"model_id": model_id, "kind": "expert", "images": n})
    assert label_problem(dest) is None
    return dest


# -- database URLs ------------------------------------------------------------------------------

@contract("storage", "--db that is not a URL (notaurl)",
          "one-line error saying what a database URL looks like; nothing created")
def test_malformed_db_url(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "hub", "list", "--hub", str(tmp_path / "hub"), "--db", "notaurl")
    line = one_error_line(err)
    assert code == 2 and "malformed database URL 'notaurl'" in line and "sqlite:///" in line
    assert list(tmp_path.iterdir()) == []


@contract("storage", "--db with an unknown driver (foo://...)",
          "one-line error naming the driver and giving example URLs")
def test_unknown_db_driver(capsys, tmp_path):
    code, _, err = run(capsys, "hub", "list", "--hub", str(tmp_path), "--db", "foo://host/db")
    line = one_error_line(err)
    assert code == 2 and "unknown database driver 'foo'" in line and "postgresql" in line


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


@contract("storage", "unreachable PostgreSQL server (password in the URL)",
          "one-line error naming the URL with the password masked as ***")
def test_unreachable_postgresql_masks_the_password(capsys, tmp_path):
    url = f"postgresql+psycopg://mll:s3cr3t-pw@127.0.0.1:{_closed_port()}/hub"
    start = time.monotonic()
    code, _, err = run(capsys, "hub", "list", "--hub", str(tmp_path), "--db", url)
    line = one_error_line(err)
    assert code == 2 and "s3cr3t-pw" not in err and "mll:***@127.0.0.1" in line
    assert "psycopg" in line or "server" in line  # refused, or the driver is not installed
    assert time.monotonic() - start < 30


@contract("storage", "--db sqlite:////nonexistent/dir/x.db",
          "refused: the directory does not exist (it is not created)")
def test_sqlite_url_in_a_missing_directory_creates_nothing(capsys, tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    for argv in (["hub", "list"], ["hub", "add", "efficientnet-lite0", "--family", "conse"]):
        code, _, err = run(capsys, *argv, "--hub", str(tmp_path / "hub"),
                           "--db", f"sqlite:///{missing / 'x.db'}")
        line = one_error_line(err)
        assert code == 2 and f"directory {missing} does not exist" in line
    assert not (tmp_path / "no").exists()
    with pytest.raises(StoreError, match="does not exist"):
        Store(f"sqlite:///{missing / 'x.db'}")
    assert not (tmp_path / "no").exists()


# -- broken hub databases -----------------------------------------------------------------------

@contract("storage", "0-byte mll.db (a lost database)",
          "refused by every command, verify included, with how to recover; the file is untouched")
def test_empty_database_file_is_refused_not_recreated(capsys, small_hub):
    root, _ = small_hub
    db = root / "mll.db"
    for extra in root.glob("mll.db-*"):
        extra.unlink()
    db.write_bytes(b"")
    for argv in (["hub", "list"], ["hub", "verify"], ["hub", "show", "tiny"]):
        code, _, err = run(capsys, *argv, "--hub", str(root))
        line = one_error_line(err)
        assert code == 2 and "is empty (0 bytes)" in line
        assert "restore it from a backup" in line and "move it away" in line
    assert db.stat().st_size == 0
    with pytest.raises(StoreError, match="empty"):
        Hub.open(root)  # a write-capable open refuses too


@contract("storage", "mll.db that is not an SQLite file (text)",
          "one-line error: not an SQLite database, restore or move it away")
def test_non_sqlite_database_file(capsys, tmp_path):
    root = tmp_path / "hub"
    root.mkdir()
    (root / "mll.db").write_text("these are my notes, not a database\n")
    code, _, err = run(capsys, "hub", "list", "--hub", str(root))
    assert code == 2 and "is not an SQLite database" in one_error_line(err)
    assert (root / "mll.db").read_text().startswith("these are my notes")


@contract("storage", "malformed SQLite file (valid header, garbage pages)",
          "one-line error naming the database and how to recover")
def test_malformed_sqlite_file(capsys, small_hub):
    root, _ = small_hub
    db = root / "mll.db"
    data = bytearray(db.read_bytes())
    rng = np.random.default_rng(1)
    data[100:] = rng.integers(0, 256, len(data) - 100, dtype=np.uint8).tobytes()
    for extra in root.glob("mll.db-*"):
        extra.unlink()
    db.write_bytes(bytes(data))
    code, _, err = run(capsys, "hub", "list", "--hub", str(root))
    line = one_error_line(err)
    assert code == 2 and str(db) in line and "move it away" in line


def test_fresh_hub_opened_by_many_threads_at_once(tmp_path):
    """The empty-file refusal must not trip over another process creating the hub right now."""
    from concurrent.futures import ThreadPoolExecutor

    url = f"sqlite:///{tmp_path / 'mll.db'}"

    def open_once(_):
        s = Store(url)
        s.engine.dispose()
        return s.revision()

    with ThreadPoolExecutor(4) as pool:
        revisions = set(pool.map(open_once, range(8)))
    assert len(revisions) == 1 and revisions != {""}


# -- read-only hubs -----------------------------------------------------------------------------

def _without_root_powers(*argv: str) -> subprocess.CompletedProcess:
    """Run ``mll ARGV`` as root but without the capability to ignore file permissions."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop the permission-override capability")
    cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--",
           sys.executable, "-m", "mll", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _still_writable(directory: Path) -> bool:
    probe = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner",
                            "--", "sh", "-c", f"touch '{directory}/.probe'"], capture_output=True)
    (directory / ".probe").unlink(missing_ok=True)
    return probe.returncode == 0


@contract("storage", "hub on a read-only directory (list, show; remove)",
          "reading works (database opened read-only, no lock file); a write is a one-line error")
def test_read_only_hub_can_be_read(small_hub):
    root, model_id = small_hub
    for extra in root.glob("mll.db*"):
        if extra.name != "mll.db":
            extra.unlink()
    os.chmod(root, 0o555)
    try:
        if _still_writable(root):
            pytest.skip("dropping the permission-override capability did not take effect here")
        listed = _without_root_powers("hub", "list", "--hub", str(root), "--json")
        assert listed.returncode == 0, listed.stderr
        assert [m["id"] for m in json.loads(listed.stdout)] == [model_id]
        shown = _without_root_powers("hub", "show", model_id, "--hub", str(root))
        assert shown.returncode == 0 and model_id in shown.stdout, shown.stderr
        removed = _without_root_powers("hub", "remove", model_id, "--hub", str(root))
        assert removed.returncode == 2 and "Traceback" not in removed.stderr
        assert removed.stderr.count("\n") == 1 and "read-only" in removed.stderr
        assert sorted(p.name for p in root.iterdir() if p.name.startswith("mll.db")) == ["mll.db"]
    finally:
        os.chmod(root, 0o755)
    with Hub.open(root, create=False) as hub:  # still there, untouched
        assert [m.id for m in hub.list()] == [model_id]


def test_unwritable_directory_opens_read_only(small_hub, monkeypatch):
    """The decision itself: no write access to the directory means a read-only connection."""
    root, model_id = small_hub
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK
                        else real_access(p, mode, **kw))
    store = Store(f"sqlite:///{root / 'mll.db'}", create=False)
    try:
        assert store.read_only and [i.id for i in store.infos()] == [model_id]
        with pytest.raises(StoreError, match="read-only"):
            store.delete(model_id)
    finally:
        store.engine.dispose()
    assert stat.S_IMODE(os.stat(root / "mll.db").st_mode) & stat.S_IWUSR


# -- reading commands never build ---------------------------------------------------------------

READ_COMMANDS = [
    ["hub", "list"], ["hub", "show", "x"], ["hub", "verify"], ["hub", "remove", "x"],
    ["graph", "info"], ["graph", "show", "dog"], ["graph", "match", "dog"],
    ["graph", "path", "dog", "cat"], ["data", "list"], ["data", "nodes"],
    ["data", "show", "n02084071"], ["select", "--classes", "cat,dog"],
    ["solve", "--classes", "cat,dog", "--images", "imgs"], ["label"]]


@contract("storage", "mistyped --hub for select, solve, label, hub/graph/data reads",
          "one-line 'no hub / no graph' error within seconds; nothing is built or created")
@pytest.mark.parametrize("argv", READ_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_read_commands_on_a_missing_hub_build_nothing(capsys, tmp_path, monkeypatch, argv):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLL_DB", raising=False)
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "one.png")  # solve checks its images first
    typo = tmp_path / "hbu"
    start = time.monotonic()
    code, _, err = run(capsys, *argv, "--hub", str(typo))
    line = one_error_line(err)
    assert code == 2 and time.monotonic() - start < 20
    assert "no hub" in line or "no graph" in line or "no corpus" in line or "no models" in line
    assert not typo.exists()


def test_read_commands_on_a_hub_without_graph_build_none(capsys, small_hub):
    """A hub with models but no graph: the graph commands and the matcher say so."""
    root, _ = small_hub
    for argv in (["graph", "info"], ["graph", "match", "dog"], ["select", "--classes", "a,b"]):
        code, _, err = run(capsys, *argv, "--hub", str(root))
        line = one_error_line(err)
        assert code == 2 and ("no graph" in line or "no corpus" in line), line
    assert not (root / "graph").exists()


def test_api_open_graph_does_not_build_unless_asked(tmp_path):
    from mll.graph import Matcher, open_graph

    with pytest.raises(NotBuiltError, match="mll graph build"):
        open_graph(tmp_path)
    with pytest.raises(NotBuiltError):
        Matcher.for_hub(tmp_path)
    with pytest.raises(NotBuiltError, match="no hub"):
        Hub.open(tmp_path / "typo", create=False)
    assert list(tmp_path.iterdir()) == []


# -- damaged labels -----------------------------------------------------------------------------

def _damage(label: Path, how: str) -> None:
    if how == "deleted outputs.npz":
        (label / "outputs.npz").unlink()
    elif how == "truncated outputs.npz":
        data = (label / "outputs.npz").read_bytes()
        (label / "outputs.npz").write_bytes(data[: len(data) // 2])
    elif how == "truncated stats.npz":
        data = (label / "stats.npz").read_bytes()
        (label / "stats.npz").write_bytes(data[:40])
    elif how == "summary.json not JSON":
        (label / "summary.json").write_text("{\"model_id\": ")


@contract("storage", "damaged label file (outputs.npz deleted or truncated, stats or summary cut)",
          "error names the model and 'mll label --model ID'; hub verify reports it, exit 2")
@pytest.mark.parametrize("how", ["deleted outputs.npz", "truncated outputs.npz",
                                 "truncated stats.npz", "summary.json not JSON"])
def test_damaged_label_is_named_and_found_by_verify(capsys, small_hub, how):
    root, model_id = small_hub
    label = _publish_label(root, model_id)
    code, out, _ = run(capsys, "hub", "verify", "--hub", str(root))
    assert code == 0 and "all artifacts intact and all labels readable" in out
    _damage(label, how)
    with pytest.raises(DamagedLabelError) as caught:
        load_label(label, model_id)
    msg = str(caught.value)
    assert f"model {model_id}" in msg and f"mll label --model {model_id}" in msg
    assert "\n" not in msg
    code, _, err = run(capsys, "hub", "verify", "--hub", str(root))
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("Error: 1 damaged label(s) of " + model_id)
    assert f"'mll label --model {model_id}'" in err
    code, out, _ = run(capsys, "hub", "verify", "--hub", str(root), "--json")
    assert code == 2 and json.loads(out[: out.rindex("}") + 1])["damaged_labels"][0]["id"] == \
        model_id


def test_damaged_label_is_relabelled_not_trusted(small_hub):
    """Labelling treats a damaged label as missing and publishes a whole one in its place."""
    root, model_id = small_hub
    label = _publish_label(root, model_id)
    with Hub.open(root) as hub:
        chash = hub.get(model_id).content_hash
    store = LabelStore(root)
    _damage(label, "truncated outputs.npz")
    assert not store.is_published(chash, GRAPH_V, CORPUS_V)
    assert list(store.known_outputs(chash)) == []  # its outputs are computed again
    _publish_label(root, model_id)  # what 'mll label' does next
    assert store.is_published(chash, GRAPH_V, CORPUS_V) and label_problem(label) is None
    assert not [p for p in label.parent.iterdir() if p.name.startswith(".")]


_CACHE_SCRIPT = """
import sys
import numpy as np
from pathlib import Path
from mll.text import EmbeddingCache

class Words:
    id, dim = "test-words", 4
    def encode(self, texts):
        return np.array([[len(t), t.count("a"), 1.0, 0.0] for t in texts], dtype=np.float32)

cache = EmbeddingCache(Path(sys.argv[1]), Words())
print(cache.read_only, cache.encode(["a", "bb", "new text"]).tolist())
"""


@contract("storage", "text-embedding cache of a read-only hub",
          "read without writing; new embeddings are kept in memory, so select can still match")
def test_embedding_cache_in_a_read_only_hub(tmp_path):
    cache_dir = tmp_path / "hub" / "cache"
    first = subprocess.run([sys.executable, "-c", _CACHE_SCRIPT, str(cache_dir / "text.sqlite")],
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and first.stdout.startswith("False"), first.stderr
    for extra in cache_dir.glob("text.sqlite-*"):
        extra.unlink()
    before = {p.name: p.read_bytes() for p in cache_dir.iterdir()}
    os.chmod(cache_dir, 0o555)
    try:
        if _still_writable(cache_dir):
            pytest.skip("dropping the permission-override capability did not take effect here")
        setpriv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
        again = subprocess.run([*setpriv, sys.executable, "-c", _CACHE_SCRIPT,
                                str(cache_dir / "text.sqlite")],
                               capture_output=True, text=True, timeout=120)
    finally:
        os.chmod(cache_dir, 0o755)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("True") and again.stdout.split(" ", 1)[1] == \
        first.stdout.split(" ", 1)[1]
    assert {p.name: p.read_bytes() for p in cache_dir.iterdir()} == before
