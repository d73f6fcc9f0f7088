"""`rationalrewards distill`: flags parsed from `DistillConfig` by transformers' `HfArgumentParser`, as trl's own CLI
does (every `SFTConfig` / `TrainingArguments` flag works too), plus `distill merge ADAPTER --out DIR`.

Kept apart from `cli/main.py` because it needs its own argument parsing: typer hands it the raw arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

USAGE = """usage: rationalrewards distill --data DIR [--data DIR ...] (--model DIR | --tiny) --out DIR [--lora]
                               [--max-steps N] [--time-budget MIN] [--force-new] [--json] [any SFTConfig flag]
       rationalrewards distill merge ADAPTER_DIR --out DIR [--json]

Distil a critic from PARROT rows with trl's SFTTrainer (PAPER.md, "PARROT", phase 3). Rerun the same command to resume
a killed run from its last checkpoint. Multi-GPU: accelerate launch --config_file training/accelerate/ddp.yaml -m
rationalrewards.cli.main distill ... (see the README).

Our options (defaults are the paper's recipe; --help-all lists every trl / transformers training flag):
"""


def _own_fields_help() -> str:
    from trl import SFTConfig

    from rationalrewards.cli.dataclass_flags import fields_help
    from rationalrewards.training.distill_config import DistillConfig

    # Ours first, then the paper's values for trl's own knobs.
    inherited = frozenset(f.name for f in dataclasses.fields(SFTConfig))
    own = set(DistillConfig.__annotations__)
    hidden = frozenset({"remove_unused_columns"} | {f.name for f in dataclasses.fields(DistillConfig)} - own)
    return fields_help(DistillConfig, hidden=hidden, later=inherited)


def _gather_repeats(args: list[str], flag: str) -> list[str]:
    """`--data a --data b c` -> `--data a b c` (argparse keeps only the last of a repeated list flag)."""
    values: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        if args[index] == flag:
            index += 1
            while index < len(args) and not args[index].startswith("--"):
                values.append(args[index])
                index += 1
        else:
            rest.append(args[index])
            index += 1
    return rest + ([flag, *values] if values else [])


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


def run(args: list[str]) -> None:
    """Parse and run `distill` (or `distill merge`). Raises ValueError on bad input (the CLI exits 2)."""
    if args[:1] == ["merge"]:
        return _merge(args[1:])
    if not args or args[0] in ("-h", "--help"):
        print(USAGE + _own_fields_help())
        return None
    if "--help-all" in args:
        _parser().print_help()
        return None
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--out", required=True)
    own.add_argument("--json", action="store_true")
    own.add_argument("--force-new", action="store_true")
    options, rest = own.parse_known_args(_gather_repeats(args, "--data"))
    parser = _parser()
    try:
        (config,) = parser.parse_args_into_dataclasses(
            args=rest + ["--output_dir", options.out], look_for_args_file=False
        )
    except SystemExit as e:  # argparse already printed what is wrong
        raise ValueError("bad distill arguments (see above; --help lists them)") from e
    from rationalrewards.cli.dataclass_flags import stdout_for_json
    from rationalrewards.training.distill_trainer import train

    with stdout_for_json(options.json):  # the trainer prints its logs to stdout; --json keeps stdout to one object
        figures = train(config, options.out, force_new=options.force_new)
    _print(figures, options.json)
    return None


def _parser() -> Any:
    from transformers.hf_argparser import DataClassType, HfArgumentParser

    from rationalrewards.training.distill_config import DistillConfig

    return HfArgumentParser(DataClassType(DistillConfig))


def _merge(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="rationalrewards distill merge", add_help=True)
    parser.add_argument("adapter", help="A LoRA adapter directory written by `rationalrewards distill --lora`.")
    parser.add_argument("--out", required=True, help="Where the merged full checkpoint goes.")
    parser.add_argument("--json", action="store_true")
    try:
        options = parser.parse_args(args)
    except SystemExit as e:
        if e.code == 0:
            return
        raise ValueError("bad merge arguments (see above)") from e
    from rationalrewards.training.distill_trainer import merge_adapter

    out = merge_adapter(options.adapter, options.out)
    _print({"checkpoint": str(out), "adapter": options.adapter}, options.json)
