"""PARROT's third phase: distil a critic from filtered rationales (docs/method.md, "PARROT", phase 3) with trl's
`SFTTrainer`.

The paper fine-tunes Qwen3-VL-8B fully, vision tower frozen, on ~57.6K pairwise + ~98K pointwise rows (lr 1e-5,
cosine, 3 epochs). Here the student is any local Qwen2-VL / Qwen2.5-VL / Qwen3-VL directory (or a tiny one built in
code), trained fully or with LoRA. What this module adds to trl: rows turned into the exact token sequences the critic
is served with (`distill_collator`), the loss on the answer only, every dropped or truncated row counted, a held-out
split scored through our own backend during training (`distill_eval`), and an output directory that the critic
backends, `rationalrewards critique/eval --critic DIR` and `vllm serve` take as it is: safetensors, processor, chat
template, generation config, a `rationalrewards.json` naming the prompt profile the student was trained on, and a
model card with the data report, the settings and the evaluation figures. A killed run resumes from its last
checkpoint; `merge_adapter` turns a LoRA adapter into a full checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from trl import SFTTrainer

from rationalrewards.plumbing.choices import choice
from rationalrewards.rewardmodel.backends.local import VISION_FAMILIES, TextProcessor
from rationalrewards.rewardmodel.prompts import COMPACT_INTRO, PROFILE_MARKER
from rationalrewards.rewardmodel.tiny import Family
from rationalrewards.training._distill_collator import IGNORE, CritiqueCollator, fit_to_length
from rationalrewards.training._distill_eval import HeldOutEvaluation, TimeBudget
from rationalrewards.training.distill_config import LANGUAGE_MODEL_PROJECTIONS, TEXT_MODEL_PROJECTIONS, DistillConfig
from rationalrewards.training.distill_data import (
    CritiqueRow,
    DataReport,
    declared_student_profile,
    describe_row,
    load_rows,
    mix,
    split_by_prompt,
)

log = structlog.get_logger(__name__)
MODEL_DIR, ADAPTER_DIR, CHECKPOINTS, INIT_DIR = "model", "adapter", "checkpoints", "student-init"
# Processor files copied from the student's directory to the output (what `vllm serve` and our loader read).
_PROCESSOR_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.json",
    "chat_template.jinja",
    "preprocessor_config.json",
    "processor_config.json",
    "video_preprocessor_config.json",
)
# The settings a resumed run must share with the run it resumes (the rest, e.g. --time-budget, may change).
_RUN_SETTINGS = (
    "model",
    "tiny",
    "tiny_family",
    "lora",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "freeze_vision",
    "train_layers",
    "transcript_noise",
    "data",
    "pairwise_share",
    "eval_share",
    "eval_data",
    "max_pixels",
    "overlong",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "weight_decay",
    "max_length",
    "seed",
    "bf16",
)


class CriticSFTTrainer(SFTTrainer):
    """trl's `SFTTrainer`, whose log lines also carry the held-out figures computed at that step (so the loggers, e.g.
    TensorBoard, see them beside the loss)."""

    evaluation: HeldOutEvaluation | None = None
    plain_losses: list[float] | None = None  # with a decision weight: each step's unweighted loss, for the log

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if self.evaluation is not None:
            logs = {**logs, **self.evaluation.take_pending()}
        if self.plain_losses and "loss" in logs:
            logs = {**logs, "loss_plain": sum(self.plain_losses) / len(self.plain_losses)}
            self.plain_losses.clear()
        super().log(logs, *args, **kwargs)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        """Cross-entropy on the answer tokens, with logits computed only from the first answer position on
        (`logits_to_keep`). trl's default path runs a chunked LM head over every position, prompt included, to also
        log entropy and token accuracy: on a CPU that was 48% of a SmolLM2 step (py-spy), the decoder layers 35%.
        Other set-ups (label smoothing, a custom loss, MoE aux losses, other loss types) keep trl's path."""
        import torch

        if (
            self.label_smoother is not None
            or self.compute_loss_func is not None
            or self.aux_loss_enabled
            or getattr(self.args, "loss_type", "nll") != "nll"
        ):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        decision = inputs.pop("decision_mask", None)
        labels = inputs["labels"]
        answer = (labels != IGNORE).any(dim=0).nonzero()
        start = max(int(answer[0]) - 1, 0) if len(answer) else labels.shape[1] - 1
        forward = {k: v for k, v in inputs.items() if k != "labels"} | {"use_cache": False}
        outputs = model(**forward, logits_to_keep=labels.shape[1] - start)
        logits = outputs.logits[:, :-1].float()  # position t predicts token t + 1
        targets = labels[:, start + 1 :]
        per_token = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE, reduction="none"
        )
        total = per_token.sum()
        count = num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum()
        if decision is not None:  # decision-bearing tokens weighted; the weights' sum replaces the token count
            answered = (targets != IGNORE).reshape(-1).float()
            weight = float(getattr(self.args, "decision_loss_weight", 1.0))  # a DistillConfig field
            weights = answered * (1 + (weight - 1) * decision[:, start + 1 :].reshape(-1).float())
            if self.plain_losses is None:
                self.plain_losses = []
            self.plain_losses.append(float(total.detach()) / max(float(answered.sum()), 1.0))
            total = (per_token * weights).sum()
            count = weights.sum()
        loss = total / torch.as_tensor(count, device=total.device).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as trl: DDP averages gradients over ranks
        return (loss, outputs) if return_outputs else loss

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        """Resume with the checkpoint's weights, read through `from_pretrained`. transformers saves Qwen-VL weights
        under their original names (`model.layers...`) and renames them only in `from_pretrained`; the stock resume
        path loads the file as it is with `strict=False`, so every weight is missed and the run silently continues
        from its *initial* weights (our kill-and-resume test caught it). Adapters and sharded (FSDP, DeepSpeed)
        checkpoints keep the stock path."""
        model = self.model if model is None else model
        single_file = (Path(resume_from_checkpoint) / "model.safetensors").is_file()
        if not single_file or getattr(model, "peft_config", None) or self.is_fsdp_enabled or self.is_deepspeed_enabled:
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            return
        dtype = next(model.parameters()).dtype
        saved = type(model).from_pretrained(resume_from_checkpoint, dtype=dtype, trust_remote_code=False)
        model.load_state_dict(saved.state_dict(), strict=True)
        del saved


def rows_dataset(rows: list[CritiqueRow], *, text: bool = False) -> object:
    """The rows as the `datasets.Dataset` trl takes: each item is its row's index (the collator holds the rows) and,
    for a VLM, its `images` column (what tells trl it is a vision dataset)."""
    from datasets import Dataset

    if text:
        return Dataset.from_dict({"row": list(range(len(rows)))})
    images = [[source if isinstance(source, str) else "<bytes>" for source in row.images] for row in rows]
    return Dataset.from_dict({"row": list(range(len(rows))), "images": images})


@dataclass
class Student:
    model: Any
    processor: Any
    directory: Path  # where it was loaded from (the base of a LoRA adapter)
    describe_image: Callable[[str], str] | None = None  # a text student's perception; None for a VLM

    @property
    def text(self) -> bool:
        return self.describe_image is not None


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def load_student(config: DistillConfig, out: Path) -> Student:
    """The student and its processor, images capped at `max_pixels`. `--tiny` saves a tiny Qwen-VL first, so even it
    has a directory (a LoRA adapter names its base by path)."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    from rationalrewards.rewardmodel.tiny import load_processor, save_tiny_vlm

    if config.tiny:
        directory = out / INIT_DIR
        if not directory.is_dir() and _is_main_process():
            # Written aside and renamed into place: another rank (or a reader after a kill) sees all of it or none.
            staging = out / f".{INIT_DIR}.{os.getpid()}"
            save_tiny_vlm(staging, choice(config.tiny_family, Family, "family"), seed=config.seed)
            os.replace(staging, directory)
        _wait_for(directory)
    else:
        directory = Path(str(config.model))
        if not directory.is_dir() or not any(directory.glob("*.safetensors")):
            raise ValueError(f"--model {directory} is not a local model directory with *.safetensors weights")
    model_config = AutoConfig.from_pretrained(directory, trust_remote_code=False)
    family = model_config.model_type
    dtype = torch.bfloat16 if config.bf16 else torch.float32
    if family not in VISION_FAMILIES:
        if not any(str(name).endswith("ForCausalLM") for name in model_config.architectures or []):
            raise ValueError(
                f"--model {directory} is a {family!r} model; the student must be Qwen2-VL, Qwen2.5-VL, Qwen3-VL or "
                "a causal language model (a text student)"
            )
        from transformers import AutoModelForCausalLM, AutoTokenizer

        text_model = AutoModelForCausalLM.from_pretrained(
            directory, trust_remote_code=False, use_safetensors=True, dtype=dtype
        )
        processor = TextProcessor(AutoTokenizer.from_pretrained(directory))
        from rationalrewards.agents.world import world_named

        describe = world_named(config.perception_world).text_perception(config.transcript_noise)
        return Student(text_model, processor, directory, describe_image=describe)
    processor = load_processor(directory, family=family)
    cap_pixels(processor.image_processor, config.max_pixels)
    model = AutoModelForImageTextToText.from_pretrained(
        directory, trust_remote_code=False, use_safetensors=True, dtype=dtype
    )
    return Student(model=model, processor=processor, directory=directory)


def _wait_for(path: Path, seconds: float = 300.0) -> None:
    """Other ranks wait for the main process to write the tiny student (a file barrier before the process group)."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.2)


def cap_pixels(image_processor: Any, max_pixels: int) -> None:
    """Scale images down to at most `max_pixels` (never up past the processor's own cap)."""
    size = dict(getattr(image_processor, "size", None) or {})
    longest = min(int(size.get("longest_edge", max_pixels)), max_pixels)
    size["longest_edge"] = longest
    size["shortest_edge"] = min(int(size.get("shortest_edge", longest)), longest)
    image_processor.size = size
    if hasattr(image_processor, "max_pixels"):
        image_processor.max_pixels = longest
    if hasattr(image_processor, "min_pixels"):
        image_processor.min_pixels = size["shortest_edge"]


def freeze_vision(model: Any) -> None:
    """Freeze the vision tower and its projector (every parameter under `visual`)."""
    for name, parameter in model.named_parameters():
        if ".visual." in f".{name}":
            parameter.requires_grad_(False)


def decoder_layers(model: Any) -> Any:
    """The language model's stack of decoder layers (a text LM's `model.layers`; a Qwen-VL's language model's)."""
    for path in ("model.layers", "model.language_model.layers", "language_model.model.layers", "language_model.layers"):
        module = model
        for name in path.split("."):
            module = getattr(module, name, None)
        if module is not None:
            return module
    raise ValueError(f"cannot find the decoder layers of a {type(model).__name__}")


def train_top_layers(model: Any, count: int) -> None:
    """Freeze everything but the top `count` decoder layers and the final norm."""
    layers = decoder_layers(model)
    if count > len(layers):
        raise ValueError(f"--train-layers {count}: the model has {len(layers)} decoder layers")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    trained = list(layers[-count:])
    norm = getattr(getattr(model, "model", model), "norm", None) or getattr(
        getattr(getattr(model, "model", None), "language_model", None), "norm", None
    )
    for module in trained + ([norm] if norm is not None else []):
        for parameter in module.parameters():
            parameter.requires_grad_(True)


def parameter_counts(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return trainable, frozen


def _lora_config(config: DistillConfig, student: Student) -> Any:
    from peft import LoraConfig

    targets = config.lora_target_modules
    if student.text and targets == LANGUAGE_MODEL_PROJECTIONS:  # the default names a VLM's language model
        targets = TEXT_MODEL_PROJECTIONS
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def _prompt_profile(config: DistillConfig, rows: list[CritiqueRow]) -> str | None:
    """The profile the rows were written in: a PARROT card says it; otherwise read it from a row's request."""
    declared = declared_student_profile(config.data)
    if declared:
        return declared
    from rationalrewards.rewardmodel import _release_format as release_format

    for row in rows[:50]:
        system = [p["text"] for t in row.turns if t["role"] == "system" for p in t["content"] if p["type"] == "text"]
        user = "".join(t for turn in row.turns if turn["role"] == "user" for t in _texts(turn))
        if any(s in (release_format.T2I_SYSTEM, release_format.EDIT_SYSTEM) for s in system):
            return "release"
        if user.startswith(("User Instruction: ", "You are an expert image")):
            return "release"
        if user.startswith(tuple(intro.split(" (", 1)[0] for intro in COMPACT_INTRO.values())):
            return "compact"
    return "house"


def _texts(turn: dict[str, Any]) -> list[str]:
    return [p["text"] for p in turn["content"] if p["type"] == "text"]


def prepare_rows(
    config: DistillConfig, collator: CritiqueCollator, describe_image: Callable[[str], str] | None = None
) -> tuple[list[CritiqueRow], list[CritiqueRow], DataReport]:
    """(training rows, held-out rows, the report): read (for a text student, images described), split by prompt,
    mixed, fitted to `max_length`."""
    report = DataReport()
    rows = load_rows(config.data, report)
    given = load_rows(config.eval_data, DataReport()) if config.eval_data else []
    if describe_image is not None:
        rows = [describe_row(row, describe_image) for row in rows]
        given = [describe_row(row, describe_image) for row in given]
    report.prompt_profile = _prompt_profile(config, rows)
    if given:
        shared = {row.key for row in given} & {row.key for row in rows}
        if shared:
            raise ValueError(f"--eval-data shares {len(shared)} prompts with --data (e.g. {sorted(shared)[0]!r})")
        train, held = rows, given
    else:
        train, held = split_by_prompt(rows, config.eval_share, config.seed)
    train = mix(train, config.pairwise_share, config.seed)
    train = fit_to_length(train, collator, config.max_length, config.overlong_policy, report)
    if not train:
        raise ValueError(
            f"no training row fits --max-length {config.max_length}: {report.as_dict()['rows_dropped_by_reason']}"
        )
    report.used, report.held_out = len(train), len(held)
    for row in train:
        report.kinds[row.kind] += 1
    return train, held, report


def _settings(config: DistillConfig) -> dict[str, object]:
    values = {name: getattr(config, name) for name in _RUN_SETTINGS}
    return json.loads(json.dumps(values, default=str))


def train(config: DistillConfig, out: str | Path, *, force_new: bool = False) -> dict[str, object]:
    """Distil a critic into `out` (resuming a killed run there). Returns the figures the CLI prints."""
    from transformers.trainer_utils import get_last_checkpoint

    from rationalrewards.runtime.rundir import RunDirectory

    out = Path(out)
    config.output_dir = str(out / CHECKPOINTS)
    run_dir = RunDirectory(out).open("distill", _settings(config), force_new=force_new) if _is_main_process() else None
    try:
        student = load_student(config, out)
        # Rows reach the collator as indices; trl must not tokenise them itself (it skips this for VLMs on its own).
        given = config.dataset_kwargs if isinstance(config.dataset_kwargs, dict) else {}
        config.dataset_kwargs = given | {"skip_prepare_dataset": True}
        collator = CritiqueCollator(student.processor, config.max_length, decision_weight=config.decision_loss_weight)
        train_rows, held_rows, report = prepare_rows(config, collator, student.describe_image)
        collator.rows = train_rows
        if config.freeze_vision and not config.lora:
            freeze_vision(student.model)
        if config.train_layers:
            train_top_layers(student.model, config.train_layers)
        evaluation = HeldOutEvaluation(
            held_rows,
            student.processor,
            every=config.eval_every,
            pairs=config.eval_pairs,
            max_new_tokens=config.eval_max_new_tokens,
        )
        budget = TimeBudget(config.time_budget, excluded=evaluation) if config.time_budget else None
        trainer = CriticSFTTrainer(
            model=student.model,
            args=config,
            train_dataset=rows_dataset(train_rows, text=student.text),
            data_collator=collator,
            processing_class=student.processor.tokenizer if student.text else student.processor,
            peft_config=_lora_config(config, student) if config.lora else None,
            callbacks=[evaluation] + ([budget] if budget else []),
        )
        evaluation.trainer, trainer.evaluation = trainer, evaluation
        trainable, frozen = parameter_counts(trainer.model)
        checkpoint = get_last_checkpoint(config.output_dir) if Path(config.output_dir).is_dir() else None
        finished = _finished_summary(out, checkpoint)
        if finished is not None:
            return finished | {"already_finished": True}
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=checkpoint)
        seconds = time.perf_counter() - started
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        plain = [entry["loss_plain"] for entry in trainer.state.log_history if "loss_plain" in entry]
        tokens = [entry["num_tokens"] for entry in trainer.state.log_history if "num_tokens" in entry]
        figures = {
            "steps": trainer.state.global_step,
            "resumed_from": checkpoint,
            "train_loss_first": losses[0] if losses else None,
            "train_loss_last": losses[-1] if losses else None,
            "losses": losses,
            **({"plain_losses": plain, "decision_loss_weight": config.decision_loss_weight} if plain else {}),
            "trainable_params": trainable,
            "frozen_params": frozen,
            "world_size": trainer.args.world_size,
            "seconds": round(seconds, 2),
            "collate_seconds": round(collator.seconds, 2),
            "train_tokens": int(tokens[-1]) if tokens else None,  # every token of every row, this process
            "stopped_by_time_budget": bool(budget and budget.hit),
            "evaluations": evaluation.history,
            **report.as_dict(),
        }
        if trainer.is_world_process_zero():
            target = out / (ADAPTER_DIR if config.lora else MODEL_DIR)
            save_student(trainer.model, student, target, config, figures)
            figures["checkpoint"] = str(target)
            if run_dir is not None:
                run_dir.write_json("summary.json", figures)
        _leave_process_group()
        return figures
    finally:
        if run_dir is not None:
            run_dir.close()


def _leave_process_group() -> None:
    """Under DDP, every rank waits here until the main one has saved, then all tear the group down together. A rank
    that returned at once and exited while the main process was still saving once aborted (SIGABRT) in gloo's
    teardown at interpreter exit, failing a run whose training had finished."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _finished_summary(out: Path, checkpoint: str | None) -> dict[str, object] | None:
    """The summary of a run that already reached its last step (rerunning a finished command changes nothing)."""
    summary = out / "summary.json"
    if checkpoint is None or not summary.is_file():
        return None
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    if state.get("global_step", 0) < state.get("max_steps", 1):
        return None
    finished: dict[str, object] = json.loads(summary.read_text())
    return finished


def save_student(model: Any, student: Student, target: Path, config: DistillConfig, figures: dict[str, object]) -> Path:
    """The output directory: weights (full model or adapter), processor files, the profile marker and a model card."""
    if target.exists():
        shutil.rmtree(target)
    model.save_pretrained(target, safe_serialization=True)
    copy_processor_files(student.directory, target)
    cap_pixels_on_disk(target, config.max_pixels)
    (target / PROFILE_MARKER).write_text(
        json.dumps(
            {
                "prompt_profile": figures.get("prompt_profile") or "house",
                "trained_with": "rationalrewards distill",
                # A distilled critic is read greedily: sampling (the backends' 0.1 for a served model) only adds
                # noise to scores it was trained to give deterministically.
                "decoding": "greedy",
                "base": str(student.directory),
                "lora": config.lora,
            }
            | ({"perception": {"kind": "sketch-transcript", "noise": config.transcript_noise}} if student.text else {}),
            indent=1,
        )
    )
    (target / "README.md").write_text(model_card(config, figures, student.directory), encoding="utf-8")
    return target


def copy_processor_files(source: Path, target: Path) -> None:
    for name in _PROCESSOR_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)


def cap_pixels_on_disk(directory: Path, max_pixels: int) -> None:
    """Write the pixel cap into the saved image processor, so serving scales images as training did."""
    path = directory / "preprocessor_config.json"
    if not path.is_file():
        return
    data = json.loads(path.read_text())
    size = dict(data.get("size") or {})
    longest = min(int(size.get("longest_edge", max_pixels)), max_pixels)
    size["longest_edge"], size["shortest_edge"] = longest, min(int(size.get("shortest_edge", longest)), longest)
    data["size"] = size
    for key, value in (("max_pixels", longest), ("min_pixels", size["shortest_edge"])):
        if key in data:
            data[key] = value
    path.write_text(json.dumps(data, indent=2))


def model_card(config: DistillConfig, figures: dict[str, Any], base: Path) -> str:
    settings = {name: getattr(config, name) for name in _RUN_SETTINGS}
    lines = [
        "---",
        "library_name: transformers",
        "tags: [rationalrewards, reward-model, critic, parrot]",
        "---",
        "# A RationalRewards critic distilled with `rationalrewards distill`",
        "",
        f"- base: `{base}`; mode: {'LoRA adapter' if config.lora else 'full fine-tune, vision tower frozen' if config.freeze_vision else 'full fine-tune'}",
        f"- prompt profile it was trained on: `{figures.get('prompt_profile')}` (also in `{PROFILE_MARKER}`)",
        f"- steps: {figures['steps']}; loss {figures['train_loss_first']} -> {figures['train_loss_last']}",
        f"- rows: {figures['rows_used']} used, {figures['rows_held_out']} held out, {figures['rows_dropped']} dropped "
        f"{figures['rows_dropped_by_reason']}, {figures['rows_truncated']} truncated",
        "",
        "## Evaluation on held-out pairs",
        "",
        "| step | pairs | accuracy | parse rate | abstention rate |",
        "|---|---|---|---|---|",
    ]
    for entry in figures.get("evaluations") or []:
        lines.append(
            f"| {entry['step']} | {entry.get('eval_pairs')} | {entry.get('eval_pairwise_accuracy')} | "
            f"{entry.get('eval_parse_rate')} | {entry.get('eval_abstention_rate')} |"
        )
    lines += ["", "## Settings", "", "```json", json.dumps(settings, indent=1, default=str), "```", ""]
    for source in map(Path, config.data):
        card = source / "card.md"
        if card.is_file():
            lines += [f"## Data card: {source}", "", card.read_text(encoding="utf-8"), ""]
    return "\n".join(lines)


def merge_adapter(adapter_dir: str | Path, out: str | Path) -> Path:
    """A full checkpoint from a LoRA adapter: base + adapter merged, with the adapter's processor, marker and card."""
    adapter_dir, out = Path(adapter_dir), Path(out)
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.is_file():
        raise ValueError(f"{adapter_dir} is not a LoRA adapter directory (no adapter_config.json)")
    base = Path(json.loads(config_path.read_text())["base_model_name_or_path"])
    if not base.is_dir():
        raise ValueError(f"the adapter's base model {base} is not a local directory")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(
        base, trust_remote_code=False, use_safetensors=True, dtype=torch.float32
    )
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    if out.exists():
        shutil.rmtree(out)
    merged.save_pretrained(out, safe_serialization=True)
    copy_processor_files(adapter_dir, out)
    for name in (PROFILE_MARKER, "README.md"):
        if (adapter_dir / name).is_file():
            shutil.copy2(adapter_dir / name, out / name)
    marker = out / PROFILE_MARKER
    if marker.is_file():
        data = json.loads(marker.read_text()) | {"lora": False, "merged_from": str(adapter_dir)}
        marker.write_text(json.dumps(data, indent=1))
    log.info("distill.merged", adapter=str(adapter_dir), base=str(base), out=str(out))
    return out


__all__ = ["cap_pixels", "freeze_vision", "load_student", "merge_adapter", "prepare_rows", "rows_dataset", "train"]
