"""`rationalrewards rl`: diffusion RL with critique rewards. The algorithm's config dataclass (`NFTConfig` or
`GRPOConfig`) gives the flags through transformers' `HfArgumentParser`; the critic, prompts and run directory are
ours. Kept apart from `cli/main.py` because it parses its own arguments: typer hands it the raw ones."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

USAGE = """usage: rationalrewards rl --algo nft|grpo (--pipeline DIR | --tiny) --prompts FILE --critic SPEC --out DIR
                          [--max-steps N] [--eval-critic SPEC] [--model NAME] [--critic-prompts auto|release|house|compact]
                          [--max-tokens N] [--force-new] [--json] [any --algo config flag]

Diffusion RL of a flow-matching pipeline's LoRA with a critique reward (PAPER.md, "RL with the critique reward").
--prompts: a JSONL suite (`prompt`, and `source_image` for editing) or a text file, one prompt per line.
--critic: sketch | fake | http(s)://URL (a served critic) | MODEL_DIR | py:module:function (a function of a
CritiqueRequest returning aspect scores, a critique text or an Abstention: a scalar reward or a rule of your own).
--eval-critic: a second, eval-only reward model for the evaluations and the hacking alarm.
A run writes history.jsonl, tensorboard/, samples/step-N.png, checkpoints/step-N/ and lora/ (load it with
`pipe.load_lora_weights(DIR)` or `rationalrewards refine --generator PIPE --lora DIR`). Rerun the same command to
resume a killed run.

Flags of --algo {algo} (defaults: the release's editing recipe where it has one):
"""


def _config_class(algo: str) -> Any:
    if algo == "nft":
        from rationalrewards.training.nft_config import NFTConfig

        return NFTConfig
    if algo == "grpo":
        from rationalrewards.training.grpo_config import GRPOConfig

        return GRPOConfig
    raise ValueError(f"--algo is nft or grpo, got {algo!r}")


def _trainer_class(algo: str) -> Any:
    if algo == "nft":
        from rationalrewards.training.nft_trainer import NFTTrainer

        return NFTTrainer
    from rationalrewards.training.grpo_trainer import GRPOTrainer

    return GRPOTrainer


def read_prompts(path: str) -> list[dict[str, Any]]:
    """A JSONL suite (validated, source images resolved) or a plain text file with one prompt per line."""
    from pathlib import Path

    from rationalrewards.agents.suite import read_suite

    file = Path(path)
    if not file.is_file():
        raise ValueError(f"prompts file not found: {file}")
    if file.suffix in (".jsonl", ".json"):
        return [row.model_dump() for row in read_suite(file)]
    try:
        lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as e:
        raise ValueError(f"{file}: not UTF-8 text") from e
    prompts = [{"prompt": line} for line in lines if line]
    if not prompts:
        raise ValueError(f"{file} holds no prompts")
    return prompts


def run(args: list[str]) -> None:
    from rationalrewards.cli.dataclass_flags import fields_help, stdout_for_json

    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--algo", default="nft")
    own.add_argument("--prompts")
    own.add_argument("--critic")
    own.add_argument("--eval-critic")
    own.add_argument("--model")
    own.add_argument("--critic-prompts", default="auto")
    own.add_argument("--max-tokens", type=int)
    own.add_argument("--out")
    own.add_argument("--json", action="store_true")
    own.add_argument("--force-new", action="store_true")
    own.add_argument("-h", "--help", action="store_true")
    options, rest = own.parse_known_args(args)
    config_class = _config_class(options.algo)
    if options.help or not args:
        print(USAGE.format(algo=options.algo) + fields_help(config_class))
        return
    missing = [flag for flag in ("prompts", "critic", "out") if getattr(options, flag) is None]
    if missing:
        raise ValueError(f"rl needs {', '.join('--' + m for m in missing)} (rationalrewards rl --help)")
    from transformers.hf_argparser import HfArgumentParser

    try:
        (config,) = HfArgumentParser(config_class).parse_args_into_dataclasses(args=rest, look_for_args_file=False)
    except SystemExit as e:  # argparse already printed what is wrong
        raise ValueError("bad rl arguments (see above; --help lists them)") from e
    from rationalrewards.agents.factory import reward_model_from_spec

    prompts = read_prompts(options.prompts)
    text = {"model": options.model, "prompts": options.critic_prompts, "max_tokens": options.max_tokens}
    critic = reward_model_from_spec(options.critic, **text)
    eval_critic = reward_model_from_spec(options.eval_critic, **text) if options.eval_critic else None
    trainer = _trainer_class(options.algo)(config, critic, prompts, eval_reward_model=eval_critic, out=options.out)
    with stdout_for_json(options.json):
        history = trainer.train(force_new=options.force_new)
    _print(history, options.out, options.json)


def _print(history: list[dict[str, Any]], out: str, as_json: bool) -> None:
    if int(os.environ.get("RANK", "0")) != 0:  # one summary per run, from the main process
        return
    rewards = [row["reward_mean"] for row in history if row.get("reward_mean") is not None]
    alarms = [row["hacking_alarm"] for row in history if row.get("hacking_alarm")]
    summary = {
        "steps": len(history),
        "reward_first": rewards[0] if rewards else None,
        "reward_last": rewards[-1] if rewards else None,
        "abstained": sum(row.get("abstained", 0) for row in history),
        "hacking_alarms": alarms,
        "world_size": history[-1].get("world_size", 1) if history else 1,
        "lora": f"{out}/lora",
        "history": f"{out}/history.jsonl",
    }
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
        return
    for key, value in summary.items():
        print(f"{key}: {value}")
