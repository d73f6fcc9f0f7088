"""Issue 16: perception transcripts, text students (trained on exactly what they are served), and the PARROT ablation
experiment end to end in its smoke mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.scene import load_scene
from rationalrewards.sketch.transcript import PerceptionNoise, transcribe, transcribe_image


@pytest.fixture(scope="module")
def sketch_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    generator = SketchGenerator(tmp_path_factory.mktemp("images"))
    prompts = ["a photo of two red cats", "a photo of a blue dog left of a green car", 'a sign that says "OPEN"']
    return [Path(generator.generate_one(p, seed).image.uri) for p in prompts for seed in range(6)]


def test_an_exact_transcript_reports_what_the_scene_graph_holds(sketch_images: list[Path]) -> None:
    for path in sketch_images:
        scene = load_scene(path)
        text = transcribe(scene)
        for obj in scene.objects:
            assert f"{obj.color} " in text and obj.cls.split()[0] in text
        for rendered in scene.texts:
            if rendered.rendered:
                assert f'"{rendered.rendered}"' in text
        if not scene.objects:
            assert "objects: none" in text
        assert transcribe_image(path) == text  # read from the sidecar, checked against the image


def test_noisy_perception_errs_at_its_rates_and_reads_one_image_one_way(sketch_images: list[Path]) -> None:
    noise = PerceptionNoise.at(0.6)
    scenes = [load_scene(p) for p in sketch_images]
    noisy = [transcribe(s, noise) for s in scenes]
    assert noisy == [transcribe(s, noise) for s in scenes]  # seeded by the image
    assert sum(a != transcribe(s) for a, s in zip(noisy, scenes, strict=True)) >= len(scenes) // 2
    assert [transcribe(s, noise, seed=1) for s in scenes] != noisy
    assert PerceptionNoise.at(0.0).level == 0 and PerceptionNoise.at(0.4).miss == 0.4
    with pytest.raises(ValueError, match="must be in"):
        PerceptionNoise.at(1.5)
    with pytest.raises(ValueError, match="color"):
        PerceptionNoise(color=-0.1)


def test_a_text_student_is_trained_on_exactly_the_text_it_is_served(
    sketch_images: list[Path], smollm2_dir: Path, tmp_path: Path
) -> None:
    from rationalrewards.agents.preferences import load_preferences
    from rationalrewards.plumbing.files import atomic_write_jsonl
    from rationalrewards.rewardmodel.backends.local import TextProcessor, TransformersRewardModel, text_only
    from rationalrewards.rewardmodel.schemas import CompareRequest, CritiqueRequest
    from rationalrewards.runtime.parrot_runner import sft_row
    from rationalrewards.sketch.transcript import sketch_perception
    from rationalrewards.training._distill_collator import CritiqueCollator
    from rationalrewards.training.distill_data import DataReport, describe_row, load_rows

    pairs_file = tmp_path / "pairs.jsonl"
    a, b = sketch_images[0], sketch_images[1]
    atomic_write_jsonl(
        pairs_file,
        [{"pair_id": "p0", "prompt": "a photo of two red cats", "image_a": str(a), "image_b": str(b), "label": "A"}],
    )
    [pair] = load_preferences(pairs_file).pairs
    requests = [CompareRequest.like(pair), CritiqueRequest.like(pair, image=pair.image_b, with_refinement=True)]
    rows = [sft_row(r, "an answer", profile="house", prompt=pair.prompt) for r in requests]
    atomic_write_jsonl(tmp_path / "rows.jsonl", rows)
    describe = sketch_perception(0.2)
    loaded = [describe_row(row, describe) for row in load_rows([tmp_path / "rows.jsonl"], DataReport())]
    critic = TransformersRewardModel(smollm2_dir, prompts="house", describe_image=describe, max_new_tokens=8)
    collator = CritiqueCollator(critic.processor)
    for row, request in zip(loaded, requests, strict=True):
        assert not row.images
        served = critic.processor.apply_chat_template(
            text_only(critic.messages(request), describe), add_generation_prompt=True, tokenize=False
        )
        assert collator.prompt_text(row) == served
        assert transcribe_image(a, PerceptionNoise.at(0.2)) in served or isinstance(request, CritiqueRequest)
    assert isinstance(critic.processor, TextProcessor)
    with pytest.raises(Exception, match="text model"):
        TransformersRewardModel(smollm2_dir)  # a text model without a way to read images is refused by name


def test_compact_prompts_are_short_and_short_targets_still_parse(sketch_images: list[Path], smollm2_dir: Path) -> None:
    from transformers import AutoTokenizer

    from rationalrewards.experiments.parrot_ablation import short_answer
    from rationalrewards.rewardmodel.backends.base import (
        Completion,
        critique_from_completion,
        judgement_from_completion,
    )
    from rationalrewards.rewardmodel.images import image_ref_from_path
    from rationalrewards.rewardmodel.prompts import build_messages
    from rationalrewards.rewardmodel.schemas import CompareRequest, Critique, CritiqueRequest, PairwiseJudgement
    from rationalrewards.sketch.oracle import SketchOracle

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    a, b = (image_ref_from_path(p) for p in sketch_images[:2])
    pair = CompareRequest(prompt="a photo of two red cats", image_a=a, image_b=b)
    critique = CritiqueRequest(prompt="a photo of two red cats", image=a, with_refinement=True)

    def tokens(request: CritiqueRequest | CompareRequest, profile: str) -> int:
        parts = build_messages(request, profile=profile, image_url=lambda ref: ref.uri)[0]["content"]
        return len(tokenizer("".join(p.get("text", "") for p in parts))["input_ids"])

    for request in (pair, critique):
        assert tokens(request, "compact") * 3 < tokens(request, "house")
    oracle = SketchOracle(image_dirs=[])
    full_pair = oracle.pairwise_text(pair)
    full_critique = oracle.critique_one(critique)
    assert isinstance(full_critique, Critique)
    short_pair = short_answer(full_pair, "pairwise", "t2i")
    short_critique = short_answer(full_critique.raw_text, "pointwise", "t2i")
    assert len(short_pair) < len(full_pair) and len(short_critique) <= len(full_critique.raw_text)
    judged = judgement_from_completion(Completion(text=short_pair), pair)
    assert isinstance(judged, PairwiseJudgement)
    assert judged.scores_a == judgement_from_completion(Completion(text=full_pair), pair).scores_a
    again = critique_from_completion(Completion(text=short_critique), critique)
    assert isinstance(again, Critique) and again.scores == full_critique.scores
    assert again.refined_request == full_critique.refined_request


def test_train_layers_leaves_only_the_top_layers_trainable(smollm2_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    from rationalrewards.training.distill_trainer import decoder_layers, train_top_layers

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    train_top_layers(model, 3)
    layers = decoder_layers(model)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(
        name.startswith(("model.layers.27.", "model.layers.28.", "model.layers.29.", "model.norm"))
        for name in trainable
    )
    assert all(p.requires_grad for p in layers[-1].parameters()) and not any(
        p.requires_grad for p in layers[0].parameters()
    )
    with pytest.raises(ValueError, match="decoder layers"):
        train_top_layers(model, 31)


def test_the_answer_only_loss_equals_the_full_cross_entropy(smollm2_dir: Path) -> None:
    # The trainer computes logits from the first answer position on only (half a CPU step was trl's LM head over every
    # position); the loss must be the model's own cross-entropy over the answer tokens, padding and prompt ignored.
    from types import SimpleNamespace

    import torch
    from transformers import AutoModelForCausalLM

    from rationalrewards.training.distill_trainer import CriticSFTTrainer

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir).eval()
    torch.manual_seed(0)
    ids = torch.randint(0, 1000, (3, 24))
    labels = ids.clone()
    labels[0, :10], labels[1, :15], labels[2, :7] = -100, -100, -100
    labels[2, 20:] = -100  # padding at the end
    args = SimpleNamespace(loss_type="nll", average_tokens_across_devices=False)
    trainer = SimpleNamespace(label_smoother=None, compute_loss_func=None, aux_loss_enabled=False, args=args)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    with torch.no_grad():
        ours = CriticSFTTrainer.compute_loss(trainer, model, dict(inputs))  # type: ignore[arg-type]
        reference = model(**inputs).loss
        halved = CriticSFTTrainer.compute_loss(
            trainer, model, dict(inputs), num_items_in_batch=2 * int((labels[:, 1:] != -100).sum())
        )  # type: ignore[arg-type]
    assert torch.allclose(ours, reference, atol=1e-5)
    assert torch.allclose(halved, reference / 2, atol=1e-5)


@pytest.mark.slow
def test_the_parrot_ablation_runs_end_to_end_in_smoke_mode(tiny_text_student_dir: Path, tmp_path: Path) -> None:
    smollm2_dir = tiny_text_student_dir  # every stage runs; with a 4-layer student, in seconds rather than minutes
    out = tmp_path / "ablation"
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable, "-m", "rationalrewards", "experiment", "parrot-ablation",
        "--out", str(out), "--smoke", "--student", str(smollm2_dir), "--docs", str(tmp_path / "docs"), "--json",
        "--seed", "0", "--jobs", "2",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    data = results["data"]
    assert data["held_out_pairs"] >= 4 and data["train_pairs"] >= 20
    # The arms train on the same number of rows of each kind, and the filter had work to do at this noise.
    assert data["rows_per_arm"]["pairwise"] == data["parrot_kept"] > 0
    assert data["parrot_rejected"] > 0
    # The first student's budget set every student's steps; the other one trained in a worker process.
    assert set(results["students"]) == {"parrot-seed0", "direct-seed0"}
    assert {s["steps"] for s in results["students"].values()} == {results["steps_per_student"]}
    for name, student in results["students"].items():
        assert student["steps"] >= 1 and student["curve"], student
        assert Path(student["checkpoint"], "model.safetensors").is_file()
        assert results["evaluation"][name]["pairs"] == data["held_out_pairs"]
        # Every held-out judgement is kept beside the student, to read why it judged as it did.
        kept = [json.loads(line) for line in Path(student["checkpoint"]).with_name("judgements.jsonl").open()]
        assert len(kept) == data["held_out_pairs"]
        assert all(
            k["label"] in ("A", "B", "tie") and k["judgement"]["kind"] in ("pairwise", "abstention") for k in kept
        )
    for arm in ("parrot", "direct"):
        student = results["students"][f"{arm}-seed0"]
        assert Path(student["checkpoint"], "model.safetensors").is_file()
        marker = json.loads(Path(student["checkpoint"], "rationalrewards.json").read_text())
        assert marker["perception"] == {"kind": "sketch-transcript", "noise": 0.1}
        evaluation = results["evaluation"][f"{arm}-seed0"]
        assert evaluation["pairs"] == data["held_out_pairs"] and evaluation["parse_rate"] is not None
    for judge in ("exact_oracle", "teacher_without_label"):
        assert 0.0 <= results["evaluation"][judge]["accuracy"] <= 1.0
        assert results["evaluation"][judge]["parse_rate"] == 1.0
    loop = results["loop"]
    assert loop["paper / sketch oracle (privileged)"]["finished"] == loop["prompts"]
    assert loop["paper / parrot student (seed 0)"]["n"] == loop["prompts"]
    report = (out / "report.md").read_text()
    assert "parrot-seed0" in report and "Closing the loop" in report
    assert (out / "curves.png").stat().st_size > 10_000 and (tmp_path / "docs" / "parrot_ablation.md").is_file()
    # A rerun into the same folder continues it: students and their evaluations are reused, not trained again.
    from rationalrewards.experiments.parrot_ablation import AblationSettings, run_ablation

    model = Path(results["students"]["parrot-seed0"]["checkpoint"], "model.safetensors")
    written = model.stat().st_mtime_ns
    settings = AblationSettings.smoke(teacher_noise=0.35, student=str(smollm2_dir), seeds=(0,))
    again = run_ablation(out, settings)
    assert model.stat().st_mtime_ns == written
    assert again["evaluation"]["parrot-seed0"] == results["evaluation"]["parrot-seed0"]
    with pytest.raises(ValueError, match="other settings \\(budget_minutes\\)"):
        run_ablation(
            out, AblationSettings.smoke(teacher_noise=0.35, student=str(smollm2_dir), seeds=(0,), budget_minutes=0.3)
        )


def test_copying_the_report_to_docs_keeps_the_page_of_earlier_runs(tmp_path: Path) -> None:
    from rationalrewards.experiments.parrot_ablation import RUNS_PAGE, copy_to_docs

    out, docs = tmp_path / "out", tmp_path / "docs"
    out.mkdir()
    (out / "report.md").write_text("# report\n\n![curve](curves.png)\n")
    (out / "curves.png").write_bytes(b"png")
    copy_to_docs(out, docs)  # no history page: the report as it is, its figure renamed
    assert (docs / "parrot_ablation.md").read_text() == "# report\n\n![curve](parrot_ablation_curves.png)\n"
    (docs / RUNS_PAGE).write_text("# runs 1-4\n")
    copy_to_docs(out, docs)
    page = (docs / "parrot_ablation.md").read_text()
    assert page.startswith("# report") and f"]({RUNS_PAGE})" in page
    assert (docs / RUNS_PAGE).read_text() == "# runs 1-4\n" and (
        docs / "parrot_ablation_curves.png"
    ).read_bytes() == b"png"


def test_ablation_settings_refuse_counts_that_cannot_run() -> None:
    from rationalrewards.experiments.parrot_ablation import AblationSettings, run_ablation

    for bad in ({"pointwise_images": -1}, {"curve_pairs": 0}, {"evaluations": -2}, {"budget_minutes": 0}):
        with pytest.raises(ValueError):
            AblationSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="jobs"):
        run_ablation(Path("unused"), AblationSettings.smoke(), jobs=0)
