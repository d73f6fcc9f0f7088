"""What an RL run shows while it trains: the history file, TensorBoard (or trackio / W&B), structlog events, sample
grids, and the reward-hacking alarm."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from PIL import Image

log = structlog.get_logger("rationalrewards.rl")


class HackingAlarm:
    """Reward hacking shows as the training reward rising while what it stands for falls. At each evaluation the
    alarm compares the last `window` evaluations with the one before them: it fires when the training reward rose by
    more than `tolerance` while the held-out evaluation reward (a second, eval-only reward model where one is given)
    or any one aspect of it fell by more than `tolerance`."""

    def __init__(self, window: int = 3, tolerance: float = 0.02) -> None:
        self.window = max(1, window)
        self.tolerance = tolerance
        self.points: list[dict[str, float]] = []

    def update(self, train_reward: float, eval_reward: float | None, eval_aspects: dict[str, float]) -> str | None:
        point = {"train": train_reward} | ({"eval": eval_reward} if eval_reward is not None else {})
        self.points.append(point | {f"aspect:{k}": v for k, v in eval_aspects.items()})
        if len(self.points) <= self.window:
            return None
        first, last = self.points[-self.window - 1], self.points[-1]
        if last["train"] - first["train"] <= self.tolerance:
            return None
        falling = [
            f"{name.removeprefix('aspect:')} {first[name]:.3f} -> {last[name]:.3f}"
            for name in last
            if name != "train" and name in first and first[name] - last[name] > self.tolerance
        ]
        if not falling:
            return None
        return (
            f"possible reward hacking: training reward {first['train']:.3f} -> {last['train']:.3f} over the last "
            f"{self.window} evaluations while {', '.join(falling)}"
        )


class RunLogger:
    """Appends each step's record to `history.jsonl` (flushed and synced: a killed run loses no finished step) and
    mirrors the numbers to the tracker chosen by `report_to`."""

    def __init__(self, out: Path, report_to: str, run_name: str, *, resume_at_step: int = 0) -> None:
        self.path = out / "history.jsonl"
        self._trim(resume_at_step)
        self._tracker = _tracker(report_to, out, run_name)

    def _trim(self, step: int) -> None:
        """On resume, drop records of steps after the checkpoint (they are trained again), keep the rest."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        kept = [line for line in kept if json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def read(self) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def record(self, row: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, default=float) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        numbers = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self._tracker(numbers, int(row["step"]))
        log.info("rl_step", **{k: round(v, 4) if isinstance(v, float) else v for k, v in numbers.items()})

    def close(self) -> None:
        closer = getattr(self._tracker, "close", None)
        if closer is not None:
            closer()


class _TensorBoard:
    def __init__(self, directory: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(directory))

    def __call__(self, numbers: dict[str, float], step: int) -> None:
        for key, value in numbers.items():
            if key != "step":
                self.writer.add_scalar(key.replace(":", "/"), value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _tracker(report_to: str, out: Path, run_name: str) -> Any:
    if report_to == "none":
        return lambda numbers, step: None
    if report_to == "tensorboard":
        return _TensorBoard(out / "tensorboard")
    try:
        module = __import__(report_to)
    except ImportError as e:
        raise ValueError(f"--report-to {report_to} needs `pip install {report_to}`: {e}") from e
    module.init(project="rationalrewards-rl", name=run_name)
    return lambda numbers, step: module.log(numbers, step=step)


def save_grid(images: Sequence[Image.Image], captions: Sequence[str], path: Path, columns: int = 4) -> Path:
    """Images side by side with a caption each (prompt and reward), written as PNG."""
    from PIL import ImageDraw

    from rationalrewards.plumbing.drawing import default_font

    tile = max(128, max((image.width for image in images), default=128))
    caption_height, pad = 44, 6
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * (tile + pad) + pad, rows * (tile + caption_height + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = default_font(11)
    for k, (image, caption) in enumerate(zip(images, captions, strict=True)):
        x, y = pad + (k % columns) * (tile + pad), pad + (k // columns) * (tile + caption_height + pad)
        sheet.paste(image.convert("RGB").resize((tile, tile), Image.Resampling.NEAREST), (x, y))
        for line_number, line in enumerate(textwrap.wrap(caption, 24)[:3]):
            draw.text((x, y + tile + 2 + 13 * line_number), line, fill=(0, 0, 0), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
