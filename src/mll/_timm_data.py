"""Text files of the timm wheel: the ImageNet-1k and ImageNet-21k synset lists and glosses.

timm is installed without its dependencies only for these files; importing it would pull in
torchvision, so they are located through package metadata and read by path. Both the graph stage
(which nodes people picture) and the hub stage (the ImageNet-1k label space) read them.
"""

from __future__ import annotations

from pathlib import Path

from .errors import MissingDependencyError

_INFO = "timm/data/_info"


def timm_info_file(name: str) -> Path:
    """Path of ``timm/data/_info/<name>``; MissingDependencyError when timm is not installed."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        path = Path(str(distribution("timm").locate_file(f"{_INFO}/{name}")))
    except PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise MissingDependencyError(f"the ImageNet class lists ({name}) come from the timm wheel; "
                                     "install it with 'pip install --no-deps timm==1.0.31'")
    return path
