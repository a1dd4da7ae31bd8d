"""One exception hierarchy for every user-facing error in mll.

The CLI turns any :class:`MLLError` into a one-line message and exit code 2; everything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def short_repr(value: object, width: int = 40) -> str:
    """``repr(value)`` cut to ``width`` characters, for quoting untrusted values in messages."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name: one line a user can read."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class MLLError(Exception):
    """Base class of the errors a user can cause and fix."""


class InvalidParameterError(MLLError, ValueError, TypeError):
    """A parameter or input has the wrong value or type."""


class UnknownNameError(MLLError, KeyError):
    """A name (model, node, method, term) that does not exist; carries close matches."""

    def __init__(self, kind: str, name: str, choices: Iterable[str] = (), hint: str = "") -> None:
        self.kind, self.name = kind, name
        self.suggestions = difflib.get_close_matches(name, list(choices), n=5, cutoff=0.6)
        msg = f"unknown {kind} {name!r}"
        if self.suggestions:
            msg += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class NotFittedError(MLLError, ValueError, AttributeError):
    """An estimator-like object was used before ``fit``."""


class StoreError(MLLError):
    """The hub's database or artifact store cannot do what was asked."""


class AmbiguousNameError(StoreError, InvalidParameterError):
    """A name or id prefix that fits several records; the user gives more of it (or the id)."""


class ArtifactIntegrityError(StoreError):
    """A stored artifact does not match its content hash."""


class LimitExceededError(InvalidParameterError):
    """An input is larger than an operator-set limit (pixels, bytes, ratio, shape)."""


class NotBuiltError(MLLError):
    """A stage's output (graph, corpus, labels, models) does not exist yet; build it first."""


class LabellingFailedError(MLLError):
    """Some models could not be labelled; the others were, and each failure says how to fix it."""


class MissingDependencyError(MLLError):
    """A package, system file or data set mll needs is not installed."""


class ExternalServiceError(MLLError):
    """A service mll was pointed at (the LLM endpoint) failed or gave no usable answer."""


class UnsafeFormatError(InvalidParameterError):
    """A model file would need pickle (arbitrary code) to load."""


class MLLWarning(UserWarning):
    """Warnings mll emits about inputs it can still handle."""
