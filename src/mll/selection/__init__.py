"""The selection stage: from class names to a plan of models, using labels only.

>>> table = LabelTable(hub_dir)                      # doctest: +SKIP
>>> sel = make_selector("chco").fit(table).select(Task.create(["sandal", "sneaker", "cat"]))  # +SKIP
"""

from . import methods  # noqa: F401  (registers the methods)
from .base import ClassChoice, Selection, Selector, selectors
from .context import TaskContext, build_context
from .plan import Component, Plan, combine
from .table import LabelTable
from .task import Task

__all__ = ["ClassChoice", "Component", "LabelTable", "Plan", "Selection", "Selector", "Task",
           "TaskContext", "build_context", "combine", "make_selector", "selectors"]


def make_selector(name: str, **params) -> Selector:
    """A selector by registered name (``chco``, ``p2``, ``inb``, ...) with its parameters."""
    return selectors.get(name)(**params)
