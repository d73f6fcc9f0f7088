"""`rationalrewards rl`: diffusion RL with critique rewards. The flags are `RLRun`'s (the critic, the prompts, the run
directory) and the algorithms' configs (`NFTConfig`, `GRPOConfig`): the knobs both share once, each algorithm's own
marked as such. A knob whose default differs between the two shows "the algorithm's" and takes its config's default."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import typer

from rationalrewards.cli._options import command, json_flag, params_from, split
from rationalrewards.plumbing.choices import check_choices
from rationalrewards.rewardmodel.prompts import PromptChoice
from rationalrewards.training.grpo_config import GRPOConfig
from rationalrewards.training.nft_config import NFTConfig
from rationalrewards.training.rl_config import RLConfig

Algorithm = Literal["nft", "grpo"]
CONFIGS: dict[Algorithm, type[RLConfig]] = {"nft": NFTConfig, "grpo": GRPOConfig}
RL_HELP = (
    "Diffusion RL of a flow-matching pipeline's LoRA with a critique reward (DiffusionNFT or Flow-GRPO). A run writes "
    "history.jsonl, tensorboard/, samples/step-N.png, checkpoints/step-N/ and lora/ (load it with "
    "`pipe.load_lora_weights(DIR)` or `refine --generator PIPE --lora DIR`); rerun the same command to resume."
)


@dataclass(frozen=True)
class RLRun:
    """What an `rl` run reads and where it writes, besides the algorithm's knobs."""

    prompts: Path = field(
        metadata={"help": "A JSONL suite (`prompt`, and `source_image` for editing) or a text file, one prompt a line."}
    )
    critic: str = field(
        metadata={
            "help": "The reward: a world's critic (sketch, sketch-pixels), fake, an http(s):// critic server, a model "
            "directory, or py:module:function (a function of a CritiqueRequest: aspect scores, a critique text or an "
            "Abstention).",
            "repeat": True,
        }
    )
    out: Path = field(metadata={"help": "Run directory (rerun the same command to resume)."})
    algo: Algorithm = field(default="nft", metadata={"help": "DiffusionNFT or Flow-GRPO."})
    eval_critic: str | None = field(
        default=None, metadata={"help": "A second, eval-only reward model for the evaluations and the hacking alarm."}
    )
    model: str | None = field(default=None, metadata={"help": "Served model name of an HTTP critic."})
    critic_prompts: PromptChoice = field(default="auto", metadata={"help": "Prompt profile of a text critic."})
    max_tokens: int | None = field(default=None, metadata={"help": "Most tokens one critique may take."})
    force_new: bool = field(default=False, metadata={"help": "Archive a run with other settings and start afresh."})

    def __post_init__(self) -> None:
        check_choices(self)


def _rl_params() -> tuple[list[inspect.Parameter], dict[str, tuple[Algorithm, ...]]]:
    """The union of both configs' fields as flags; which algorithms each algorithm-specific field belongs to."""
    shared = {f.name for f in dataclasses.fields(RLConfig)}
    owners: dict[str, tuple[Algorithm, ...]] = {}
    differing: dict[str, object] = {}
    for algo, config in CONFIGS.items():
        for item in dataclasses.fields(config):
            if item.name not in shared:
                owners[item.name] = (*owners.get(item.name, ()), algo)
    for item in dataclasses.fields(RLConfig):
        defaults = {config.__dataclass_fields__[item.name].default for config in CONFIGS.values()}
        if len(defaults) > 1:
            differing[item.name] = None
    params = params_from(RLConfig, defaults=differing)
    for param in params:
        if param.name in differing:
            per_algo = ", ".join(f"{a} {c.__dataclass_fields__[param.name].default}" for a, c in CONFIGS.items())
            _annotate(param, f" (default: {per_algo})")
    for algo, config in CONFIGS.items():
        own = [p for p in params_from(config, defaults=dict.fromkeys(owners, None)) if p.name in owners]
        for param in own:
            if owners[param.name] == (algo,):
                default = config.__dataclass_fields__[param.name].default
                _annotate(param, f" (--algo {algo} only; default {default})")
                params.append(param)
    return params, owners


def _annotate(param: inspect.Parameter, note: str) -> None:
    """Add `note` to the help of the typer option inside a parameter's annotation."""
    for info in getattr(param.annotation, "__metadata__", ()):
        if hasattr(info, "help") and info.help is not None:
            info.help += note


def read_prompts(path: Path) -> list[dict[str, Any]]:
    """A suite in any data format (validated, source images resolved) or a plain text file with one prompt per line."""
    from rationalrewards.agents.suite import read_suite

    if not path.exists():
        raise ValueError(f"prompts file not found: {path}")
    if path.is_dir() or path.suffix.lower() in (".jsonl", ".json", ".parquet", ".arrow", ".csv", ".tsv"):
        return [row.model_dump() for row in read_suite(path)]
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text") from e
    prompts = [{"prompt": line} for line in lines if line]
    if not prompts:
        raise ValueError(f"{path} holds no prompts")
    return prompts


def _rl(as_json: bool, **flags: object) -> None:
    run_flags, knobs = split(flags, RLRun)
    run = RLRun(**run_flags)
    config_class = CONFIGS[run.algo]
    own = {f.name for f in dataclasses.fields(config_class)}
    foreign = sorted(name for name, value in knobs.items() if name not in own and value is not None)
    if foreign:
        other = "grpo" if run.algo == "nft" else "nft"
        raise ValueError(f"--{foreign[0].replace('_', '-')} is a knob of --algo {other}, not {run.algo}")
    config = config_class(**{k: v for k, v in knobs.items() if k in own and v is not None})
    from rationalrewards.agents.factory import reward_model_from_spec
    from rationalrewards.cli._flags import stdout_for_json
    from rationalrewards.training.grpo_trainer import GRPOTrainer
    from rationalrewards.training.nft_trainer import NFTTrainer

    prompts = read_prompts(run.prompts)
    text: dict[str, Any] = {"model": run.model, "prompts": run.critic_prompts, "max_tokens": run.max_tokens}
    critic = reward_model_from_spec(run.critic, **text)
    from rationalrewards.rewardmodel.schemas import Aspect
    from rationalrewards.training._rl_rewards import parse_reward_terms, term_reward_model

    terms = parse_reward_terms(config.reward, [a.value for a in Aspect])
    extra = {t.spec: term_reward_model(t) for t in terms if t.kind == "model"}
    eval_critic = reward_model_from_spec(run.eval_critic, **text) if run.eval_critic else None
    trainer_class = NFTTrainer if run.algo == "nft" else GRPOTrainer
    trainer = trainer_class(config, critic, prompts, eval_reward_model=eval_critic, extra_rewards=extra, out=run.out)
    with stdout_for_json(as_json):
        history = trainer.train(force_new=run.force_new)
    _print(history, run.out, as_json)


def _print(history: list[dict[str, Any]], out: Path, as_json: bool) -> None:
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


def register(app: typer.Typer) -> None:
    params, _ = _rl_params()
    command(app, "rl", _rl, [*params_from(RLRun), *params, json_flag()], RL_HELP)
