"""The serve stage: the hub as a shared HTTP service (``mll serve``).

``create_app(hub, db, settings)`` builds the ASGI application (FastAPI; run by uvicorn) over the
Python API; :class:`~mll.serve.tokens.TokenStore` keeps its API tokens in the hub database.
FastAPI is imported only by :func:`create_app`, so ``mll token`` works without it.
"""

from __future__ import annotations

from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def create_app(hub=None, db=None, settings: ServeSettings | None = None):
    """The ASGI application of ``mll serve`` (see :func:`mll.serve.app.create_app`)."""
    try:
        from .app import create_app as build
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("fastapi", "starlette", "pydantic"):
            raise
        from ..errors import MissingDependencyError

        raise MissingDependencyError(f"mll serve needs {exc.name}; install mll[serve]") from None
    return build(hub, db, settings)
