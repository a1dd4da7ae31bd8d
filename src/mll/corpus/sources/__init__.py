"""The built-in image sources; importing this package registers them in ``SOURCES``."""

from . import gray28, icons, photos, tuxpaint  # noqa: F401
from .base import SOURCES, Item, Source, Unit

__all__ = ["SOURCES", "Item", "Source", "Unit"]
