"""The ``mll`` command line: a thin layer over the Python API, one module per stage."""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys

import click

from ..errors import MLLError

# Stage modules, each defining a click command or group named ``command`` (or a list ``commands``).
_STAGES = ["graph", "data", "hub", "label", "select", "starter", "bench", "demo", "serve"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors too.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool) -> None:
    """mll: label a hub of image models on a semantic graph and solve new tasks from class names."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"debug": debug}


for _name in _STAGES:
    _module = importlib.import_module(f"{__name__}.{_name}")
    for _command in getattr(_module, "commands", None) or [_module.command]:
        cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: every user error is one ``Error: ...`` line on stderr and exit code 2.

    That covers mll's own errors, usage errors and what the operating system refuses on a user's
    path (permission denied, disk full); ``--debug`` (or ``MLL_DEBUG``) shows their tracebacks.
    Anything else is a bug and keeps its traceback.
    """
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or os.environ.get("MLL_DEBUG")
    try:
        cli.main(args=argv, prog_name="mll", standalone_mode=False)
    except MLLError as exc:
        if debug:
            raise
        return _fail(str(exc))
    except click.exceptions.NoArgsIsHelpError as exc:  # bare 'mll' or 'mll hub': the help text
        exc.show()
        return 2
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        return _fail(exc.format_message().rstrip(".") + where)
    except click.ClickException as exc:
        return _fail(exc.format_message())
    except KeyboardInterrupt:
        click.echo("Interrupted; completed work is kept and the next run resumes.", err=True)
        return 130
    except OSError as exc:
        if debug:
            raise
        return _fail(_os_message(exc))
    return 0


def _fail(message: str) -> int:
    click.echo("Error: " + " ".join(message.splitlines()), err=True)
    return 2


_OS_HINTS = {errno.EACCES: "check its permissions", errno.EPERM: "check its permissions",
             errno.ENOSPC: "free some space or choose another place",
             errno.EROFS: "choose a writable place", errno.EDQUOT: "free some space"}


def _os_message(exc: OSError) -> str:
    """``cannot use PATH: Permission denied; check its permissions`` from an OSError."""
    if not exc.filename:
        return f"{exc.strerror or exc} (--debug shows where)"
    paths = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
    hint = _OS_HINTS.get(exc.errno or 0)
    return f"cannot use {paths}: {exc.strerror or exc}" + (f"; {hint}" if hint else "")
