"""The selection stage: from class names to a plan of models, using labels only.

>>> table = LabelTable(hub_dir)                      # doctest: +SKIP
>>> sel = make_selector("chco").fit(table).select(Task.create(["sandal", "sneaker", "cat"]))  # +SKIP

Where things live: ``base`` (the selector interface and registry), ``params`` (parameter
constraints), ``result`` (what a selection returns), ``components`` (models as plan components),
``proxy`` (scoring on the proxy task), ``methods/`` (one module per method family).
"""

from ..errors import InvalidParameterError
from . import methods  # noqa: F401  (registers the methods)
from .base import Selector, selectors
from .context import TaskContext, build_context
from .plan import Component, Plan, combine
from .result import ClassChoice, Proposal, Selection
from .table import LabelTable
from .task import Task

__all__ = ["ClassChoice", "Component", "LabelTable", "Plan", "Proposal", "Selection", "Selector",
           "Task", "TaskContext", "build_context", "combine", "make_selector", "selectors"]


def make_selector(name: str, **params) -> Selector:
    """A selector by registered name (``chco``, ``p2``, ``inb``, ...) with its parameters.

    Unknown parameter names are refused here; values are checked when ``fit`` starts.
    """
    cls = selectors.get(name)
    valid = cls.param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise InvalidParameterError(f"selection method {name!r} has no parameter(s) {unknown}; "
                                    f"it takes {valid or 'none'}")
    return cls(**params)
