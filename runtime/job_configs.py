"""The job configurations behind `rationalrewards refine`, `parrot` and `eval`: one frozen dataclass each, help in field
metadata, CLI flags generated from them (`cli/_options.py`). Light on purpose: the CLI imports this module at start-up,
so it must not pull in LangGraph or the runners (`runtime.jobs` runs the jobs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rationalrewards.agents.suite import SuiteRow
from rationalrewards.graphs.gcr_config import GCRConfig

CRITIC_HELP = (
    "'sketch' (the sketch world's oracle; needs the image's .scene.json sidecar), 'fake', an http(s):// "
    "OpenAI-compatible URL, a local model directory, ray:DIR (Ray replicas of it), or py:module:function (a Python "
    "function of the request; modules in the working directory are found)."
)
PROMPTS_HELP = (
    "Prompt profile for the critic: release (the released checkpoints' input format), house (ours, for other models), "
    "compact (house without the rubric, for small students), or auto (release when the model is a RationalRewards "
    "checkpoint, else what a model directory declares, else house)."
)
MAX_TOKENS_HELP = (
    "Most tokens one critique may take (default 20480, as the release's evaluation and test-time scripts)."
)
KEEP_HISTORY_HELP = (
    "Keep every checkpoint of finished items (LangGraph time travel); by default a finished item's checkpoints are "
    "deleted once its line is in results.jsonl, so the database holds only the items in flight."
)
DURABILITY_HELP = (
    "When a thread is saved: exit (when it ends or pauses for a human; a crash redoes the items in flight from their "
    "start, and with no pause, history or --checkpointer to save for, no database is kept at all), async or sync "
    "(every step). Default: exit, or async with --keep-history."
)
SAMPLES_HELP = (
    "Self-ensembling: critiques per request; their per-aspect means decide (an abstention when fewer than half parse)."
)
PAIRS_HELP = (
    "Preference pairs: JSONL, JSON, Parquet, Arrow, CSV, a saved datasets directory or a folder of shards; images as "
    "paths, data: URLs, bytes or datasets' Image() structs."
)
COLUMNS_HELP = (
    "Which column holds which field, e.g. prompt=caption,image_a=jpg_0,image_b=jpg_1,label=label_0 (fields: prompt, "
    "image_a, image_b or images, label, source_image, pair_id, category); unnamed fields read their own name."
)
LABEL_MAP_HELP = "What bare-number labels mean, e.g. 0=A,1=B (numbers are refused without it)."
CHECKPOINTER_HELP = (
    "Where threads are checkpointed: sqlite (in --out; by default only when a checkpoint can be read back: a "
    "human-in-the-loop pause, --keep-history, --durability async or sync) or a postgres:// URL that several workers "
    "share (pip install 'rationalrewards[postgres]')."
)
SHARD_HELP = "Run only shard i of N (items i, i+N, ...; from 0), e.g. a Slurm array task; join with `merge`."
FORCE_NEW_HELP = "If --out holds a run with other inputs, move it into archive/ and start afresh."


@dataclass(frozen=True, kw_only=True)
class RefineJob:
    """Everything a `refine` run takes (the suite's rows aside, every field is a `rationalrewards refine` flag)."""

    rows: Sequence[SuiteRow] = field(default=(), metadata={"cli": False})
    out: Path = field(
        metadata={"help": "Run directory (rerun the same command to resume).", "cli_default": Path("runs/refine")}
    )
    generator: str = field(
        default="sketch",
        metadata={
            "help": "'sketch' or 'sketch-flow' (the shipped 32-pixel flow pipeline), a local diffusers pipeline "
            "directory, an http(s):// OpenAI Images API server, ray:sketch / ray:DIR (Ray replicas), or "
            "py:module:function (a Python function of the prompt and seed returning an image).",
            "repeat": True,
        },
    )
    critic: str = field(default="sketch", metadata={"help": CRITIC_HELP, "repeat": True})
    critic_model: str | None = field(
        default=None, metadata={"help": "Served model name (default: the server's first).", "flag": "--model"}
    )
    prompts: str = field(default="auto", metadata={"help": PROMPTS_HELP})
    max_tokens: int | None = field(default=None, metadata={"help": MAX_TOKENS_HELP})
    samples: int = field(default=1, metadata={"help": SAMPLES_HELP})
    refiner: str = field(
        default="critic", metadata={"help": "'critic' (the critique's refined request), 'llm:<URL>' or 'llm:<DIR>'."}
    )
    refiner_model: str | None = field(default=None, metadata={"help": "Model name for an llm:<URL> refiner."})
    preset: str = field(
        default="paper",
        metadata={
            "help": "paper (as the paper writes it: regenerate once if any active aspect < 3), release (as the "
            "released script: regenerate once unless text faithfulness and quality >= 3) or deep (rounds, best-of-N, "
            "re-scoring)."
        },
    )
    rounds: int | None = field(default=None, metadata={"help": "Generation rounds, the first included."})
    candidates: int | None = field(default=None, metadata={"help": "Images per round (best-of-N)."})
    threshold: float | None = field(
        default=None, metadata={"help": "Every active aspect at or above this passes (1-4)."}
    )
    concurrency: int = field(default=8, metadata={"help": "Prompts in flight at once."})
    replicas: int = field(
        default=1, metadata={"help": "Ray replicas of a ray:DIR generator or critic (one per GPU on CUDA)."}
    )
    device: str = field(default="cpu", metadata={"help": "Device for a diffusers generator (cpu, cuda, cuda:1)."})
    lora: str | None = field(
        default=None,
        metadata={"help": "A LoRA directory for a diffusers generator (e.g. the lora/ of a `rationalrewards rl` run)."},
    )
    trust_generator_scenes: bool = field(
        default=False,
        metadata={
            "help": "Take the ground truth (sketch scene graphs) an http(s):// generator sends with its images; without "
            "it a served generator's images are judged by what a critic or grader reads from them."
        },
    )
    grader: str = field(
        default="auto",
        metadata={
            "help": "Ground truth: auto (sketch grader for the sketch generator), sketch, sketch-pixels (a pixel reader, for a"
            " trained 32-pixel sketch generator) or none."
        },
    )
    progress: bool = field(default=True, metadata={"cli": False})
    force_new: bool = field(default=False, metadata={"help": FORCE_NEW_HELP})
    keep_history: bool = field(default=False, metadata={"help": KEEP_HISTORY_HELP})
    durability: str | None = field(default=None, metadata={"help": DURABILITY_HELP})
    checkpointer: str | None = field(default=None, metadata={"help": CHECKPOINTER_HELP})
    shard: str | None = field(default=None, metadata={"help": SHARD_HELP})

    def config(self) -> GCRConfig:
        return GCRConfig.preset(
            self.preset, max_rounds=self.rounds, candidates=self.candidates, threshold=self.threshold
        )


@dataclass(frozen=True)
class ParrotJob:
    """Everything a `parrot` run takes (every field but `progress` is a `rationalrewards parrot` flag)."""

    out: Path = field(metadata={"help": "Output directory (rerun the same command to resume)."})
    pairs: Path | None = field(default=None, metadata={"help": PAIRS_HELP})
    columns: str | None = field(default=None, metadata={"help": COLUMNS_HELP})
    teacher: str = field(
        default="sketch",
        metadata={"help": "'sketch', an http(s):// OpenAI-compatible URL, or a local VLM directory.", "repeat": True},
    )
    teacher_model: str | None = field(default=None, metadata={"help": "Served model name of an HTTP teacher."})
    student_prompts: str = field(
        default="release",
        metadata={
            "help": "Prompt profile of the SFT rows (how the distilled student will be asked): release, house or compact. The "
            "teacher's own requests always use house prompts."
        },
    )
    filter: str = field(default="repredict", metadata={"help": "repredict (the paper), scores, or both."})
    repredict_with_images: bool = field(
        default=True,
        metadata={
            "help": "Re-predict with the images, or from the rationale alone.",
            "flag": "--repredict-with-images/--text-only-filter",
        },
    )
    retries: int = field(default=0, metadata={"help": "New anchored samples after a rejection (0 in the paper)."})
    label_map: str | None = field(default=None, metadata={"help": LABEL_MAP_HELP})
    swap_augment: bool = field(default=False, metadata={"help": "Also run every pair with A and B swapped."})
    concurrency: int = field(
        default=16,
        metadata={
            "help": "Requests in flight to the teacher; a quarter more pairs are kept in flight so it never waits."
        },
    )
    progress: bool = field(default=True, metadata={"cli": False})
    world: str | None = field(default=None, metadata={"help": "'sketch': make ground-truth preference pairs first."})
    pairs_count: int = field(default=200, metadata={"help": "Prompts (one pair each) for --world sketch."})
    teacher_noise: float = field(default=0.0, metadata={"help": "Sketch teacher's hallucination rate."})
    perception_noise: float = field(default=0.0, metadata={"help": "Sketch teacher's perception noise."})
    label_noise: float = field(default=0.0, metadata={"help": "Flip this share of sketch-world labels."})
    seed: int = field(default=0, metadata={"help": "Seed of the sketch world's pairs and teacher."})
    force_new: bool = field(default=False, metadata={"help": FORCE_NEW_HELP})
    keep_history: bool = field(default=False, metadata={"help": KEEP_HISTORY_HELP})
    durability: str | None = field(default=None, metadata={"help": DURABILITY_HELP})
    checkpointer: str | None = field(default=None, metadata={"help": CHECKPOINTER_HELP})
    shard: str | None = field(default=None, metadata={"help": SHARD_HELP})


BENCH_HELP = (
    "The data's layout: auto (recognised by its columns, and said), genai-bench, mmrb2, editreward-bench, pickapic, "
    "hpd, release (the release's evaluation parquet), or pairs (ours, or any columns through --columns)."
)


@dataclass(frozen=True)
class EvalJob:
    """Pairwise preference accuracy of a critic (`rationalrewards eval` takes every field as a flag)."""

    data: Path | None = field(
        default=None,
        metadata={"help": "A benchmark or preference set as published (file or folder; see --bench). " + PAIRS_HELP},
    )
    bench: str = field(default="auto", metadata={"help": BENCH_HELP})
    pairs: Path | None = field(
        default=None, metadata={"help": "Preference pairs in our layout (as --data, --bench pairs)."}
    )
    columns: str | None = field(default=None, metadata={"help": COLUMNS_HELP})
    label_map: str | None = field(default=None, metadata={"help": LABEL_MAP_HELP})
    critic: str = field(default="sketch", metadata={"help": CRITIC_HELP, "repeat": True})
    model: str | None = field(default=None, metadata={"help": "Served model name (default: the server's first)."})
    prompts: str = field(default="auto", metadata={"help": PROMPTS_HELP})
    max_tokens: int | None = field(default=None, metadata={"help": MAX_TOKENS_HELP})
    samples: int = field(default=1, metadata={"help": SAMPLES_HELP})
    rules: str = field(
        default="ours",
        metadata={
            "help": "Which accounting is the headline `accuracy` (both are always reported): ours (abstentions and "
            "ties counted apart) or release (a missing, unreadable or N/A score counts 2.5; failed requests skipped)."
        },
    )
    mode: str = field(
        default="all",
        metadata={
            "help": "The aspects summed: all, text (text faithfulness) or visual (physical quality; edits also "
            "image faithfulness), as the release's modes."
        },
    )
    tolerance: float = field(
        default=0.0, metadata={"help": "Summed-score margin below which a pair counts as a predicted tie."}
    )
    limit: int | None = field(default=None, metadata={"help": "Judge at most this many pairs (the first ones)."})
    resume: bool = field(
        default=False,
        metadata={
            "help": "Continue the evaluation in --out where it stopped (nothing is judged twice); without it an "
            "earlier evaluation there is moved into archive/."
        },
    )
    concurrency: int = field(default=16, metadata={"help": "Requests in flight to an HTTP critic."})
    world: str | None = field(default=None, metadata={"help": "'sketch': make ground-truth preference pairs first."})
    pairs_count: int = field(default=200, metadata={"help": "Prompts (one pair each) for --world sketch."})
    out: Path = field(
        default=Path("runs/eval"),
        metadata={"help": "Where eval.json, judgements.jsonl and report.html go (and --world sketch's pairs)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the sketch world's pairs."})
    progress: bool = field(default=True, metadata={"cli": False})
