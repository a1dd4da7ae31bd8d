"""How a server runs: who may read, and how much a request may send."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidParameterError

DEFAULT_MAX_BODY_BYTES = 1024**2  # a select request with thousands of class names fits


@dataclass(frozen=True)
class ServeSettings:
    """Settings of :func:`mll.serve.create_app`.

    ``public``: reads need no token (writes always do). ``max_body_bytes``: larger request
    bodies are refused with 413 before they are read in full.
    """

    public: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if not isinstance(self.max_body_bytes, int) or self.max_body_bytes < 1:
            raise InvalidParameterError("ServeSettings.max_body_bytes must be a positive number "
                                        f"of bytes, got {self.max_body_bytes!r}")
