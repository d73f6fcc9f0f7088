"""`rationalrewards distill`: the flags come from `DistillOptions` (light: `--help` needs neither trl nor torch), any
other field of trl's `SFTConfig` / transformers' `TrainingArguments` through `--trl NAME=VALUE`, and `distill merge
ADAPTER --out DIR` folds a LoRA adapter into a full checkpoint."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rationalrewards.cli._options import JsonFlag, callback, flag, params_from
from rationalrewards.training.distill_options import DistillOptions

app = typer.Typer(no_args_is_help=True)

DISTILL_HELP = (
    "Distil a critic from PARROT rows with trl's SFTTrainer (paper: PARROT, phase 3); rerun the same command to resume "
    "a killed run from its last checkpoint. Defaults are the paper's recipe. Multi-GPU: accelerate launch "
    "--config_file training/accelerate/ddp.yaml -m rationalrewards distill ... (docs/distillation.md)."
)
TrlFlag = Annotated[
    list[str] | None,
    typer.Option(
        "--trl",
        metavar="NAME=VALUE",
        help="Any other field of trl's SFTConfig or transformers' TrainingArguments, e.g. --trl logging_first_step=true "
        "--trl optim=adamw_torch_fused. Repeat for several.",
    ),
]


def _main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _print(payload: dict[str, Any], as_json: bool) -> None:
    if not _main_process():
        return
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
        return
    for key in ("steps", "train_loss_first", "train_loss_last", "trainable_params", "frozen_params", "rows_used"):
        if key in payload:
            print(f"{key}: {payload[key]}")
    if payload.get("rows_dropped"):
        print(f"rows_dropped: {payload['rows_dropped']} {payload.get('rows_dropped_by_reason')}")
    for entry in payload.get("evaluations") or []:
        print(f"eval at step {entry['step']}: {entry}")
    print(f"checkpoint: {payload.get('checkpoint')}")


def trl_overrides(pairs: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` pairs, typed by trl's own parser. Refused: a name that is one of our flags (use the flag) or not a
    field of the config (the message names it)."""
    if not pairs:
        return {}
    from transformers.hf_argparser import HfArgumentParser

    from rationalrewards.training.distill_config import DistillConfig

    ours = {f.name for f in dataclasses.fields(DistillOptions)}
    theirs = {f.name for f in dataclasses.fields(DistillConfig)} - ours
    args: list[str] = []
    names = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().removeprefix("--").replace("-", "_")
        if not sep or not name:
            raise ValueError(f"--trl takes NAME=VALUE, got {pair!r}")
        if name in ours or name == "output_dir":
            raise ValueError(f"--trl {name}: this is one of distill's own flags; use --{name.replace('_', '-')}")
        if name not in theirs:
            raise ValueError(f"--trl {name}: SFTConfig has no field {name!r}")
        names.append(name)
        args += [f"--{name}", value]
    parser = HfArgumentParser(DistillConfig)  # type: ignore[arg-type]  # a dataclass; transformers' alias is narrower
    namespace, unknown = parser.parse_known_args(args)
    if unknown:
        raise ValueError(f"--trl values not understood: {' '.join(unknown)}")
    return {name: getattr(namespace, name) for name in names}


def _distill(
    ctx: typer.Context, out: Path | None, force_new: bool, trl: list[str] | None, as_json: bool, **flags: Any
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise ValueError("distill needs --out DIR (where the student and its checkpoints go)")
    options = DistillOptions(**flags)  # our rules first, before trl is imported
    extra = trl_overrides(trl or [])
    from rationalrewards.cli._flags import stdout_for_json
    from rationalrewards.training.distill_config import DistillConfig
    from rationalrewards.training.distill_trainer import train

    config = DistillConfig(**dataclasses.asdict(options), **extra, output_dir=str(out))
    with stdout_for_json(as_json):  # the trainer prints its logs to stdout; --json keeps stdout to one object
        figures = train(config, out, force_new=force_new)
    _print(figures, as_json)


callback(
    app,
    _distill,
    [
        *params_from(DistillOptions),
        flag("out", Annotated[Path | None, typer.Option(help="Output directory (rerun to resume).")], None),
        flag(
            "force_new",
            Annotated[bool, typer.Option("--force-new", help="Archive a run with other settings and start afresh.")],
            False,
        ),
        flag("trl", TrlFlag, None),
        flag("as_json", JsonFlag, False),
    ],
    DISTILL_HELP,
)


@app.command("merge")
def merge(
    adapter: Annotated[Path, typer.Argument(help="A LoRA adapter directory written by `distill --lora`.")],
    out: Annotated[Path, typer.Option("--out", help="Where the merged full checkpoint goes.")],
    as_json: JsonFlag = False,
) -> None:
    """Fold a LoRA adapter into its base model: a full checkpoint that `--critic DIR` and `vllm serve` load."""
    from rationalrewards.training.distill_trainer import merge_adapter

    merged = merge_adapter(adapter, out)
    _print({"checkpoint": str(merged), "adapter": str(adapter)}, as_json)
