"""How a server runs: who may read, and how much a request may send."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidParameterError

DEFAULT_MAX_BODY_BYTES = 1024**2  # a select request with thousands of class names fits
DEFAULT_MAX_UPLOAD_BYTES = 1024**3  # a ViT-B CLIP in safetensors is about 600 MB
DEFAULT_MAX_SOLVE_BYTES = 256 * 1024**2  # a few hundred photographs, or a zip of them
# Per principal (token, or client address when anonymous): each upload is a labelling job of
# seconds to minutes; each solve runs models on the sent images.
DEFAULT_UPLOADS_PER_MINUTE, DEFAULT_UPLOAD_BURST = 6.0, 3
DEFAULT_SOLVES_PER_MINUTE, DEFAULT_SOLVE_BURST = 30.0, 10
# Route threads: enough that requests waiting for a selection never hold up reads.
DEFAULT_THREADS = 128


@dataclass(frozen=True)
class ServeSettings:
    """Settings of :func:`mll.serve.create_app`.

    ``public``: reads need no token (writes always do). ``max_body_bytes``: larger request
    bodies are refused with 413 before they are read in full. ``max_upload_bytes``: the same for
    a model's weights file (the upload route alone accepts bodies that large).
    ``max_solve_bytes``: the same for the images of a task to solve. ``keep_solves``: solved
    tasks whose report and predictor stay downloadable (older ones are pruned).
    ``upload_per_minute``/``upload_burst`` and ``solve_per_minute``/``solve_burst``: each
    principal's rate limits (:mod:`mll.serve.ratelimit`; 0 a minute: no limit).
    ``concurrent_selects``: selections computed at once (0: three per core); more wait their turn,
    so pure-Python selection work never crowds the reads out of the interpreter. ``threads``:
    the thread pool the routes run in.
    """

    public: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_solve_bytes: int = DEFAULT_MAX_SOLVE_BYTES
    keep_solves: int = 50
    upload_per_minute: float = DEFAULT_UPLOADS_PER_MINUTE
    upload_burst: int = DEFAULT_UPLOAD_BURST
    solve_per_minute: float = DEFAULT_SOLVES_PER_MINUTE
    solve_burst: int = DEFAULT_SOLVE_BURST
    concurrent_selects: int = 0
    threads: int = DEFAULT_THREADS

    def __post_init__(self) -> None:
        if isinstance(self.keep_solves, bool) or not isinstance(self.keep_solves, int) \
                or self.keep_solves < 1:
            raise InvalidParameterError("ServeSettings.keep_solves must be a positive number "
                                        f"of solves, got {self.keep_solves!r}")
        for name in ("max_body_bytes", "max_upload_bytes", "max_solve_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidParameterError(f"ServeSettings.{name} must be a positive number "
                                            f"of bytes, got {value!r}")
        for name in ("concurrent_selects", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (name == "threads"):
                raise InvalidParameterError(f"ServeSettings.{name} must be a whole number >= "
                                            f"{int(name == 'threads')}, got {value!r}")
        for action in ("upload", "solve"):
            check_rate(getattr(self, f"{action}_per_minute"), getattr(self, f"{action}_burst"),
                       f"ServeSettings.{action}_")


def check_rate(per_minute: object, burst: object, owner: str = "rate limit ") -> None:
    """Refuse a rate (requests a minute, 0 for no limit) or burst that is not a bound."""
    import math

    if isinstance(per_minute, bool) or not isinstance(per_minute, (int, float)) \
            or not math.isfinite(per_minute) or per_minute < 0:
        raise InvalidParameterError(f"{owner}per_minute must be a number >= 0 (0: no limit), "
                                    f"got {per_minute!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise InvalidParameterError(f"{owner}burst must be an integer >= 1, got {burst!r}")
