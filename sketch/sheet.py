"""A contact sheet: rendered prompts side by side with their specs, what the generator got wrong, and the verdict."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from rationalrewards.plumbing.drawing import default_font
from rationalrewards.rewardmodel.images import load_pil
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.scene import load_scene, score_against_spec
from rationalrewards.sketch.spec import parse_scene_spec


def contact_sheet(
    prompts: list[str],
    out: str | Path,
    *,
    seeds: list[int] | None = None,
    columns: int = 4,
    workdir: str | Path | None = None,
) -> Path:
    from PIL import Image, ImageDraw

    out = Path(out)
    generator = SketchGenerator(workdir or out.parent / ".sketch_sheet_images")
    seeds = seeds or list(range(len(prompts)))
    tile, caption = 256, 118
    rows = -(-len(prompts) // columns)
    sheet = Image.new("RGB", (columns * (tile + 8) + 8, rows * (tile + caption + 8) + 8), "white")
    draw = ImageDraw.Draw(sheet)
    font, small = default_font(13), default_font(11)
    for k, (prompt, seed) in enumerate(zip(prompts, seeds, strict=True)):
        made = generator.generate_one(prompt, seed)
        scene = load_scene(made.image)
        spec = parse_scene_spec(prompt)
        verdict = score_against_spec(scene, spec)
        x = 8 + (k % columns) * (tile + 8)
        y = 8 + (k // columns) * (tile + caption + 8)
        sheet.paste(load_pil(made.image), (x, y))
        draw.rectangle((x, y, x + tile - 1, y + tile - 1), outline=(120, 120, 120))
        lines: list[tuple[str, Any, tuple[int, int, int]]] = []
        for line in textwrap.wrap(f"{prompt}  (seed {seed})", 38)[:2]:
            lines.append((line, font, (0, 0, 0)))
        spec_text = "; ".join(
            f"{o.count}x {o.color + ' ' if o.color else ''}{o.cls}{' ' + o.position[0] + ' #' + str(o.position[1]) if o.position else ''}"
            for o in spec.include
        )
        for line in textwrap.wrap(
            f"spec [{spec.tag}]: {spec_text}" + (f"; text {list(spec.text)}" if spec.text else ""), 46
        )[:2]:
            lines.append((line, small, (60, 60, 140)))
        problems = list(scene.generator_notes) + [a.kind.replace("_", " ") for a in scene.artifacts]
        for line in textwrap.wrap("generator: " + ("; ".join(problems) or "no misreading"), 46)[:2]:
            lines.append((line, small, (150, 80, 0) if problems else (60, 60, 60)))
        status = "correct" if verdict.correct else "wrong: " + "; ".join(verdict.errors)
        for line in textwrap.wrap("ground truth: " + status, 46)[:2]:
            lines.append((line, small, (0, 120, 0) if verdict.correct else (190, 0, 0)))
        ty = y + tile + 4
        for text, f, color in lines:
            draw.text((x, ty), text, fill=color, font=f)
            ty += 15 if f is font else 13
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
