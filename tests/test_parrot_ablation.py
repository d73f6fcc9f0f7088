"""Issue 16: perception transcripts, text students (trained on exactly what they are served), and the PARROT ablation
experiment end to end in its smoke mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rationalrewards.agents.sketch.generator import SketchGenerator
from rationalrewards.agents.sketch.scene import load_scene
from rationalrewards.agents.sketch.transcript import PerceptionNoise, transcribe, transcribe_image


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
    from rationalrewards.agents.sketch.transcript import sketch_perception
    from rationalrewards.graphs.parrot_runner import sft_row
    from rationalrewards.rewardmodel.backends.local import TextProcessor, TransformersRewardModel, text_only
    from rationalrewards.rewardmodel.files import atomic_write_jsonl
    from rationalrewards.rewardmodel.schemas import CompareRequest, CritiqueRequest
    from rationalrewards.training.distill_collator import CritiqueCollator
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


@pytest.mark.slow
def test_the_parrot_ablation_runs_end_to_end_in_smoke_mode(smollm2_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ablation"
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable, "-m", "rationalrewards.cli.main", "experiment", "parrot-ablation",
        "--out", str(out), "--smoke", "--student", str(smollm2_dir), "--docs", str(tmp_path / "docs"), "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    data = results["data"]
    assert data["held_out_pairs"] >= 4 and data["train_pairs"] >= 20
    # The arms train on the same number of rows of each kind, and the filter had work to do at this noise.
    assert data["rows_per_arm"]["pairwise"] == data["parrot_kept"] > 0
    assert data["parrot_rejected"] > 0
    for arm in ("parrot", "direct"):
        student = results["students"][f"{arm}-seed0"]
        assert student["steps"] >= 1 and student["curve"], student
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
