"""Distillation (issue 12): SFT of a tiny Qwen-VL student on a PARROT export made here, the label mask, the template
round trip (train -> serve -> the same scores), LoRA and merge, kill and resume, gloo DDP, and the data layer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import PYTHON, run_cli

torch = pytest.importorskip("torch")

FAST = [
    "--per-device-train-batch-size",
    "2",
    "--gradient-accumulation-steps",
    "1",
    "--logging-steps",
    "1",
    "--report-to",
    "none",
    "--eval-share",
    "0.3",
    "--eval-pairs",
    "2",
    "--eval-max-new-tokens",
    "8",
]


@pytest.fixture(scope="module")
def parrot_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rationalrewards.runtime.job_configs import ParrotJob
    from rationalrewards.runtime.jobs import parrot_job

    out = tmp_path_factory.mktemp("parrot")
    parrot_job(ParrotJob(out=out, world="sketch", pairs_count=12, progress=False))
    return out


def _config(data: list[str], **overrides: Any) -> Any:
    from rationalrewards.training.distill_config import DistillConfig

    settings: dict[str, Any] = dict(
        output_dir="unused",
        tiny=True,
        data=data,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        logging_steps=1,
        report_to=["none"],
        eval_share=0.3,
        eval_pairs=2,
        eval_max_new_tokens=8,
        save_steps=1000,
    )
    return DistillConfig(**(settings | overrides))


def _state(directory: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def test_sft_steps_learn_the_answers_only_and_keep_the_vision_tower(parrot_export: Path, tmp_path: Path) -> None:
    from rationalrewards.training.distill_trainer import train

    figures = train(
        _config([str(parrot_export)], max_steps=6, learning_rate=2e-3, eval_every=3, report_to=["tensorboard"]),
        tmp_path / "run",
    )
    assert figures["steps"] == 6 and figures["train_loss_last"] < figures["train_loss_first"]
    assert figures["rows_used"] + figures["rows_held_out"] == figures["rows_read"] and figures["rows_dropped"] == 0
    assert figures["prompt_profile"] == "release"  # the export's card says so
    assert [e["step"] for e in figures["evaluations"]] == [3, 6] and figures["evaluations"][0]["eval_pairs"] == 2
    from rationalrewards.rewardmodel.backends.local import TransformersRewardModel

    assert TransformersRewardModel(tmp_path / "run" / "model").temperature == 0.0  # a trained student is read greedily
    first = figures["evaluations"][0]
    assert {"eval_decisive_accuracy", "eval_tie_rate", "eval_label_tie_rate"} <= set(first)
    assert first["eval_label_tie_rate"] is not None and 0.0 <= first["eval_label_tie_rate"] <= 1.0
    before, after = _state(tmp_path / "run" / "student-init"), _state(tmp_path / "run" / "model")
    vision = [k for k in before if ".visual." in f".{k}"]
    language = [k for k in before if k not in vision and k.endswith("q_proj.weight")]
    assert vision and language
    assert all(torch.equal(before[k], after[k]) for k in vision), "a frozen vision parameter changed"
    assert all(not torch.equal(before[k], after[k]) for k in language), "a trainable parameter did not change"
    assert figures["frozen_params"] == sum(before[k].numel() for k in vision)
    model = tmp_path / "run" / "model"
    for name in (
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "preprocessor_config.json",
        "README.md",
        "rationalrewards.json",
    ):
        assert (model / name).is_file(), name
    assert "chat_template" in (model / "tokenizer_config.json").read_text() or (model / "chat_template.jinja").is_file()
    assert json.loads((model / "rationalrewards.json").read_text())["prompt_profile"] == "release"
    card = (model / "README.md").read_text()
    assert "Evaluation on held-out pairs" in card and "PARROT data card" in card
    events = list((tmp_path / "run" / "checkpoints").rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard log"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for event in events:
        accumulator = EventAccumulator(str(event))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    assert {"train/loss", "eval/abstention_rate", "eval/pairs"} <= tags


def test_the_label_mask_covers_exactly_the_answer_tokens(parrot_export: Path) -> None:
    from rationalrewards.rewardmodel.tiny import build_tiny_vlm
    from rationalrewards.training._distill_collator import IGNORE, CritiqueCollator
    from rationalrewards.training.distill_data import DataReport, load_rows

    _, processor = build_tiny_vlm("qwen2_vl")
    rows = load_rows([str(parrot_export)], DataReport())[:3]
    collator = CritiqueCollator(processor)
    batch = collator([{"row": row} for row in rows])
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for index, row in enumerate(rows):
        ids, labels, mask = batch["input_ids"][index], batch["labels"][index], batch["attention_mask"][index]
        answer = collator.answer_ids(row)
        learned = labels != IGNORE
        assert int(learned.sum()) == len(answer)
        assert ids[learned].tolist() == answer == labels[learned].tolist()
        # The learned tokens are the last real tokens: the answer and its end-of-turn token, after the whole prompt.
        real = int(mask.sum())
        assert learned[:real].tolist() == [False] * (real - len(answer)) + [True] * len(answer)
        assert not learned[real:].any() and not learned[ids == image_token].any()
        assert processor.tokenizer.decode(answer) == row.answer + processor.tokenizer.eos_token
        prompt = processor.tokenizer.decode(ids[: real - len(answer)])
        assert prompt.endswith("<|im_start|>assistant\n") and prompt.count("<|vision_start|>") == len(row.images)
    assert batch["pixel_values"].shape[0] == int(batch["image_grid_thw"].prod(dim=1).sum())


@pytest.mark.slow
def test_template_round_trip_a_memorised_row_is_served_back_with_its_scores(tmp_path: Path) -> None:
    """Overfit 4 rows written by the PARROT export's `sft_row`, then serve the student through `TransformersRewardModel`
    (its own chat template, `build_messages` in the profile the checkpoint declares): every row's scores come back."""
    import asyncio

    from rationalrewards.rewardmodel.backends.local import TransformersRewardModel
    from rationalrewards.rewardmodel.format import render_critique
    from rationalrewards.rewardmodel.schemas import Aspect, AspectAssessment, Critique, CritiqueRequest, Task
    from rationalrewards.runtime.parrot_runner import sft_row
    from rationalrewards.sketch.generator import SketchGenerator

    generator = SketchGenerator(tmp_path / "images", size=96)
    cases = {
        "a photo of a cat": (4.0, 3.5),
        "a photo of two dogs": (2.0, 3.0),
        "a red car": (3.5, 1.5),
        "a blue clock": (1.0, 2.5),
    }
    requests, rows = [], []
    for prompt, (faithfulness, quality) in cases.items():
        request = CritiqueRequest(prompt=prompt, image=generator.generate_one(prompt, 0).image)
        assessments = {
            Aspect.text_faithfulness: AspectAssessment(score=faithfulness, justification="Seen."),
            Aspect.physical_quality: AspectAssessment(score=quality, justification="Clean."),
            Aspect.text_rendering: AspectAssessment(score=None, justification="No text."),
        }
        answer = render_critique(Critique(task=Task.t2i, assessments=assessments, analysis=prompt, summary="Done."))
        requests.append(request)
        rows.append(sft_row(request, answer, profile="release", prompt=prompt, task="t2i", kind="pointwise"))
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = run_cli(
        "distill",
        "--data",
        str(data),
        "--tiny",
        "--out",
        str(tmp_path / "run"),
        "--max-steps",
        "150",
        "--per-device-train-batch-size",
        "4",
        "--gradient-accumulation-steps",
        "1",
        "--learning-rate",
        "3e-3",
        "--warmup-steps",
        "0",
        "--lr-scheduler-type",
        "constant",
        "--eval-share",
        "0",
        "--report-to",
        "none",
        "--logging-steps",
        "10",
        "--json",
        env={"OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    assert figures["train_loss_last"] < 0.1, figures["losses"]
    critic = TransformersRewardModel(figures["checkpoint"], max_new_tokens=120, temperature=0.0)
    assert critic.prompt_profile() == "release"  # declared by the checkpoint, not guessed
    served = asyncio.run(critic.critique(requests))
    for (faithfulness, quality), critique in zip(cases.values(), served, strict=True):
        assert isinstance(critique, Critique), critique
        assert critique.scores == {
            "text_faithfulness": faithfulness,
            "physical_quality": quality,
            "text_rendering": None,
        }
    # The same checkpoint as the CLI's critic (`--critic DIR`, profile auto): the first row's scores again.
    image_path = requests[0].image.uri.removeprefix("file://")
    cli = run_cli(
        "critique",
        image_path,
        "--prompt",
        "a photo of a cat",
        "--critic",
        figures["checkpoint"],
        "--json",
        "--max-tokens",
        "200",
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert json.loads(cli.stdout)["scores"]["text_faithfulness"] == 4.0


@pytest.mark.slow
def test_lora_trains_an_adapter_and_merge_equals_base_plus_adapter(parrot_export: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from rationalrewards.rewardmodel.tiny import build_tiny_vlm
    from rationalrewards.training._distill_collator import CritiqueCollator
    from rationalrewards.training.distill_data import DataReport, load_rows
    from rationalrewards.training.distill_trainer import train

    figures = train(
        _config([str(parrot_export)], max_steps=3, learning_rate=1e-2, lora=True, lora_r=4, lora_alpha=8, eval_every=0),
        tmp_path / "run",
    )
    adapter = tmp_path / "run" / "adapter"
    assert figures["checkpoint"] == str(adapter) and (adapter / "adapter_config.json").is_file()
    assert figures["trainable_params"] < figures["frozen_params"] / 5
    merged = tmp_path / "merged"
    result = run_cli("distill", "merge", str(adapter), "--out", str(merged), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["checkpoint"] == str(merged)
    assert not json.loads((merged / "rationalrewards.json").read_text())["lora"]

    base = AutoModelForImageTextToText.from_pretrained(tmp_path / "run" / "student-init")
    with_adapter = PeftModel.from_pretrained(base, adapter).eval()
    full = AutoModelForImageTextToText.from_pretrained(merged).eval()
    _, processor = build_tiny_vlm("qwen2_vl")
    batch = CritiqueCollator(processor)([{"row": row} for row in load_rows([str(parrot_export)], DataReport())[:2]])
    batch.pop("labels")
    with torch.no_grad():
        expected, got = with_adapter(**batch).logits, full(**batch).logits
    assert torch.allclose(expected, got, atol=1e-4)
    untouched = AutoModelForImageTextToText.from_pretrained(tmp_path / "run" / "student-init").eval()
    with torch.no_grad():
        assert not torch.allclose(untouched(**batch).logits, got, atol=1e-4), "the adapter changed nothing"
    # The merged checkpoint is a critic `eval` accepts (a 3-step student abstains; the run and its accounting stand).
    evaluated = run_cli(
        "eval",
        "--world",
        "sketch",
        "--pairs-count",
        "2",
        "--out",
        str(tmp_path / "eval"),
        "--critic",
        str(merged),
        "--max-tokens",
        "16",
        "--json",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    figures = json.loads(evaluated.stdout)
    assert figures["n"] == 2 and figures["judged"] + figures["abstentions"] + figures["label_ties"] >= 2
    assert figures["prompts"] == "release"  # the marker the trainer wrote, read by --prompts auto


def _distill_command(data: Path, out: Path, steps: int) -> list[str]:
    return [
        PYTHON,
        "-m",
        "rationalrewards.cli.main",
        "distill",
        "--data",
        str(data),
        "--tiny",
        "--out",
        str(out),
        "--max-steps",
        str(steps),
        "--save-steps",
        "2",
        "--learning-rate",
        "1e-3",
        "--eval-every",
        "0",
        *FAST,
        "--json",
    ]


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_checkpoint_and_continues_the_curve(parrot_export: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = subprocess.run(
        _distill_command(parrot_export, tmp_path / "whole", 8), capture_output=True, text=True, env=env, timeout=600
    )
    assert whole.returncode == 0, whole.stderr[-2000:]
    uninterrupted = json.loads(whole.stdout)["losses"]

    out = tmp_path / "killed"
    process = subprocess.Popen(
        _distill_command(parrot_export, out, 8), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    # Kill the moment checkpoint 4 is whole: the trainer writes trainer_state.json last, so once it parses the
    # checkpoint is complete. A fixed half-second sleep after it appeared gave the tiny run time to finish more
    # steps first (this test failed once under load that way, as far as its timing shows).
    deadline, state = time.monotonic() + 300, out / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    while not _parses(state):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its checkpoint"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert not (out / "model").exists()
    resumed = subprocess.run(
        _distill_command(parrot_export, out, 8), capture_output=True, text=True, env=env, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    figures = json.loads(resumed.stdout)
    assert figures["resumed_from"] and int(figures["resumed_from"].rsplit("-", 1)[1]) >= 4
    assert figures["steps"] == 8 and len(figures["losses"]) == 8  # the curve continues: steps 1-8, once each
    assert figures["losses"] == pytest.approx(uninterrupted, abs=1e-4)


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return True


@pytest.mark.slow
def test_gloo_ddp_over_two_processes(parrot_export: Path, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "rationalrewards.cli.main",
        "distill",
        "--data",
        str(parrot_export),
        "--tiny",
        "--out",
        str(tmp_path / "ddp"),
        "--max-steps",
        "2",
        "--eval-every",
        "0",
        *FAST,
        "--json",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("{")]  # rank 0 prints, alone
    figures = json.loads(line)
    assert figures["world_size"] == 2 and figures["steps"] == 2
    assert (tmp_path / "ddp" / "model" / "model.safetensors").is_file()


def _free_port() -> int:
    from helpers import free_port

    return free_port()


# ------------------------------------------------------------------ the data layer ---------------------------------


def test_rows_from_parquet_and_datasets_with_image_bytes_and_bad_rows_counted(tmp_path: Path, png_file: Path) -> None:
    import datasets

    from rationalrewards.rewardmodel.tiny import build_tiny_vlm
    from rationalrewards.training._distill_collator import CritiqueCollator, fit_to_length
    from rationalrewards.training.distill_data import DataReport, load_rows, split_by_prompt

    image = png_file.read_bytes()

    def row(prompt: str, answer: str, images: int = 1) -> dict[str, Any]:
        user = "Judge <image> for: " + prompt
        return {
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
            "images": [{"bytes": image, "path": None}] * images,
            "prompt": prompt,
        }

    good = [row(f"prompt {i}", "# Summary: fine. " * (1 + 40 * (i == 0))) for i in range(6)]
    bad = [row("p", "x", images=2), {"messages": [{"role": "user", "content": "hi"}]}, row("q", "")]
    datasets.Dataset.from_list(good + bad).save_to_disk(str(tmp_path / "saved"))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(good[:2]), tmp_path / "rows.parquet")
    report = DataReport()
    rows = load_rows([str(tmp_path / "saved"), str(tmp_path / "rows.parquet")], report)
    assert len(rows) == 8 and report.dropped == {"bad_row": 3} and report.read == 11
    assert any("2 images" in e or "image places" in e for e in report.examples)
    assert all(isinstance(r.images[0], bytes) for r in rows)
    # The image sits where its marker was, between the two texts.
    assert [p["type"] for p in rows[0].turns[0]["content"]] == ["text", "image", "text"]
    train, held = split_by_prompt(rows, 0.5, seed=0)
    assert not {r.key for r in train} & {r.key for r in held}
    _, processor = build_tiny_vlm("qwen2_vl")
    collator = CritiqueCollator(processor, max_length=120)
    sizes = [collator.lengths(r) for r in rows]
    long_rows = sum(s.prompt + s.answer > 120 for s in sizes)
    assert long_rows >= 1
    dropped = DataReport()
    assert len(fit_to_length(rows, collator, 120, "drop", dropped)) == len(rows) - long_rows
    assert dropped.dropped == {"too_long": long_rows}
    truncated = DataReport()
    kept = fit_to_length(rows, collator, 120, "truncate", truncated)
    assert len(kept) == len(rows) and truncated.truncated == long_rows
    batch = collator([{"row": r} for r in kept])
    assert batch["input_ids"].shape[1] <= 120


def test_cli_help_and_bad_input(tmp_path: Path) -> None:
    help_text = run_cli("distill", "--help", check=True).stdout
    for flag in (
        "--data",
        "--tiny",
        "--lora",
        "--time-budget",
        "--overlong",
        "--learning-rate",
        "--trl",
        "drop|truncate",
    ):
        assert flag in help_text
    bad_trl = run_cli("distill", "--tiny", "--out", str(tmp_path / "t"), "--trl", "no_such_knob=1")
    assert bad_trl.returncode == 2 and "SFTConfig has no field 'no_such_knob'" in bad_trl.stderr
    ours = run_cli("distill", "--tiny", "--out", str(tmp_path / "t"), "--trl", "learning_rate=1")
    assert ours.returncode == 2 and "use --learning-rate" in ours.stderr
    no_student = run_cli("distill", "--data", str(tmp_path), "--out", str(tmp_path / "o"))
    assert no_student.returncode == 2 and "--model DIR" in no_student.stderr
    not_adapter = run_cli("distill", "merge", str(tmp_path), "--out", str(tmp_path / "m"))
    assert not_adapter.returncode == 2 and "adapter_config.json" in not_adapter.stderr
    from rationalrewards.training.distill_data import DataReport, load_rows

    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_rows([str(tmp_path / "nope")], DataReport())
    with pytest.raises(ValueError, match="no usable rows"):
        (tmp_path / "empty.jsonl").write_text('{"messages": []}\n')
        load_rows([str(tmp_path / "empty.jsonl")], DataReport())


def test_accelerate_configs_load() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    folder = Path(__file__).resolve().parents[1] / "training" / "accelerate"
    kinds = {}
    for name in ("ddp.yaml", "zero3.yaml", "fsdp.yaml"):
        config = load_config_from_file(str(folder / name))
        kinds[name] = config.distributed_type.value
    assert kinds == {"ddp.yaml": "MULTI_GPU", "zero3.yaml": "DEEPSPEED", "fsdp.yaml": "FSDP"}


def test_time_budget_counts_training_not_held_out_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A curve point of unparseable answers once took a quarter of a 10-minute budget; evaluation time is excluded."""
    from types import SimpleNamespace

    from rationalrewards.training import _distill_eval as distill_eval

    clock = [100.0]
    monkeypatch.setattr(distill_eval.time, "monotonic", lambda: clock[0])
    evaluation = distill_eval.HeldOutEvaluation([], None, every=0, pairs=0, max_new_tokens=1)
    budget = distill_eval.TimeBudget(1.0, excluded=evaluation)
    budget.on_train_begin(None, None, None)
    control = SimpleNamespace(should_training_stop=False, should_save=False)
    clock[0], evaluation.seconds = 150.0, 30.0  # 50 s passed, 30 of them evaluating: 20 s of training
    budget.on_step_end(None, None, control)
    assert not control.should_training_stop
    clock[0] = 191.0  # 61 s of training
    budget.on_step_end(None, None, control)
    assert control.should_training_stop and control.should_save and budget.hit


@pytest.mark.parametrize(
    ("kind", "images", "task"),
    [("pairwise", 2, "t2i"), ("pairwise", 3, "edit"), ("pointwise", 1, "t2i"), ("pointwise", 2, "edit")],
)
def test_a_row_without_a_task_takes_it_from_its_kind_and_image_count(
    tmp_path: Path, kind: str, images: int, task: str
) -> None:
    """Two images are a text-to-image pair or a pointwise edit; once every two-image row was read as an edit, and the
    held-out curve of a text-to-image ablation parsed nothing."""
    from PIL import Image

    from rationalrewards.training.distill_data import parse_row

    for k in range(images):
        Image.new("RGB", (8, 8)).save(tmp_path / f"img{k}.png")
    row = {
        "messages": [
            {"role": "user", "content": "judge " + "<image>" * images},
            {"role": "assistant", "content": "an answer"},
        ],
        "images": [f"img{k}.png" for k in range(images)],
        "kind": kind,
    } | ({"label": "A"} if kind == "pairwise" else {})
    assert parse_row(row, tmp_path, "test").task.value == task


def test_decision_tokens_can_weigh_more_in_the_loss(parrot_export: Path, tmp_path: Path) -> None:
    """`--decision-loss-weight`: the collator marks exactly the values after Score/Answer/Winner markers, and a run with
    a weight logs the plain loss beside the weighted one."""
    from rationalrewards.rewardmodel.schemas import Task
    from rationalrewards.rewardmodel.tiny import build_tokenizer
    from rationalrewards.training._distill_collator import CritiqueCollator
    from rationalrewards.training.distill_data import CritiqueRow
    from rationalrewards.training.distill_trainer import train

    tokenizer = build_tokenizer()
    collator = CritiqueCollator(type("P", (), {"tokenizer": tokenizer})(), decision_weight=4.0)
    answer = "1. Text Faithfulness:\n## Justification: three clocks.\n## Score: 3.5\nAnswer: B"
    row = CritiqueRow(
        turns=[], answer=answer, images=[], kind="pairwise", key="k", task=Task.t2i, label=None, origin="test"
    )
    marks = collator.decision_tokens(row)
    ids = tokenizer(answer + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
    marked = tokenizer.decode([i for i, m in zip(ids, marks, strict=True) if m]).replace(" ", "")
    assert len(marks) == len(ids) and marked == "3.5B"
    figures = train(
        _config([str(parrot_export)], max_steps=3, decision_loss_weight=5.0, eval_every=0), tmp_path / "run"
    )
    assert figures["steps"] == 3 and len(figures["plain_losses"]) == len(figures["losses"]) == 3
    assert figures["plain_losses"] != figures["losses"]  # the weighted loss is what trains; the plain one is reported
