"""PARROT: preference I/O and validation, the graph's filters and faults, export format, resume after SIGKILL with an
identical export, the sketch-world audit, and SFT on the export with trl and a tiny VLM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from helpers import PYTHON, free_port
from helpers import run_cli as _cli
from rationalrewards.agents.preferences import load_preferences, normalise_label, parse_label_map
from rationalrewards.graphs.parrot import ParrotConfig
from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
from rationalrewards.rewardmodel.mock_server import Fault, MockServer, parrot_teacher_answer, parrot_teacher_text
from rationalrewards.rewardmodel.schemas import AnchoredRequest, TeacherRequest
from rationalrewards.runtime.jobs import ParrotJob, parrot_job
from rationalrewards.runtime.parrot_runner import ParrotRunner
from rationalrewards.runtime.rundir import read_jsonl
from rationalrewards.sketch.world import SketchWorld


def _images(directory: Path, n: int = 3) -> list[str]:
    names = []
    for k in range(n):
        Image.new("RGB", (32, 32), (40 * k, 90, 200)).save(directory / f"i{k}.png")
        names.append(f"i{k}.png")
    return names


def test_labels_in_common_spellings() -> None:
    for value, expected in [
        ("A", "A"),
        ("right", "B"),
        ("model_2", "B"),
        ("Image A", "A"),
        ("tie", "tie"),
        ("Draw", "tie"),
    ]:
        assert normalise_label(value) == expected
    with pytest.raises(ValueError, match=r"unknown label .*accepted spellings: .*model_1"):
        normalise_label("maybe")


def test_bare_number_labels_need_a_label_map(tmp_path: Path) -> None:
    # 0 and 1 both used to read as A. A number means different images in different datasets: refuse it unless told.
    for value in (0, 1, "1", 2, "0.0", -1):
        with pytest.raises(ValueError, match=r"bare number.*--label-map"):
            normalise_label(value)
    zero_one = parse_label_map("0=A,1=B")
    assert (normalise_label(0, zero_one), normalise_label("1", zero_one)) == ("A", "B")
    one_two = parse_label_map("1=A, 2=B")
    assert (normalise_label(1, one_two), normalise_label(2, one_two)) == ("A", "B")
    with pytest.raises(ValueError, match="--label-map takes items like"):
        parse_label_map("0=left-ish")
    a, b, _ = _images(tmp_path)
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": "a cat", "image_a": a, "image_b": b, "label": n}) + "\n" for n in (0, 1))
    )
    refused = load_preferences(path)
    assert not refused.pairs and all("bare number" in row["reason"] for row in refused.bad_rows)
    assert [row["row"] for row in refused.bad_rows] == [1, 2]  # file line numbers
    assert [p.label for p in load_preferences(path, label_map=zero_one).pairs] == ["A", "B"]


def test_validation_reports_every_bad_row_before_any_call(tmp_path: Path) -> None:
    a, b, c = _images(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    rows = [
        {"pair_id": "ok", "prompt": "two dogs", "image_a": a, "image_b": b, "label": "left"},
        {"pair_id": "missing-file", "prompt": "x", "image_a": "gone.png", "image_b": b, "label": "A"},
        {"pair_id": "not-image", "prompt": "x", "image_a": "notes.txt", "image_b": b, "label": "A"},
        {"pair_id": "bad-label", "prompt": "x", "image_a": a, "image_b": b, "label": "perhaps"},
        {"pair_id": "no-prompt", "prompt": "", "image_a": a, "image_b": b, "label": "A"},
        {"pair_id": "edit", "prompt": "make it red", "image_a": a, "image_b": c, "source_image": b, "label": "model_2"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    report = load_preferences(path, swap_augment=True)
    assert [p.pair_id for p in report.pairs] == ["ok", "ok~swap", "edit", "edit~swap"]
    assert report.pairs[1].label == "B" and report.pairs[1].image_a == report.pairs[0].image_b
    reasons = {b["pair_id"]: b["reason"] for b in report.bad_rows}
    assert "not found" in reasons["missing-file"] and "not a readable image" in reasons["not-image"]
    assert "unknown label" in reasons["bad-label"] and "missing prompt" in reasons["no-prompt"]
    assert any("not JSON" in b["reason"] for b in report.bad_rows)
    assert report.pairs[2].task.value == "edit"


def test_parquet_and_datasets_directories_load(tmp_path: Path) -> None:
    import datasets

    a, b, _ = _images(tmp_path)
    rows = [
        {"pair_id": "p1", "prompt": "a cat", "image_a": str(tmp_path / a), "image_b": str(tmp_path / b), "label": "B"}
    ]
    dataset = datasets.Dataset.from_list(rows)
    dataset.to_parquet(str(tmp_path / "pairs.parquet"))
    dataset.save_to_disk(str(tmp_path / "pairs_ds"))
    assert load_preferences(tmp_path / "pairs.parquet").pairs[0].label == "B"
    assert load_preferences(tmp_path / "pairs_ds").pairs[0].pair_id == "p1"


def _run(out: Path, pairs: Path, teacher: Any, config: ParrotConfig, concurrency: int = 4) -> dict[str, Any]:
    return asyncio.run(
        ParrotRunner(out, teacher=teacher, config=config, concurrency=concurrency, progress=False).run(
            load_preferences(pairs)
        )
    )


def _pairs_file(tmp_path: Path, labels: list[str]) -> Path:
    a, b, _ = _images(tmp_path)
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {"pair_id": f"p{i}", "prompt": "a photo of three clocks", "image_a": a, "image_b": b, "label": label}
            )
            + "\n"
            for i, label in enumerate(labels)
        )
    )
    return path


def test_filters_and_teacher_faults(tmp_path: Path) -> None:
    pairs = _pairs_file(tmp_path, ["A", "B", "A", "B", "A", "A"])

    def teacher(request: TeacherRequest) -> str:
        if isinstance(request, AnchoredRequest) and request.label == "B":
            # This teacher argues for A whatever it is told about B: its rationale contradicts the label.
            return parrot_teacher_answer(request.model_copy(update={"label": "A"}))
        return parrot_teacher_answer(request)

    model = FunctionRewardModel(lambda r: {}, teach=teacher)
    card = _run(tmp_path / "repredict", pairs, model, ParrotConfig(filter="repredict"))
    assert card["kept"] == 4 and card["rejected_by_reason"] == {"repredict_disagrees": 2}
    card = _run(tmp_path / "scores", pairs, model, ParrotConfig(filter="scores"))
    assert card["kept"] == 4 and card["rejected_by_reason"] == {"scores_disagree": 2}
    assert card["teacher_calls"] == 6 + 4 * 2  # no re-prediction call with the scores filter
    rows = [json.loads(line) for line in (tmp_path / "scores" / "pairwise.jsonl").read_text().splitlines()]
    for row in rows:
        assert {"messages", "images", "pair_id", "task", "kind", "label"} <= set(row)
        assert "Human preference" not in row["messages"][0]["content"]  # the student never sees the label
        assert row["messages"][0]["content"].count("<image>") == len(row["images"]) == 2


def test_garbage_truncation_and_timeouts_reject_with_reasons(tmp_path: Path) -> None:
    pairs = _pairs_file(tmp_path, ["A"] * 6)
    with MockServer(free_port()) as server:
        server.state.responder = parrot_teacher_text
        server.state.script.extend(
            [
                Fault(text="I refuse to compare images."),
                Fault(finish_reason="length", text="# User Req"),
                Fault(delay=2.0),
                Fault(delay=2.0),
                Fault(status=400),
            ]
        )
        teacher = OpenAICompatibleRewardModel(
            server.base_url, "mock", timeout=0.5, max_retries=1, retry_max_wait=0.01, concurrency=1
        )
        card = _run(tmp_path / "out", pairs, teacher, ParrotConfig(), concurrency=1)
    reasons = card["rejected_by_reason"]
    assert reasons == {"unparseable": 1, "truncated": 1, "teacher_error": 1, "teacher_request_error": 1}
    assert card["kept"] == 2 and card["finished"] == 6
    rejected = {r["reason"]: r for r in read_jsonl(tmp_path / "out" / "rejected.jsonl")}
    assert (
        "RewardTimeoutError" in rejected["teacher_error"]["detail"]
        and "HTTP 400" in rejected["teacher_request_error"]["detail"]
    )


def test_a_rejected_request_is_not_retried_but_a_server_fault_is(tmp_path: Path) -> None:
    pairs = _pairs_file(tmp_path, ["A"])
    for status, anchored_calls in ((400, 1), (422, 1), (503, 3), ("timeout", 3)):
        with MockServer(free_port()) as server:
            server.state.responder = parrot_teacher_text
            fault = Fault(delay=1.0) if status == "timeout" else Fault(status=status)
            server.state.script.extend([fault] * 20)  # every anchored attempt fails the same way
            teacher = OpenAICompatibleRewardModel(server.base_url, "mock", timeout=0.3, max_retries=0, concurrency=1)
            out = tmp_path / f"out-{status}"
            card = _run(out, pairs, teacher, ParrotConfig(retries=2), concurrency=1)
            calls = len(server.state.requests)
        [record] = read_jsonl(out / "results.jsonl")
        assert record["reason"] == ("teacher_request_error" if status in (400, 422) else "teacher_error"), status
        assert calls == anchored_calls == record["attempts"], status  # 4xx: once; 5xx and timeouts: 1 + 2 retries
        assert card["kept"] == 0


def test_retry_draws_a_new_sample(tmp_path: Path) -> None:
    pairs = _pairs_file(tmp_path, ["A"])
    calls = {"anchored": 0}

    def teacher(request: TeacherRequest) -> str:
        if isinstance(request, AnchoredRequest):
            calls["anchored"] += 1
            if calls["anchored"] == 1:
                return "garbage"
        return parrot_teacher_answer(request)

    card = _run(tmp_path / "out", pairs, FunctionRewardModel(lambda r: {}, teach=teacher), ParrotConfig(retries=2))
    assert card["kept"] == 1 and calls["anchored"] == 2


@pytest.mark.slow
def test_sketch_world_filtering_removes_hallucinations(tmp_path: Path) -> None:
    card = parrot_job(
        ParrotJob(out=tmp_path / "out", world="sketch", pairs_count=120, teacher_noise=0.5, progress=False)
    )
    audit = card["audit"]
    assert 0.2 <= audit["contradict_label_before"] <= 0.45
    assert audit["hallucinated_before"] > 0.05
    assert audit["hallucinated_after"] < audit["hallucinated_before"] / 3  # most hallucinations removed, not just flips
    both = parrot_job(
        ParrotJob(
            out=tmp_path / "both", world="sketch", pairs_count=120, teacher_noise=0.5, filter="both", progress=False
        )
    )
    assert both["audit"]["scores_agree_with_label_after"] == 1.0
    text_only = parrot_job(
        ParrotJob(
            out=tmp_path / "text", world="sketch", pairs_count=120, teacher_noise=0.5, filter="scores", progress=False
        )
    )
    assert text_only["audit"]["hallucinated_after"] > audit["hallucinated_after"]  # scores alone keep invented facts
    assert (tmp_path / "out" / "score_histograms.png").stat().st_size > 1000
    assert "Survival by phase" in (tmp_path / "out" / "card.md").read_text()


@pytest.mark.slow
def test_kill_and_resume_gives_exactly_the_uninterrupted_export(tmp_path: Path) -> None:
    pairs = SketchWorld().pairs(tmp_path / "src", 400, label_noise=0.1, seed=3)
    common = ["parrot", "--pairs", str(pairs), "--teacher", "sketch", "--concurrency", "2", "--json"]
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [PYTHON, "-m", "rationalrewards.cli.main", *common, "--out", str(killed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(read_jsonl(killed / "results.jsonl")) < 60:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = len(read_jsonl(killed / "results.jsonl"))
    assert 0 < finished_before < 400, "the kill must land mid-run"
    resumed = _cli(*common, "--out", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    clean = _cli(*common, "--out", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    for name in ("pairwise.jsonl", "pointwise.jsonl", "rejected.jsonl", "card.json"):
        assert (killed / name).read_text() == (tmp_path / "clean" / name).read_text(), name
    assert json.loads(resumed.stdout)["finished"] == 400


@pytest.mark.slow
def test_export_trains_with_trl_sft_and_a_tiny_vlm(tmp_path: Path, tiny_vlm_dir: Path) -> None:
    import datasets
    from transformers import AutoModelForImageTextToText
    from trl import SFTConfig, SFTTrainer

    from rationalrewards.rewardmodel.tiny import load_processor

    parrot_job(ParrotJob(out=tmp_path / "out", world="sketch", pairs_count=14, progress=False))
    for name in ("pairwise.jsonl", "pointwise.jsonl"):
        dataset = datasets.load_dataset("json", data_files=str(tmp_path / "out" / name), split="train")
        assert set(dataset.column_names) >= {"messages", "images", "pair_id", "task", "kind"}
        dataset = dataset.cast_column("images", datasets.Sequence(datasets.Image()))
        model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_dir)
        processor = load_processor(tiny_vlm_dir)
        args = SFTConfig(
            output_dir=str(tmp_path / f"sft-{name}"),
            max_steps=2,
            per_device_train_batch_size=2,
            logging_steps=1,
            report_to=[],
            save_strategy="no",
            max_length=None,
            use_cpu=True,
            dataloader_num_workers=0,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor)
        result = trainer.train()
        assert result.global_step == 2 and result.training_loss > 0


def test_eval_preference_accuracy(tmp_path: Path) -> None:
    from rationalrewards.runtime.jobs import EvalJob, eval_job

    oracle = eval_job(EvalJob(world="sketch", pairs_count=80, out=tmp_path / "world"))
    assert oracle["n"] == 80 and oracle["abstentions"] == 0 and oracle["accuracy"] >= 0.9
    pairs = Path(oracle["pairs_file"])
    fake = eval_job(EvalJob(pairs=pairs, critic="fake"))
    assert fake["accuracy"] < oracle["accuracy"]  # the metric tells a real critic from a hash
    with MockServer(free_port()) as server:  # answers every comparison with a pointwise critique: unparseable
        http = eval_job(EvalJob(pairs=pairs, critic=server.base_url, model="mock-critic"))
    assert http["abstentions"] == 80 and http["judged"] == 0 and http["accuracy"] is None
    result = subprocess.run(
        [PYTHON, "-m", "rationalrewards.cli.main", "eval", "--pairs", str(pairs), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and json.loads(result.stdout)["accuracy"] == oracle["accuracy"]
