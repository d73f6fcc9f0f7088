"""Drawing helpers every picture shares (contact sheets, RL sample grids): a font that needs no system files."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont, ImageFont


def default_font(size: int) -> ImageFont | FreeTypeFont:
    """Pillow's bundled font at `size` pixels; the fixed bitmap font where Pillow has no FreeType."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # no system fonts are read
    except TypeError:
        return ImageFont.load_default()
