"""The ``mll`` command line: a thin layer over the Python API, one module per stage."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from ..errors import MLLError

# Stage modules, each defining a click command or group named ``command`` (or a list ``commands``).
_STAGES = ["graph", "data", "hub", "label", "select", "starter", "bench", "demo"]


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
    """Entry point: user errors become one line on stderr and exit code 2."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or os.environ.get("MLL_DEBUG")
    try:
        cli.main(args=argv, prog_name="mll", standalone_mode=False)
    except MLLError as exc:
        if debug:
            raise
        click.echo(f"Error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except KeyboardInterrupt:
        click.echo("Interrupted; completed work is kept and the next run resumes.", err=True)
        return 130
    return 0
