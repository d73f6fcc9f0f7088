"""Pillow rendering of scene graphs: each class a distinct glyph (silhouette x inner pattern), 10 colours, text, artifacts.

Pillow only, with its bundled default font (no system fonts), so images are identical on every machine.
"""

from __future__ import annotations

import hashlib
import math
import random
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from rationalrewards.plumbing.drawing import default_font
from rationalrewards.sketch._vocab import BACKGROUND, COCO_CLASSES, COLORS
from rationalrewards.sketch.scene import Artifact, SceneGraph, SceneObject

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

SILHOUETTES = (
    "circle",
    "square",
    "triangle",
    "diamond",
    "hexagon",
    "star",
    "cross",
    "pentagon",
    "wide",
    "tall",
    "trapezoid",
    "arrow",
)
PATTERNS = ("plain", "hstripes", "vstripes", "dots", "grid", "diagonal", "ring", "checker")


def glyph_of(cls: str) -> tuple[str, str]:
    """(silhouette, pattern) of a class: the 80 COCO classes get distinct pairs; other nouns a stable hashed pair."""
    if cls in COCO_CLASSES:
        index = COCO_CLASSES.index(cls)
    else:
        index = int(hashlib.sha256(cls.encode()).hexdigest(), 16) % (len(SILHOUETTES) * len(PATTERNS))
    return SILHOUETTES[index % len(SILHOUETTES)], PATTERNS[(index // len(SILHOUETTES)) % len(PATTERNS)]


def _polygon(kind: str, box: tuple[float, float, float, float]) -> list[tuple[float, float]] | None:
    x0, y0, x1, y1 = box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0

    def regular(n: int, rotation: float = -math.pi / 2) -> list[tuple[float, float]]:
        return [
            (
                cx + w / 2 * math.cos(rotation + 2 * math.pi * i / n),
                cy + h / 2 * math.sin(rotation + 2 * math.pi * i / n),
            )
            for i in range(n)
        ]

    if kind == "triangle":
        return [(cx, y0), (x1, y1), (x0, y1)]
    if kind == "diamond":
        return [(cx, y0), (x1, cy), (cx, y1), (x0, cy)]
    if kind == "hexagon":
        return regular(6, 0)
    if kind == "pentagon":
        return regular(5)
    if kind == "star":
        points = []
        for i in range(10):
            r = 0.5 if i % 2 == 0 else 0.22
            a = -math.pi / 2 + math.pi * i / 5
            points.append((cx + w * r * math.cos(a), cy + h * r * math.sin(a)))
        return points
    if kind == "cross":
        t = 0.18
        return [
            (cx - w * t, y0),
            (cx + w * t, y0),
            (cx + w * t, cy - h * t),
            (x1, cy - h * t),
            (x1, cy + h * t),
            (cx + w * t, cy + h * t),
            (cx + w * t, y1),
            (cx - w * t, y1),
            (cx - w * t, cy + h * t),
            (x0, cy + h * t),
            (x0, cy - h * t),
            (cx - w * t, cy - h * t),
        ]
    if kind == "trapezoid":
        return [(x0 + w * 0.22, y0), (x1 - w * 0.22, y0), (x1, y1), (x0, y1)]
    if kind == "arrow":
        return [
            (x0, cy - h * 0.18),
            (cx, cy - h * 0.18),
            (cx, y0),
            (x1, cy),
            (cx, y1),
            (cx, cy + h * 0.18),
            (x0, cy + h * 0.18),
        ]
    return None


def _mask(kind: str, size: tuple[int, int]) -> Any:
    from PIL import Image, ImageDraw

    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    box = (1, 1, size[0] - 2, size[1] - 2)
    polygon = _polygon(kind, box)
    if polygon is not None:
        draw.polygon(polygon, fill=255)
    elif kind == "circle":
        draw.ellipse(box, fill=255)
    elif kind == "square":
        draw.rectangle(box, fill=255)
    elif kind == "wide":
        draw.rounded_rectangle((1, size[1] * 0.22, size[0] - 2, size[1] * 0.78), radius=4, fill=255)
    elif kind == "tall":
        draw.rounded_rectangle((size[0] * 0.22, 1, size[0] * 0.78, size[1] - 2), radius=4, fill=255)
    return mask


@lru_cache(maxsize=512)
def _glyph(cls: str, color: str, w: int, h: int) -> tuple[Any, Any]:
    """(RGBA tile, mask) for one object, cached: scenes reuse the same few glyphs at the same few sizes. 512 tiles
    (about 9 MB): with 4,096 the cache kept filling over a 10,000-prompt run, most of its memory growth per prompt."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    silhouette, pattern = glyph_of(cls)
    fill = COLORS[color]
    luminance = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]
    ink = (30, 30, 30) if luminance > 140 else (235, 235, 235)
    tile = Image.new("RGB", (w, h), fill)
    draw = ImageDraw.Draw(tile)
    step = max(5, min(w, h) // 5)
    if pattern == "hstripes":
        for y in range(step // 2, h, step):
            draw.line((0, y, w, y), fill=ink, width=2)
    elif pattern == "vstripes":
        for x in range(step // 2, w, step):
            draw.line((x, 0, x, h), fill=ink, width=2)
    elif pattern == "dots":
        for y in range(step // 2, h, step):
            for x in range(step // 2, w, step):
                draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=ink)
    elif pattern == "grid":
        for v in range(step // 2, max(w, h), step):
            draw.line((v, 0, v, h), fill=ink, width=1)
            draw.line((0, v, w, v), fill=ink, width=1)
    elif pattern == "diagonal":
        for v in range(-h, w, step):
            draw.line((v, 0, v + h, h), fill=ink, width=2)
    elif pattern == "ring":
        draw.ellipse((w * 0.3, h * 0.3, w * 0.7, h * 0.7), outline=ink, width=2)
    elif pattern == "checker":
        for y in range(0, h, step):
            for x in range(0, w, step):
                if (x // step + y // step) % 2:
                    draw.rectangle((x, y, x + step - 1, y + step - 1), fill=ink)
    mask = _mask(silhouette, (w, h))
    # An outline in the ink colour: white objects stay visible on any background, and edges are crisp for a critic.
    edge = ImageChops.subtract(mask, mask.filter(ImageFilter.MinFilter(3)))
    tile.paste(Image.new("RGB", (w, h), (60, 60, 60) if luminance > 140 else (200, 200, 200)), mask=edge)
    return tile, mask


def draw_object(image: Any, obj: SceneObject) -> None:
    x0, y0, x1, y1 = (round(v) for v in obj.bbox)
    w, h = max(4, x1 - x0), max(4, y1 - y0)
    tile, mask = _glyph(obj.cls, obj.color, w, h)
    image.paste(tile, (x0, y0), mask)


def draw_text(image: Any, text: str, box: tuple[float, float, float, float]) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=(250, 246, 232), outline=(90, 70, 40), width=2)
    font = default_font(max(10, int((y1 - y0) * 0.6)))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tx = x0 + (x1 - x0 - (right - left)) / 2 - left
    ty = y0 + (y1 - y0 - (bottom - top)) / 2 - top
    draw.text((tx, ty), text, fill=(20, 20, 20), font=font)


def draw_artifact(image: Any, artifact: Artifact, rng: random.Random) -> None:
    from PIL import Image, ImageDraw, ImageFilter

    x0, y0, x1, y1 = (int(v) for v in artifact.bbox)
    if artifact.kind == "smudge":
        overlay = Image.new("L", image.size, 0)
        ImageDraw.Draw(overlay).ellipse((x0, y0, x1, y1), fill=int(120 + 120 * artifact.severity))
        overlay = overlay.filter(ImageFilter.GaussianBlur(6))
        image.paste(Image.new("RGB", image.size, (110, 100, 90)), mask=overlay)
    elif artifact.kind == "noise":
        pixels = image.load()
        for _ in range(int((x1 - x0) * (y1 - y0) * 0.25 * artifact.severity)):
            x, y = rng.randrange(x0, x1), rng.randrange(y0, y1)
            v = rng.randrange(256)
            pixels[x, y] = (v, v, v)
    elif artifact.kind == "blur":
        region = image.crop((x0, y0, x1, y1)).filter(ImageFilter.GaussianBlur(2 + 3 * artifact.severity))
        image.paste(region, (x0, y0))


def render_scene(scene: SceneGraph, artifact_seed: int) -> PILImage:
    """The RGB image of a scene graph (objects, texts, then artifacts)."""
    from PIL import Image

    image = Image.new("RGB", (scene.width, scene.height), BACKGROUND)
    for obj in scene.objects:
        draw_object(image, obj)
    for text in scene.texts:
        draw_text(image, text.rendered, text.bbox)
    rng = random.Random(artifact_seed)
    for artifact in scene.artifacts:
        draw_artifact(image, artifact, rng)
    return image
