"""Class-list files from careless or hostile users: one parser, one format, one-line errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mll.classfile import read_class_file
from mll.cli import main
from mll.errors import InvalidParameterError, LimitExceededError, MLLWarning
from mll.hub import read_classes
from mll.selection import Task

contract = pytest.mark.contract


def _write(tmp_path, data: bytes, name: str = "classes.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@contract("class files and names", "a class file saved with a UTF-8 byte-order mark",
          "the mark is ignored; the first class keeps its name")
def test_bom_is_not_part_of_the_first_name(tmp_path):
    path = _write(tmp_path, b"\xef\xbb\xbfsandal\nsneaker\n")
    assert read_class_file(path) == [("sandal", None), ("sneaker", None)]
    assert Task.from_file(path).classes == ("sandal", "sneaker")


@contract("class files and names", "a Latin-1 (not UTF-8) class file",
          "one-line error naming the file, line and byte offset; says to save it as UTF-8")
def test_non_utf8_names_file_line_and_byte(tmp_path):
    path = _write(tmp_path, b"sandal\ncaf\xe9\n")
    with pytest.raises(InvalidParameterError, match=r"byte 10 \(line 2\) is 0xe9; save the file "
                                                    r"as UTF-8") as err:
        read_class_file(path)
    assert str(path) in str(err.value)


@contract("class files and names", "a UTF-16 class file (Windows Notepad 'Unicode')",
          "one-line error: save it as UTF-8")
def test_utf16_is_named(tmp_path):
    path = _write(tmp_path, "sandal\nsneaker\n".encode("utf-16"))
    with pytest.raises(InvalidParameterError, match="is UTF-16 text; save it as UTF-8"):
        read_class_file(path)


@contract("class files and names", "a class named 'C#' and '#' comment lines",
          "only lines starting with '#' are comments; hub add and select read the same classes")
def test_one_parser_keeps_hash_inside_names(tmp_path):
    path = _write(tmp_path, b"# languages\n  # indented comment\nC#\nF# \n\nrust\r\n")
    rows = [("C#", None), ("F#", None), ("rust", None)]
    assert read_classes(path) == rows
    assert Task.from_file(path).classes == ("C#", "F#", "rust")


@contract("class files and names", "'name<TAB>wnid' lines, one with a malformed wnid",
          "good lines pin their node; the bad one is an error naming the line")
def test_pinned_nodes_and_bad_wnid(tmp_path):
    good = _write(tmp_path, b"sandal\tn04133789\nsneaker\n", "good.txt")
    assert read_class_file(good) == [("sandal", "n04133789"), ("sneaker", None)]
    assert Task.from_file(good).pinned == {"sandal": "n04133789"}
    bad = _write(tmp_path, b"sandal\tdog\nsneaker\n", "bad.txt")
    with pytest.raises(InvalidParameterError, match=r"line 1: 'dog' after the TAB is not a node"):
        read_class_file(bad)


@contract("class files and names", "the same class name on two lines",
          "error naming both lines")
def test_duplicate_names(tmp_path):
    path = _write(tmp_path, b"cat\ndog\ncat\n")
    with pytest.raises(InvalidParameterError, match=r"line 3: class 'cat' is already on line 1"):
        read_class_file(path)


@contract("class files and names", "an empty file, or only comments and blank lines",
          "error: the file has no class names")
@pytest.mark.parametrize("data", [b"", b"\n\n  \n# nothing\n", b"\xef\xbb\xbf"])
def test_empty_files(tmp_path, data):
    with pytest.raises(InvalidParameterError, match="has no class names"):
        read_class_file(_write(tmp_path, data))


@contract("class files and names", "control characters (NUL, ESC, U+2028) inside a name",
          "error naming the line and the character")
@pytest.mark.parametrize("data, code", [(b"cat\nd\x00og\n", "U+0000"),
                                        (b"cat\n\x1b[31mdog\n", "U+001B"),
                                        ("cat\ndog\u2028fish\n".encode(), "U+2028")])
def test_control_characters(tmp_path, data, code):
    with pytest.raises(InvalidParameterError,
                       match=re.escape(f"line 2: contains the control character {code}")):
        read_class_file(_write(tmp_path, data))


@contract("class files and names", "a class file larger than MLL_MAX_CLASS_FILE_BYTES",
          "refused before it is read, naming the limit to raise")
def test_size_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("MLL_MAX_CLASS_FILE_BYTES", "1000")
    path = _write(tmp_path, b"x" * 600 + b"\n" + b"y" * 600 + b"\n")
    with pytest.raises(LimitExceededError, match="MLL_MAX_CLASS_FILE_BYTES"):
        read_class_file(path)


@contract("class files and names", "more classes than MLL_MAX_CLASSES",
          "refused with the limit to raise")
def test_count_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("MLL_MAX_CLASSES", "3")
    path = _write(tmp_path, b"a\nb\nc\nd\n")
    with pytest.raises(LimitExceededError, match="MLL_MAX_CLASSES"):
        read_class_file(path)
    with pytest.raises(LimitExceededError, match="MLL_MAX_CLASSES"):
        Task.create(["a", "b", "c", "d"])


@contract("class files and names", "a missing class file or a directory in its place",
          "one-line error")
def test_missing_and_directory(tmp_path):
    with pytest.raises(InvalidParameterError, match="does not exist"):
        read_class_file(tmp_path / "nope.txt")
    with pytest.raises(InvalidParameterError, match="is not a regular file"):
        read_class_file(tmp_path)


@contract("class files and names", "a non-UTF-8 class file given to 'mll select'",
          "one 'Error:' line on stderr, exit code 2, no traceback")
def test_cli_error_is_one_line(tmp_path, capsys):
    path = _write(tmp_path, b"\xff\xfeg\x00")  # a truncated UTF-16 file
    code = main(["select", "--classes-file", str(path), "--hub", str(tmp_path / "hub")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("Error: ") and "UTF-8" in err[0]


def _toy():
    """The selection tests' toy label table builder (a 14-node WordNet, synthetic labels)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "selection" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_toy_selection", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _toy_table(directory):
    """The toy table, its matcher searching every node's caption as a real hub's search set does
    (so a gibberish name gets its nearest captions as guesses, as on a real hub)."""
    from mll.graph.match import Captions, Matcher

    toy = _toy()

    def matcher(graph, encoder, where):
        (where / "graph").mkdir(exist_ok=True)
        return Matcher(graph, encoder, Captions(graph, encoder, where / "graph",
                                                nodes=np.arange(len(graph))))

    toy._matcher = matcher
    return toy.build_toy_table(directory)


@pytest.fixture(scope="module")
def toy_table(tmp_path_factory):
    return _toy_table(tmp_path_factory.mktemp("toy"))


@contract("class files and names", "a best match without a lexical hit, a weak one, a strong one",
          "matches nothing / used but reported as uncertain / used (thresholds fitted on real "
          "and gibberish names)")
def test_match_status_thresholds():
    from mll.graph.match import NO_MATCH_BELOW, UNCERTAIN_BELOW, Candidate, match_status

    def cand(score, lexical):
        return Candidate("n00000001", "x", score, lexical, {})

    assert match_status(None) == "none"
    assert match_status(cand(NO_MATCH_BELOW - 0.01, False)) == "none"
    assert match_status(cand(NO_MATCH_BELOW - 0.01, True)) == "uncertain"
    assert match_status(cand(UNCERTAIN_BELOW - 0.01, False)) == "uncertain"
    assert match_status(cand(UNCERTAIN_BELOW, True)) == "confident"


@contract("class files and names", "'mll select' with a gibberish class name ('xqzzkk') among "
          "real ones", "a warning names the class and its best guess; JSON carries "
          "match_confidence and uncertain per class; the rest is selected as usual")
def test_select_reports_a_name_that_matches_nothing(toy_table):
    from mll.selection import make_selector

    sel = make_selector("chco").fit(toy_table).select(Task.create(["dog", "cat", "xqzzkk"]))
    assert any("'xqzzkk' matches no concept (best guess" in w for w in sel.warnings)
    classes = {c["name"]: c for c in sel.to_dict()["classes"]}
    assert classes["xqzzkk"]["uncertain"] is True
    assert classes["xqzzkk"]["match_confidence"] < 0.45
    assert classes["dog"]["uncertain"] is False and classes["dog"]["match_confidence"] >= 0.6
    assert classes["dog"]["models"]


@contract("class files and names", "'mll select' where no class name matches any concept",
          "one-line error listing the best guesses and saying to check the spelling")
def test_select_refuses_a_task_that_matches_nothing(toy_table):
    from mll.selection import make_selector

    with pytest.raises(InvalidParameterError, match="none of the classes matches a concept"):
        make_selector("chco").fit(toy_table).select(Task.create(["xqzzkk", "qwrtpz"]))


@contract("class files and names", "'hub add' of an expert with a class name that matches no "
          "concept", "that class stays unmapped (not a poor match) and a warning says to review "
          "it with 'mll hub map'")
def test_hub_add_leaves_gibberish_unmapped_and_says_so(tmp_path, monkeypatch):
    from mll.hub import Hub
    from mll.hub.archs import build

    graph_dir = tmp_path / "toy"
    graph_dir.mkdir()
    matcher = _toy_table(graph_dir).matcher
    monkeypatch.setattr(Hub, "_graph_ready", lambda self: True)
    monkeypatch.setattr(Hub, "_matcher", lambda self: matcher)
    (tmp_path / "hub").mkdir()
    with Hub.open(tmp_path / "hub") as hub:
        with pytest.warns(MLLWarning, match=r"1 class\(es\) match no concept and stay unmapped: "
                                            r"'xqzzkk'.*mll hub map"):
            info = hub.add(build("small-cnn", {"n_classes": 3, "width": 4}),
                           classes=["dog", "cat", "xqzzkk"])
    wnids = {c.name: c.wnid for c in info.classes}
    assert wnids["dog"] == _toy().wnid(3) and wnids["cat"] == _toy().wnid(4)
    assert wnids["xqzzkk"] is None


@contract("class files and names", "a name with no candidate at all (a graph whose caption search "
          "set is empty)", "no candidates for that name, no crash; the other names still match")
def test_name_without_any_candidate(tmp_path):
    from mll.graph.graph import SemanticGraph
    from mll.graph.match import Captions, Matcher

    toy = _toy()
    graph = SemanticGraph.from_wordnet(toy.write_wordnet(tmp_path / "wordnet", toy.SYNSETS, lexfile=6))
    encoder = toy.HashingEncoder()
    matcher = Matcher(graph, encoder, Captions(graph, encoder, tmp_path, nodes=np.array([], int)))
    dog, nothing = matcher.match(["dog", "xqzzkk"], top=3)
    assert dog[0].wnid == toy.wnid(3) and nothing == []
