"""The class-list file format, read the same way by ``mll hub add`` and ``mll select``/``solve``.

Format (UTF-8, a leading byte-order mark is ignored)::

    # footwear of the shop's catalogue
    sandal
    ankle boot<TAB>n02727426
    C#

* one class per line; surrounding spaces are dropped;
* ``name<TAB>wnid`` pins the class to a graph node (a WordNet id like ``n02084071``);
* blank lines and lines starting with ``#`` (after spaces) are comments; a ``#`` anywhere else is
  part of the name ("C#", "#1 seed"), because class names are data, not code;
* names must be unique; control characters other than the one TAB are refused.

Files come from other people, so reading is bounded (``Limits.max_class_file_bytes`` and
``Limits.max_classes``) and every problem is one :class:`~mll.errors.InvalidParameterError` that
names the file and line.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from . import limits as _limits
from ._types import is_wnid
from .errors import InvalidParameterError

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")  # Unicode Cc but TAB, Zl, Zp
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def read_class_file(path: str | Path,
                    limits: _limits.Limits | None = None) -> list[tuple[str, str | None]]:
    """``(name, wnid or None)`` per class of a class file, in file order; a clear error otherwise."""
    path = Path(path)
    if not path.exists():
        raise InvalidParameterError(f"class file {path} does not exist")
    if not path.is_file():
        raise InvalidParameterError(f"class file {path} is not a regular file")
    lim = limits or _limits.current()
    _limits.check(f"class file {path} size in bytes", path.stat().st_size,
                  "max_class_file_bytes", lim)
    try:
        with open(path, "rb") as fh:  # read at most one byte past the limit (the file may grow)
            raw = fh.read(lim.max_class_file_bytes + 1)
    except OSError as exc:
        raise InvalidParameterError(f"cannot read class file {path}: {exc.strerror}") from None
    _limits.check(f"class file {path} size in bytes", len(raw), "max_class_file_bytes", lim)
    return parse_classes(decode(raw, str(path)), str(path), lim)


def decode(raw: bytes, source: str) -> str:
    """UTF-8 text with a leading BOM removed; other encodings get a message saying how to fix."""
    if raw.startswith(_UTF16_BOMS):
        raise InvalidParameterError(f"{source} is UTF-16 text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidParameterError(
            f"{source} is not UTF-8: byte {exc.start} (line {line}) is 0x{raw[exc.start]:02x}; "
            "save the file as UTF-8") from None


def parse_classes(text: str, source: str = "class list",
                  limits: _limits.Limits | None = None) -> list[tuple[str, str | None]]:
    """Parse the text of a class file (see the module docstring for the format)."""
    lim = limits or _limits.current()
    rows: list[tuple[str, str | None]] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, tab, wnid = line.partition("\t")
        name, wnid = name.strip(), wnid.strip()
        where = f"{source} line {number}"
        _check_characters(name + wnid, where)
        if not name:
            raise InvalidParameterError(f"{where}: a class name is missing before the TAB")
        if tab and wnid and not is_wnid(wnid):
            raise InvalidParameterError(
                f"{where}: {wnid!r} after the TAB is not a node id like n02084071 (one class per "
                "line, 'name<TAB>wnid' to pin its node)")
        if name in first_line:
            raise InvalidParameterError(
                f"{where}: class {name!r} is already on line {first_line[name]}; every class "
                "needs its own name")
        first_line[name] = number
        rows.append((name, wnid or None))
        _limits.check(f"{source}: the number of classes", len(rows), "max_classes", lim)
    if not rows:
        raise InvalidParameterError(
            f"{source} has no class names (one per line; lines starting with '#' are comments)")
    return rows


def _check_characters(text: str, where: str) -> None:
    """Control characters (other than the separating TAB) and line/paragraph separators."""
    bad = _CONTROL.search(text)
    if bad:
        raise InvalidParameterError(
            f"{where}: contains the control character U+{ord(bad.group()):04X}; class names are "
            "plain text, one per line")
    if "\t" in text:
        raise InvalidParameterError(f"{where}: more than one TAB; use 'name<TAB>wnid'")

