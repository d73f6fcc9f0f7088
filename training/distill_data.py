"""The rows a critic is distilled on: read, checked, split by prompt, mixed, and measured against the length limit.

Sources: a PARROT output directory (`pairwise.jsonl` + `pointwise.jsonl`), or any JSONL / Parquet file or saved
`datasets` directory of rows in the same chat form: `messages` (system and user turns, then the assistant's answer)
and `images` (paths, relative to the file's folder, or `{"bytes": ...}` records as `datasets` stores them). A user turn
written as one string marks each image's place with `<image>` (LLaMA-Factory's sharegpt form, which our export writes);
the rows are turned into structured content with each image *where its marker was*, which is where the serving chat
template puts it. (trl would otherwise move every image in front of the first user text.)

Nothing is dropped silently: every unusable row is counted by reason, and so is every row over `max_length`.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from rationalrewards.agents.rows import read_rows, resolve_path
from rationalrewards.rewardmodel.images import image_dimensions, max_image_bytes, read_file_bytes
from rationalrewards.rewardmodel.schemas import Task, Winner

IMAGE_MARKER = "<image>"
PARROT_FILES = ("pairwise.jsonl", "pointwise.jsonl")
RowKind = Literal["pairwise", "pointwise", "other"]
ImageSource = str | bytes  # a file path, or the encoded image itself
Part = dict[str, object]
_LABELS: dict[str, Winner] = {"A": "A", "B": "B", "tie": "tie"}
_IMAGE_PLACEHOLDER = {"type": "image_url", "image_url": {"url": "row-image"}}


@dataclass(frozen=True)
class CritiqueRow:
    """One training row: the request turns (content as parts; image parts in place, without pixels), the answer the
    student learns to write, and the images in the order their parts appear."""

    turns: list[dict[str, Any]]
    answer: str
    images: list[ImageSource]
    kind: RowKind
    key: str  # the request's prompt: the held-out split never puts one prompt on both sides
    task: Task
    label: Winner | None
    origin: str  # file:line, for error reports

    def text_parts(self) -> Iterable[str]:
        for turn in self.turns:
            yield from (p["text"] for p in turn["content"] if p["type"] == "text")


@dataclass
class DataReport:
    """What became of every row read (the CLI prints it; the model card keeps it)."""

    read: int = 0
    used: int = 0
    held_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    truncated: int = 0
    examples: list[str] = field(default_factory=list)  # the first few bad rows, with file:line
    kinds: Counter[str] = field(default_factory=Counter)
    prompt_profile: str | None = None

    def drop(self, reason: str, origin: str, detail: str = "") -> None:
        self.dropped[reason] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{origin}: {reason}" + (f" ({detail})" if detail else ""))

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_read": self.read,
            "rows_used": self.used,
            "rows_held_out": self.held_out,
            "rows_dropped": sum(self.dropped.values()),
            "rows_dropped_by_reason": dict(sorted(self.dropped.items())),
            "rows_truncated": self.truncated,
            "rows_by_kind": dict(sorted(self.kinds.items())),
            "prompt_profile": self.prompt_profile,
            "bad_row_examples": self.examples,
        }


class RowError(ValueError):
    """A row that cannot be trained on; the message is its reason."""


def _parts(content: object) -> list[Part]:
    """A turn's content as parts: `<image>` markers in a string become image parts in place."""
    if isinstance(content, str):
        pieces = content.split(IMAGE_MARKER)
        parts: list[Part] = []
        for index, piece in enumerate(pieces):
            if index:
                parts.append({"type": "image"})
            if piece:
                parts.append({"type": "text", "text": piece})
        return parts
    if not isinstance(content, list):
        raise RowError("message content is neither text nor a list of parts")
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind in ("image", "image_url"):
            parts.append({"type": "image"})
        else:
            raise RowError(f"unknown content part {str(part)[:60]!r}")
    return parts


def _image_source(value: object, base: Path) -> ImageSource:
    """A row's image: a path (relative to the file), encoded bytes, or a `{"bytes", "path"}` record. Anything else is
    a row error; bytes are checked against the size an image may take before anything else is done with them."""
    if isinstance(value, dict):
        data = value.get("bytes")
        if data is not None and not isinstance(data, (bytes, bytearray)):
            raise RowError(f"an image's 'bytes' must be encoded image bytes, not {type(data).__name__}")
        if data:
            value = data
        else:
            value = value.get("path")
    if isinstance(value, (bytes, bytearray)):
        if len(value) > max_image_bytes():
            raise RowError(f"an image of {len(value) / 2**20:.0f} MiB is over the size an image may take")
        return bytes(value)
    if not isinstance(value, str) or not value:
        raise RowError(f"an image is neither a path nor image bytes: {str(value)[:60]!r}")
    path = resolve_path(value, base)
    if not path.is_file():
        raise RowError(f"image not found: {path}")
    return str(path)


def _prompt_key(row: dict[str, Any], turns: list[dict[str, Any]]) -> str:
    """The request's prompt: the row's `prompt` field, else read back from the turns (our own prompt formats), else
    the user turn's text."""
    if isinstance(row.get("prompt"), str) and row["prompt"].strip():
        return str(row["prompt"])
    from rationalrewards.rewardmodel.errors import PromptFormatError
    from rationalrewards.rewardmodel.prompts import read_messages
    from rationalrewards.rewardmodel.schemas import ImageRef

    placeholder = ImageRef(uri="row-image", sha256="0" * 64, width=1, height=1)
    messages = [
        {"role": t["role"], "content": [p if p["type"] == "text" else _IMAGE_PLACEHOLDER for p in t["content"]]}
        for t in turns
    ]
    try:
        return read_messages(messages, image_ref=lambda _: placeholder).prompt
    except (PromptFormatError, ValueError, KeyError):
        return "".join(p for t in turns if t["role"] == "user" for p in _texts(t))


def _texts(turn: dict[str, Any]) -> list[str]:
    return [p["text"] for p in turn["content"] if p["type"] == "text"]


def parse_row(row: dict[str, Any], base: Path, origin: str) -> CritiqueRow:
    """A row as a `CritiqueRow`, or a `RowError` saying what is wrong with it."""
    if "__error__" in row:
        raise RowError(str(row["__error__"]))
    messages = row.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        raise RowError("no `messages` list with a request and an answer")
    *request, answer = messages
    if not isinstance(answer, dict) or answer.get("role") != "assistant":
        raise RowError("the last message is not the assistant's answer")
    answer_text = answer.get("content")
    if isinstance(answer_text, list):
        answer_text = "".join(p.get("text", "") for p in answer_text if isinstance(p, dict))
    if not isinstance(answer_text, str) or not answer_text.strip():
        raise RowError("the answer is empty")
    turns = []
    for message in request:
        if not isinstance(message, dict) or message.get("role") not in ("system", "user"):
            raise RowError("request turns must be system or user messages")
        turns.append({"role": message["role"], "content": _parts(message.get("content"))})
    markers = sum(1 for t in turns for p in t["content"] if p["type"] == "image")
    raw_images = row.get("images") or []
    if not isinstance(raw_images, list):
        raw_images = [raw_images]
    if len(raw_images) != markers:
        raise RowError(f"{markers} image places in the messages but {len(raw_images)} images")
    images = [_image_source(value, base) for value in raw_images]
    kinds: dict[Any, RowKind] = {"pairwise": "pairwise", "pointwise": "pointwise"}
    label = _LABELS.get(str(row.get("label")))
    kind = kinds.get(row.get("kind"), "pairwise" if label is not None else "other")
    task = Task(row["task"]) if row.get("task") in ("t2i", "edit") else _task_from_images(markers, kind)
    return CritiqueRow(
        turns=turns,
        answer=answer_text,
        images=images,
        kind=kind,
        key=_prompt_key(row, turns),
        task=task,
        label=label,
        origin=origin,
    )


def _task_from_images(images: int, kind: RowKind) -> Task:
    """A row without a `task`: an edit shows its source besides what is judged, so a pairwise row has three images
    for an edit and two for text-to-image, a pointwise row two and one. (Counting two images as an edit whatever the
    kind once read every text-to-image pair as an edit, and the edit parser then refused every answer.)"""
    judged = 2 if kind == "pairwise" else 1
    return Task.edit if images > judged else Task.t2i


def describe_row(row: CritiqueRow, describe_image: Callable[[str], str]) -> CritiqueRow:
    """The row for a text student: each image part replaced, in place, by the text `describe_image` reads from its
    file (the same text the served text critic puts there: `backends.local.text_only`); no images left."""
    sources = iter(row.images)

    def text_of(part: Part) -> Part:
        if part["type"] == "text":
            return part
        source = next(sources)
        if not isinstance(source, str):
            raise RowError(f"{row.origin}: a text student reads images from their files; this row embeds image bytes")
        return {"type": "text", "text": describe_image(source)}

    turns = [{"role": turn["role"], "content": [text_of(part) for part in turn["content"]]} for turn in row.turns]
    return replace(row, turns=turns, images=[])


def _files(source: Path) -> list[Path]:
    """The row files behind one `--data` value: a PARROT output directory's two exports, or the source itself."""
    if source.is_dir() and any((source / name).is_file() for name in PARROT_FILES):
        return [source / name for name in PARROT_FILES if (source / name).is_file()]
    if not source.exists():
        raise FileNotFoundError(f"--data {source} does not exist")
    return [source]


def declared_student_profile(sources: Sequence[str | Path]) -> str | None:
    """The prompt profile a PARROT export says its rows were written in (`card.json`), if every source says one."""
    profiles = set()
    for source in map(Path, sources):
        card = source / "card.json" if source.is_dir() else None
        if card is None or not card.is_file():
            return None
        profiles.add(json.loads(card.read_text(encoding="utf-8")).get("student_prompts"))
    return profiles.pop() if len(profiles) == 1 and None not in profiles else None


def load_rows(sources: Sequence[str | Path], report: DataReport) -> list[CritiqueRow]:
    """Every usable row of every source, in order; the rest counted in `report` by reason."""
    if not sources:
        raise ValueError("give at least one --data source (a PARROT output directory or a rows file)")
    rows: list[CritiqueRow] = []
    for source in map(Path, sources):
        for path in _files(source):
            base = path.parent if path.is_file() else path
            for number, raw in read_rows(path):
                report.read += 1
                origin = f"{path}:{number}"
                try:
                    rows.append(parse_row(raw, base, origin))
                except RowError as e:
                    report.drop("bad_row", origin, str(e))
    if not rows:
        raise ValueError(f"no usable rows in {', '.join(map(str, sources))}: {', '.join(report.examples[:3])}")
    return rows


def held_out(key: str, share: float, seed: int) -> bool:
    """Whether a prompt belongs to the held-out side: a stable hash of the prompt, so one prompt is on one side."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def split_by_prompt(
    rows: Sequence[CritiqueRow], share: float, seed: int
) -> tuple[list[CritiqueRow], list[CritiqueRow]]:
    train = [r for r in rows if not held_out(r.key, share, seed)]
    evaluation = [r for r in rows if held_out(r.key, share, seed)]
    if not train:
        raise ValueError(f"--eval-share {share} left no training rows; lower it")
    return train, evaluation


def mix(rows: Sequence[CritiqueRow], pairwise_share: float | None, seed: int) -> list[CritiqueRow]:
    """Subsample the over-represented kind so pairwise rows make `pairwise_share` of the pairwise + pointwise rows
    (rows of other kinds are kept). None keeps the rows as they come."""
    if pairwise_share is None:
        return list(rows)
    pairwise = [r for r in rows if r.kind == "pairwise"]
    pointwise = [r for r in rows if r.kind == "pointwise"]
    rng = random.Random(seed)
    total = len(pairwise) + len(pointwise)
    if total == 0:
        return list(rows)
    if len(pairwise) > pairwise_share * total:
        keep = round(pairwise_share / (1 - pairwise_share) * len(pointwise)) if pairwise_share < 1 else len(pairwise)
        pairwise = rng.sample(pairwise, min(len(pairwise), keep))
    else:
        keep = round((1 - pairwise_share) / pairwise_share * len(pairwise)) if pairwise_share > 0 else 0
        pointwise = rng.sample(pointwise, min(len(pointwise), keep))
    chosen = {id(r) for r in (*pairwise, *pointwise)}
    return [r for r in rows if r.kind == "other" or id(r) in chosen]


def image_size(source: ImageSource) -> tuple[int, int]:
    """(width, height) of a row's image from its header, through the project's image intake (regular files only,
    allowed formats, the pixel limit): nothing is decoded."""
    data = source if isinstance(source, bytes) else read_file_bytes(source)
    return image_dimensions(data, "an image of a row" if isinstance(source, bytes) else source)


__all__ = [
    "CritiqueRow",
    "DataReport",
    "RowError",
    "declared_student_profile",
    "held_out",
    "image_size",
    "load_rows",
    "mix",
    "parse_row",
    "split_by_prompt",
]
