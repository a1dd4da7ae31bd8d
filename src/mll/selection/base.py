"""The selector interface every selection method implements, and the registry of methods.

A method is a :class:`Selector` subclass registered in :data:`selectors`: keyword-only
hyper-parameters in ``__init__`` (stored under the same names), their ``_parameter_constraints``,
and ``_plan(ctx, scorer)`` returning a :class:`~mll.selection.result.Proposal`. The base class
gives it, as scikit-learn's estimators have: ``get_params``/``set_params`` from the signature,
validation of every parameter when ``fit`` starts, ``NotFittedError`` before ``fit``, and a
``select`` that changes nothing on the selector (what it learns for a task is returned in the
:class:`~mll.selection.result.Selection`).
"""

from __future__ import annotations

import inspect
import time
from typing import Any, ClassVar

from .._registry import Registry
from ..errors import InvalidParameterError, NotBuiltError, NotFittedError
from .context import TaskContext, build_context
from .params import Constraint, check_params
from .proxy import ProxyScorer
from .result import Proposal, Selection, assemble
from .task import Task

selectors: Registry[type[Selector]] = Registry("selection method")


class Selector:
    """Base class: keyword-only hyper-parameters in ``__init__``, ``fit(table)``, ``select(task)``."""

    name: ClassVar[str] = "base"
    # per parameter, the constraints a value may satisfy (any one); see mll.selection.params
    _parameter_constraints: ClassVar[dict[str, list[Constraint | None]]] = {}
    # the parameter sets the benchmark runs this method with (one row per set)
    bench_variants: ClassVar[tuple[dict[str, Any], ...]] = ({},)
    # chooses from labels alone; False for references that need labelled target images
    zero_shot: ClassVar[bool] = True

    @classmethod
    def param_names(cls) -> list[str]:
        """The hyper-parameters, read from ``__init__``'s signature (keyword-only by contract)."""
        if cls.__init__ is object.__init__:
            return []
        names = []
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
            if p.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(f"{cls.__name__}.__init__: parameter {p.name!r} must be keyword-only")
            names.append(p.name)
        return names

    def get_params(self) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self.param_names()}

    def set_params(self, **params: Any) -> Selector:
        """Change hyper-parameters (validated at the next ``fit``, as scikit-learn does)."""
        valid = self.param_names()
        for key in params:
            if key not in valid:
                raise InvalidParameterError(f"{type(self).__name__} has no parameter {key!r}; "
                                            f"it has {sorted(valid) or 'none'}")
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def validate_params(self) -> None:
        """Raise :class:`InvalidParameterError` naming the first parameter out of its constraints."""
        check_params(type(self).__name__, self.get_params(), self._parameter_constraints)

    def fit(self, table) -> Selector:
        """Validate every parameter, then take the label table (loading its labels if lazy)."""
        self.validate_params()
        if not table.models:
            raise NotBuiltError("the hub has no labelled models; add models and run 'mll label'")
        self.table_ = table
        return self

    def select(self, task: Task, context: TaskContext | None = None) -> Selection:
        """Choose models for ``task`` (``context``: one already built for it, to share matching)."""
        if "table_" not in self.__dict__:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(label_table) first")
        if context is not None and context.task != task:
            raise InvalidParameterError("the context given to select() was built for another task")
        start = time.perf_counter()
        ctx = context or build_context(self.table_, task)
        scorer = ProxyScorer(self.table_, ctx)
        proposal = self._plan(ctx, scorer)
        return assemble(self.name, scorer, proposal, time.perf_counter() - start)

    def _plan(self, ctx: TaskContext, scorer: ProxyScorer) -> Proposal:
        """The method itself: a plan for the task, read from ``self.table_``; must not set
        attributes on ``self``."""
        raise NotImplementedError
