"""Contact sheets: a grid of corpus images with a caption under each, for looking at a node."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..images import resize, to_rgb

CELL = 128
CAPTION = 14


def contact_sheet(images: Sequence[np.ndarray], captions: Sequence[str],
                  columns: int = 8) -> np.ndarray:
    """``HxWx3`` uint8 grid: each image fitted into a ``CELL`` square, its caption below."""
    from PIL import Image, ImageDraw

    columns = max(1, min(columns, len(images)))
    rows = max(1, -(-len(images) // columns))
    sheet = Image.new("RGB", (columns * CELL, rows * (CELL + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (img, caption) in enumerate(zip(images, captions, strict=True)):
        h, w = img.shape[:2]
        scale = (CELL - 4) / max(h, w)
        thumb = resize(to_rgb(img), (max(1, round(h * scale)), max(1, round(w * scale))))
        x, y = (k % columns) * CELL, (k // columns) * (CELL + CAPTION)
        sheet.paste(Image.fromarray(thumb), (x + (CELL - thumb.shape[1]) // 2,
                                             y + (CELL - thumb.shape[0]) // 2))
        draw.text((x + 2, y + CELL), caption[:22], fill=(90, 0, 0))
    return np.asarray(sheet)
