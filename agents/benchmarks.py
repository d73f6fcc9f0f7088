"""Critic benchmarks and preference datasets read as their owners publish them: each layout turns a row into the
preference pairs it holds, with a category (for per-category accuracy) and a group (pairs cut from one ranking,
judged together for exact-ranking accuracy).

| name | recognised by the columns | a row is |
|---|---|---|
| `genai-bench` | `prompt, left_image, right_image, vote_type` (image generation) or `instruct_prompt, source_image, left_output_image, right_output_image, vote_type` (image edition) | one pair; `leftvote`/`rightvote`, anything else a tie |
| `mmrb2` | the parquet view (`prompt_text, response_a_images, response_b_images, chosen`) or the upstream JSON (`response_a, response_b, chosen, prompt_content`) | one pair; edits carry `prompt_images` / prompt image parts |
| `release` | the release's evaluation parquet: the MMRB2 parquet view's columns, for all its benchmarks | one pair |
| `editreward-bench` | `instruction, source_image, candidate_1, candidate_2, ranking, comparison_type` | one pair of a 2-, 3- or 4-candidate group (`id` prefix) |
| `pickapic` | `caption, jpg_0, jpg_1, label_0, label_1` | one pair; `label_0` is image 0's share (1, 0.5, 0) |
| `hpd` | `prompt, image_path, rank` (HPDv2/v3 test JSON) | every pair of a ranked image list, as one group |
| `pairs` | `prompt, image_a, image_b, label` (ours), or any columns through `--columns` | one pair |

`auto` picks the first layout whose columns the data has, in the order above, and says which.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import combinations
from pathlib import Path

from rationalrewards.agents.columns import ColumnMap
from rationalrewards.agents.labels import LabelMap, winner_from_ranks
from rationalrewards.agents.preferences import PairReader, PreferencePair, pair_id_of
from rationalrewards.agents.rows import ERROR_KEY, Row, base_folder, iter_rows
from rationalrewards.rewardmodel.errors import InvalidImageError
from rationalrewards.rewardmodel.schemas import Winner


@dataclass(frozen=True)
class EvalPair:
    """One pair to judge, with where it belongs in the report."""

    pair: PreferencePair
    category: str | None = None
    group: str | None = None


RowReader = Callable[[Row, int, PairReader], list[EvalPair]]


@dataclass(frozen=True)
class Layout:
    name: str
    required: frozenset[str]
    read: RowReader
    description: str = ""

    def matches(self, columns: Collection[str]) -> bool:
        return self.required <= set(columns)


def _mapped(
    columns: str, label_map: LabelMap | None = None, category: Callable[[Row], str | None] | None = None
) -> RowReader:
    """A layout that is a column map: one pair per row."""
    column_map = ColumnMap.parse(columns)

    def read(row: Row, number: int, reader: PairReader) -> list[EvalPair]:
        mapped = replace(reader, columns=column_map, label_map=label_map or reader.label_map)
        pair = mapped.pair(row, pair_id_of(row, column_map, number))
        return [EvalPair(pair, category(row) if category else None)]

    return read


def _task_category(row: Row, source_column: str) -> str:
    return "edit" if row.get(source_column) not in (None, "", []) else "t2i"


def _first_text(row: Row, *columns: str) -> str | None:
    for column in columns:
        value = row.get(column)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


# The release reads `1`/`model_1` as A and `2`/`model_2` as B in `chosen`.
_CHOSEN_NUMBERS: LabelMap = {"1": "A", "2": "B"}


def _release_category(row: Row) -> str:
    named = _first_text(row, "benchmark", "source", "subset", "dataset", "task")
    task = _task_category(row, "prompt_images")
    return f"{named}/{task}" if named and named not in ("t2i", "edit") else task


def _genai_vote(value: object) -> Winner:
    """GenAI-Bench's `vote_type`: the release counts anything but a left or right vote as a tie."""
    text = str(value).strip().lower()
    if text in ("leftvote", "rightvote"):
        return "A" if text == "leftvote" else "B"
    if text in ("tievote", "bothbad_vote", "bothgood_vote", "tie", "bothbad", "both_bad"):
        return "tie"
    raise ValueError(f"vote_type {value!r}: GenAI-Bench's votes are leftvote, rightvote, tievote and bothbad_vote")


def _genai(row: Row, number: int, reader: PairReader) -> list[EvalPair]:
    edit = "left_output_image" in row
    columns = (
        "prompt=instruct_prompt,image_a=left_output_image,image_b=right_output_image,source_image=source_image"
        if edit
        else "prompt=prompt,image_a=left_image,image_b=right_image"
    )
    label = _genai_vote(row.get("vote_type"))
    column_map = ColumnMap.parse(columns + ",label=__label__")
    pair = replace(reader, columns=column_map).pair({**row, "__label__": label}, pair_id_of(row, column_map, number))
    return [EvalPair(pair, "image_edition" if edit else "image_generation")]


def _contents(value: object, kind: str) -> list[object]:
    """The parts of one kind in MMRB2's `[[kind, value], ...]` content lists."""
    if not isinstance(value, list):
        return []
    return [part[1] for part in value if isinstance(part, list | tuple) and len(part) == 2 and part[0] == kind]


def _mmrb2_json(row: Row, number: int, reader: PairReader) -> list[EvalPair]:
    prompt = " ".join(str(t) for t in _contents(row.get("prompt_content"), "text")).strip()
    sources = _contents(row.get("prompt_content"), "image")
    responses = []
    for side in ("response_a", "response_b"):
        response = row.get(side)
        content = response.get("response_content") if isinstance(response, Mapping) else None
        images = _contents(content, "image")
        if len(images) != 1:
            raise ValueError(f"{side} holds {len(images)} images; an image-generation pair holds one each")
        responses.append(images[0])
    converted = {
        "prompt": prompt,
        "image_a": responses[0],
        "image_b": responses[1],
        "source_image": sources or None,
        "label": row.get("chosen"),
        "pair_id": row.get("id"),
    }
    pair = reader.pair(converted, str(row.get("id") or f"mmrb2-{number:06d}"))
    category = _first_text(row, "prompt_source") or ("edit" if sources else "t2i")
    return [EvalPair(pair, category)]


def _editreward(row: Row, number: int, reader: PairReader) -> list[EvalPair]:
    """A pair of EditReward-Bench: `ranking` (`A>B`, `C>A`, `B=C`, ...) over the letters of `comparison_type`
    (`AvsC`: candidate_1 is A, candidate_2 is C)."""
    comparison = str(row.get("comparison_type") or "AvsB").strip()
    left, sep, right = comparison.upper().replace(" ", "").partition("VS")
    ranking = str(row.get("ranking") or "").replace(" ", "").upper()
    if not sep or len(ranking) != 3 or ranking[1] not in "><=" or {ranking[0], ranking[2]} != {left, right}:
        raise ValueError(f"ranking {row.get('ranking')!r} does not rank the pair {comparison!r} (e.g. A>B, C>A, B=C)")
    first, relation = ranking[0], ranking[1]
    winner: Winner = "tie" if relation == "=" else ("A" if (first == left) == (relation == ">") else "B")
    column_map = ColumnMap.parse(
        "prompt=instruction,image_a=candidate_1,image_b=candidate_2,source_image=source_image,label=__label__"
    )
    item_id = str(row.get("id") or f"editreward-{number:06d}")
    pair = replace(reader, columns=column_map).pair({**row, "__label__": winner}, item_id)
    group = item_id.split("_")[0] if "_" in item_id else item_id
    return [EvalPair(pair, _first_text(row, "dataset"), f"{_first_text(row, 'dataset') or ''}/{group}")]


def _hpd(row: Row, number: int, reader: PairReader) -> list[EvalPair]:
    """Every pair of a ranked list: `rank[i]` is image i's place (lower is better)."""
    prompt = _first_text(row, "prompt", "caption")
    paths = row.get("image_path", row.get("image_paths"))
    ranks = row.get("rank", row.get("ranking"))
    if not prompt:
        raise ValueError("missing prompt")
    if not isinstance(paths, list) or not isinstance(ranks, list) or len(paths) != len(ranks) or len(paths) < 2:
        raise ValueError("image_path and rank must be lists of the same length, at least 2")
    images = [reader.image(p, f"image_path[{i}]") for i, p in enumerate(paths)]
    group = str(row.get("id") or hashlib.sha256(prompt.encode()).hexdigest()[:12])
    pairs = []
    for i, j in combinations(range(len(images)), 2):
        label = winner_from_ranks(float(ranks[i]), float(ranks[j]))
        pair = PreferencePair(f"{group}:{i}-{j}", prompt, images[i], images[j], label)
        pairs.append(EvalPair(pair, None, group))
    return pairs


_pickapic_pair = _mapped("prompt=caption,image_a=jpg_0,image_b=jpg_1,label=label_0")


def _pickapic(row: Row, number: int, reader: PairReader) -> list[EvalPair]:
    """Pick-a-Pic: a row without a human label (`has_label` false) is no preference; it is reported, not read as a
    tie."""
    if row.get("has_label") is False:
        raise ValueError("has_label is false: no human preference was recorded for this pair")
    return _pickapic_pair(row, number, reader)


def _pairs(row: Row, number: int, reader: PairReader) -> list[EvalPair]:
    category = row.get(reader.columns["category"])
    pair = reader.pair(row, pair_id_of(row, reader.columns, number))
    return [EvalPair(pair, str(category) if category not in (None, "") else None)]


_RELEASE_COLUMNS = (
    "prompt=prompt_text,image_a=response_a_images,image_b=response_b_images,source_image=prompt_images,label=chosen"
)
LAYOUTS: tuple[Layout, ...] = (
    Layout("genai-bench", frozenset({"prompt", "left_image", "right_image", "vote_type"}), _genai, "image generation"),
    Layout(
        "genai-bench",
        frozenset({"instruct_prompt", "source_image", "left_output_image", "right_output_image", "vote_type"}),
        _genai,
        "image edition",
    ),
    Layout(
        "release",
        frozenset({"prompt_text", "response_a_images", "response_b_images", "chosen"}),
        _mapped(_RELEASE_COLUMNS, _CHOSEN_NUMBERS, _release_category),
        "the release's evaluation parquet (MMRB2's parquet view)",
    ),
    Layout(
        "mmrb2",
        frozenset({"response_a", "response_b", "chosen", "prompt_content"}),
        _mmrb2_json,
        "the upstream JSON with an image folder",
    ),
    Layout(
        "editreward-bench",
        frozenset({"instruction", "source_image", "candidate_1", "candidate_2", "ranking", "comparison_type"}),
        _editreward,
    ),
    Layout(
        "pickapic",
        frozenset({"caption", "jpg_0", "jpg_1", "label_0", "label_1"}),
        _pickapic,
    ),
    Layout("hpd", frozenset({"prompt", "image_path", "rank"}), _hpd, "HPDv2/v3 test JSON"),
    Layout("pairs", frozenset({"prompt", "image_a", "image_b", "label"}), _pairs, "ours, or any columns via --columns"),
)
# `mmrb2` also names the parquet view, which is the release's layout.
ALIASES = {"mmrb2": ("mmrb2", "release"), "release": ("release",)}
BENCH_NAMES = ("auto", "genai-bench", "mmrb2", "editreward-bench", "pickapic", "hpd", "release", "pairs")


def _columns_of(source: Path) -> list[str]:
    for _, row in iter_rows(source):
        if ERROR_KEY not in row:
            return list(row)
    raise ValueError(f"{source} holds no readable rows")


def choose_layout(bench: str, source: Path, columns: ColumnMap | None = None) -> Layout:
    """The layout `bench` names (checked against the data's columns), or with `auto` the first that fits."""
    if bench not in BENCH_NAMES:
        raise ValueError(f"unknown benchmark {bench!r}; choose one of {', '.join(BENCH_NAMES)}")
    if bench == "pairs" or (columns is not None and columns.names):
        return LAYOUTS[-1]
    present = _columns_of(source)
    names = ALIASES.get(bench, (bench,)) if bench != "auto" else tuple(layout.name for layout in LAYOUTS)
    for layout in LAYOUTS:
        if layout.name in names and layout.matches(present):
            return layout
    wanted = "; ".join(
        f"{layout.name}: {', '.join(sorted(layout.required))}" for layout in LAYOUTS if layout.name in names
    )
    raise ValueError(
        f"{source}'s columns ({', '.join(present[:12])}) fit no {'known layout' if bench == 'auto' else bench} layout "
        f"({wanted}); name the columns with --columns FIELD=COLUMN,..."
    )


@dataclass
class EvalRows:
    """The pairs of a data file under one layout, streamed; bad rows are collected with their numbers."""

    source: Path
    layout: Layout
    reader: PairReader
    bad_rows: list[dict[str, object]] = field(default_factory=list)

    def __iter__(self) -> Iterator[EvalPair]:
        for number, row in iter_rows(self.source):
            try:
                if ERROR_KEY in row:
                    raise ValueError(row[ERROR_KEY])
                yield from self.layout.read(row, number, self.reader)
            except (ValueError, InvalidImageError, OSError) as e:
                self.bad_rows.append({"row": number, "reason": str(e)})


def eval_rows(
    source: str | Path,
    bench: str = "auto",
    *,
    columns: ColumnMap | None = None,
    label_map: LabelMap | None = None,
) -> EvalRows:
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"data not found: {path}")
    layout = choose_layout(bench, path, columns)
    reader = PairReader(base=base_folder(path), columns=columns or ColumnMap(), label_map=label_map or {})
    return EvalRows(path, layout, reader)


__all__ = ["BENCH_NAMES", "LAYOUTS", "EvalPair", "EvalRows", "Layout", "choose_layout", "eval_rows"]
