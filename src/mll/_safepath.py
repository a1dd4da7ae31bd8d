"""Writing files whose names come from untrusted input (a saved predictor, a model bundle).

A name read from a file is hostile until proven otherwise: ``../../x``, ``/abs/path``, a NUL byte
or a name already taken by a symlink would otherwise let the file write outside the directory mll
unpacks it into. :func:`child_path` proves a name is one plain file name inside a directory, and
:func:`create_new` opens it without following a link and without replacing anything.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO

from .errors import InvalidParameterError

#: A plain file name: letters, digits, ``.``, ``_``, ``-``; not starting with a dot; 1-255 chars.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}")


def child_path(directory: Path, name: str, what: str = "file name") -> Path:
    """``directory / name``, after checking ``name`` is a plain file name that stays inside."""
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
        raise InvalidParameterError(
            f"{what} {name!r} is not a plain file name (letters, digits, '.', '_', '-'); "
            "the file is damaged or crafted")
    base = Path(directory).resolve()
    target = base / name
    if target.resolve().parent != base:  # a symlink already sitting at that name
        raise InvalidParameterError(f"{what} {name!r} would resolve outside {base}")
    return target


def create_new(path: Path) -> BinaryIO:
    """Open ``path`` for writing only if nothing (not even a dangling symlink) is there yet."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise InvalidParameterError(f"{path.name} appears twice in one file, or {path} already "
                                    "exists; the file is damaged or crafted") from None
    return os.fdopen(fd, "wb")
