"""The ``mll graph`` commands through the real entry point."""

from __future__ import annotations

import json

from mll.cli import main


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_info_show_path_match(real_hub, capsys, matcher):
    code, out, _ = run(capsys, "graph", "info", "--hub", str(real_hub), "--json")
    info = json.loads(out)
    assert code == 0 and {"version", "nodes", "edges", "root"} <= set(info)
    assert info["nodes"] == 82115 and info["root"] == "n00001740"

    code, out, _ = run(capsys, "graph", "show", "dog", "--hub", str(real_hub), "--json")
    dog = json.loads(out)
    assert dog["wnid"] == "n02084071" and dog["definition"].startswith("a member of the genus")
    assert all("wnid" in p for p in dog["parents"])

    code, out, _ = run(capsys, "graph", "path", "dog", "cat", "--hub", str(real_hub), "--json")
    path = json.loads(out)
    assert path["distance"] == 4 and path["path"][0]["wnid"] == "n02084071"

    code, out, _ = run(capsys, "graph", "match", "mouse", "keyboard", "--context", "monitor",
                       "--hub", str(real_hub), "--json")
    terms = json.loads(out)["terms"]
    assert [t["term"] for t in terms] == ["mouse", "keyboard"]
    assert terms[0]["candidates"][0]["wnid"] == "n03793489"
    assert {"wnid", "name", "score"} <= set(terms[0]["candidates"][0])


def test_errors_are_one_line(real_hub, capsys):
    code, out, err = run(capsys, "graph", "show", "flibber", "--hub", str(real_hub))
    assert code == 2 and out == "" and err.count("\n") == 1 and "did you mean" in err
    code, _, err = run(capsys, "graph", "show", "", "--hub", str(real_hub))
    assert code == 2 and "empty" in err
    code, _, err = run(capsys, "graph", "match", "dog", " ", "--hub", str(real_hub))
    assert code == 2 and "empty class name" in err


def test_every_command_has_help():
    from mll.cli import cli

    def walk(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, path + [name])

    for path, cmd in walk(cli, []):
        assert cmd.help or cmd.short_help, f"'mll {' '.join(path)}' has no help text"
