"""The command line's contract with a careless user: every mistake is one ``Error: ...`` line on
stderr and exit code 2; ``--help`` keeps working; real bugs keep their tracebacks."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from mll.cli import main

contract = pytest.mark.contract


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Usage:" not in err and "Try " not in err and "Traceback" not in err
    return lines[0]


@contract("command line", "unknown option (mll hub list --bogus)",
          "one line 'Error: No such option ...' pointing at the command's --help; exit 2")
def test_unknown_option_is_one_line(capsys, tmp_path):
    code, out, err = run(capsys, "hub", "list", "--bogus", "--hub", str(tmp_path))
    line = one_error_line(err)
    assert code == 2 and out == ""
    assert "--bogus" in line and "see 'mll hub list --help'" in line


@contract("command line", "mistyped command (mll hub lst)",
          "one line naming the close command; exit 2")
def test_unknown_command_suggests_the_close_one(capsys):
    code, _, err = run(capsys, "hub", "lst")
    line = one_error_line(err)
    assert code == 2 and "'lst'" in line and "'list'" in line


@pytest.mark.parametrize(("argv", "expect"), [
    (["hub", "add"], "Missing argument 'MODEL'"),
    (["graph", "match", "dog", "--top", "0"], "Invalid value for '--top'"),
    (["select", "--k", "many", "--classes", "a,b"], "Invalid value for '--k'"),
    (["label", "--executor", "gpu"], "Invalid value for '--executor'"),
], ids=["missing argument", "out of range", "not a number", "not a choice"])
@contract("command line", "missing argument, out-of-range or ill-typed option value",
          "one line saying which argument or option and why; exit 2")
def test_usage_errors_are_one_line(capsys, argv, expect):
    code, _, err = run(capsys, *argv)
    assert code == 2 and expect in one_error_line(err)


@contract("command line", "--help on the program and on a command",
          "the help text on stdout; exit 0")
def test_help_still_works(capsys):
    for argv in (["--help"], ["hub", "--help"], ["hub", "list", "-h"]):
        code, out, err = run(capsys, *argv)
        assert code == 0 and out.startswith("Usage: mll") and err == ""


@pytest.mark.parametrize(("error", "says"), [
    (PermissionError(errno.EACCES, "Permission denied", "/srv/hub/mll.db"),
     "Error: cannot use /srv/hub/mll.db: Permission denied; check its permissions"),
    (OSError(errno.ENOSPC, "No space left on device", "/srv/hub/labels"),
     "Error: cannot use /srv/hub/labels: No space left on device; free some space"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out.csv"),
     "Error: cannot use /mnt/ro/out.csv: Read-only file system; choose a writable place"),
], ids=["permission denied", "disk full", "read-only file system"])
@contract("command line", "the system refuses a user's path (permission denied, disk full, "
          "read-only file system)", "one line naming the path, the reason and what to do; exit 2 "
          "(--debug shows the traceback)")
def test_os_errors_on_user_paths_are_one_line(capsys, monkeypatch, error, says):
    import mll.hub

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(mll.hub.Hub, "open", classmethod(refuse))
    code, _, err = run(capsys, "hub", "list")
    assert code == 2 and one_error_line(err).startswith(says)
    with pytest.raises(type(error)):
        main(["--debug", "hub", "list"])


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Only user errors are shortened: anything else is a bug and must be seen in full."""
    import mll.hub

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(mll.hub.Hub, "open", classmethod(broken))
    with pytest.raises(ZeroDivisionError):
        main(["hub", "list"])


def test_installed_command_prints_one_line(tmp_path):
    """The real entry point (``python -m mll``, as the ``mll`` script runs it)."""
    done = subprocess.run([sys.executable, "-m", "mll", "graph", "info", "--bogus"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("Error: No such option") and "--bogus" in line
    assert line.endswith("(see 'mll graph info --help')")
