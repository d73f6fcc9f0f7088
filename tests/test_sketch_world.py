"""The sketch world end to end: generator, sidecars, failure model, ground truth, oracle critic and teacher, edits,
preference pairs, and the CLI."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import run_cli
from rationalrewards.agents.grading import accuracy_by_tag
from rationalrewards.rewardmodel import (
    Abstention,
    CompareRequest,
    Critique,
    CritiqueRequest,
    InvalidImageError,
    PairwiseJudgement,
    parse_critique,
)
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.prompts import build_messages
from rationalrewards.rewardmodel.schemas import AnchoredRequest, ProjectRequest, RepredictRequest
from rationalrewards.sketch.edits import parse_edit, score_edit
from rationalrewards.sketch.failures import FailureModel
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.oracle import SketchOracle, false_claims
from rationalrewards.sketch.pairs import make_preference_pairs
from rationalrewards.sketch.scene import load_scene, score_against_spec, sidecar_path
from rationalrewards.sketch.spec import SceneSpec, SceneSpecError, parse_scene_spec, render_prompt
from rationalrewards.sketch.suites import T2I_TAGS, make_suite, random_spec

GENEVAL = Path(__file__).resolve().parents[1] / "benchmarks/data/geneval/evaluation_metadata.jsonl"


@pytest.fixture
def generator(tmp_path: Path) -> SketchGenerator:
    return SketchGenerator(tmp_path / "images")


def _geneval() -> list[dict]:
    return [json.loads(line) for line in GENEVAL.open()]


def test_rendering_is_deterministic_and_writes_a_matching_sidecar(generator: SketchGenerator) -> None:
    first = generator.generate_one("a photo of four clocks", 3)
    again = SketchGenerator(generator.out_dir / "other").generate_one("a photo of four clocks", 3)
    assert first.image.sha256 == again.image.sha256
    assert generator.generate_one("a photo of four clocks", 4).image.sha256 != first.image.sha256
    scene = load_scene(first.image)
    assert scene.image_sha256 == first.image.sha256 and (scene.width, scene.height) == (256, 256)
    assert all(o.cls == "clock" for o in scene.objects)
    assert Path(first.sidecar) == sidecar_path(first.image.uri)


def test_a_sidecar_that_does_not_match_its_image_is_rejected(generator: SketchGenerator, tmp_path: Path) -> None:
    made = generator.generate_one("a photo of a cat", 0)
    other = generator.generate_one("a photo of a dog", 0)
    fake = tmp_path / "fake.png"
    fake.write_bytes(Path(other.image.uri).read_bytes())
    sidecar_path(fake).write_text(Path(made.sidecar).read_text())
    with pytest.raises(InvalidImageError, match="sha256 mismatch"):
        load_scene(fake)
    lonely = tmp_path / "lonely.png"
    lonely.write_bytes(Path(made.image.uri).read_bytes())
    with pytest.raises(InvalidImageError, match="sidecar"):
        load_scene(lonely)


def test_a_perfect_generator_satisfies_every_geneval_spec(tmp_path: Path) -> None:
    """Layout is right by construction: relations hold under GenEval's own rule, counts and colours are drawn."""
    perfect = SketchGenerator(tmp_path, failures=FailureModel.perfect())
    failures = []
    for row in _geneval():
        for seed in range(2):
            result = score_against_spec(perfect.scene_for(row["prompt"], seed), SceneSpec.from_geneval(row))
            if not result.correct:
                failures.append((row["prompt"], seed, result.errors))
    assert failures == []


def test_single_shot_accuracy_is_in_the_realistic_band_and_explicit_prompts_help(generator: SketchGenerator) -> None:
    rows = _geneval()
    plain, ideal = [], []
    for row in rows:
        spec = SceneSpec.from_geneval(row)
        for seed in range(3):
            plain.append(score_against_spec(generator.scene_for(row["prompt"], seed), spec))
            ideal.append(score_against_spec(generator.scene_for(render_prompt(spec, explicit=True), seed), spec))
    plain_acc, ideal_acc = accuracy_by_tag(plain), accuracy_by_tag(ideal)
    assert 0.45 <= plain_acc["overall"] <= 0.70
    hardest = sorted((v, k) for k, v in plain_acc.items() if k != "overall")[:2]
    assert {k for _, k in hardest} == {"position", "color_attr"}
    assert 0.85 <= ideal_acc["overall"] < 1.0
    for tag in ("counting", "position", "color_attr"):
        assert ideal_acc[tag] > plain_acc[tag] + 0.2, tag


def test_artifacts_depend_on_the_seed_only(generator: SketchGenerator) -> None:
    for seed in range(40):
        kinds = {
            tuple(sorted(a.kind for a in generator.scene_for(p, seed).artifacts))
            for p in ("a photo of a cat", "a photo of two dogs", "a photo of a red car and a blue bus")
        }
        assert len(kinds) == 1, seed


def test_text_is_misspelt_more_often_when_long(generator: SketchGenerator) -> None:
    def error_rate(text: str) -> float:
        wrong = sum(generator.scene_for(f"a sign that says '{text}'", s).texts[0].rendered != text for s in range(200))
        return wrong / 200

    assert error_rate("GO") < error_rate("GOOD MORNING EVERYBODY")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tag=st.sampled_from(T2I_TAGS), spec_seed=st.integers(0, 10_000), image_seed=st.integers(0, 10_000))
def test_property_every_oracle_critique_parses(
    tag: str, spec_seed: int, image_seed: int, generator: SketchGenerator
) -> None:
    spec = random_spec(tag, random.Random(spec_seed))
    prompt = render_prompt(spec)
    made = generator.generate_one(prompt, image_seed)
    oracle = SketchOracle(perception_noise=0.3, seed=spec_seed)
    [critique] = asyncio.run(oracle.critique([CritiqueRequest(prompt=prompt, image=made.image)]))
    assert isinstance(critique, Critique)
    assert parse_critique(critique.raw_text, "t2i").scores == critique.scores
    assert (critique.scores["text_rendering"] is None) == (not spec.text)
    other = generator.generate_one(prompt, image_seed + 1)
    [pair] = asyncio.run(oracle.compare([CompareRequest(prompt=prompt, image_a=made.image, image_b=other.image)]))
    assert isinstance(pair, PairwiseJudgement)


def test_oracle_names_errors_scores_by_rubric_and_refines_explicitly(generator: SketchGenerator) -> None:
    oracle = SketchOracle()
    prompt = "a photo of four clocks"
    seeds = [s for s in range(30) if len(load_scene(generator.generate_one(prompt, s).image).objects) != 4]
    made = generator.generate_one(prompt, seeds[0])
    found = len(load_scene(made.image).objects)
    [critique] = asyncio.run(oracle.critique([CritiqueRequest(prompt=prompt, image=made.image)]))
    assert f"Expected 4 clocks, found {found}." in critique.assessments["text_faithfulness"].justification
    assert critique.scores["text_faithfulness"] < 3.0
    assert parse_scene_spec(critique.refined_request) == parse_scene_spec(prompt)
    assert "exactly 4 clocks" in critique.refined_request
    good = next(
        generator.generate_one(prompt, s)
        for s in range(30)
        if s not in seeds and not load_scene(generator.generate_one(prompt, s).image).artifacts
    )
    [clean] = asyncio.run(oracle.critique([CritiqueRequest(prompt=prompt, image=good.image)]))
    assert clean.scores == {"text_faithfulness": 4.0, "physical_quality": 4.0, "text_rendering": None}
    assert clean.refined_request == ""


def test_oracle_agrees_with_ground_truth_on_pairs(generator: SketchGenerator) -> None:
    prompts = [row["prompt"] for row in make_suite(70, seed=2)]
    rows = make_preference_pairs(prompts, generator, seeds_per_prompt=2)
    oracle = SketchOracle()
    requests = [
        CompareRequest(
            prompt=r["prompt"], image_a=image_ref_from_path(r["image_a"]), image_b=image_ref_from_path(r["image_b"])
        )
        for r in rows
    ]
    judged = asyncio.run(oracle.compare(requests))
    agree = sum(j.preferred == r["true_label"] for j, r in zip(judged, rows, strict=True))
    assert agree / len(rows) >= 0.9


def test_preference_pairs_keep_ties_and_apply_label_noise(generator: SketchGenerator) -> None:
    prompts = [row["prompt"] for row in make_suite(28, seed=4)]
    clean = make_preference_pairs(prompts, generator, seeds_per_prompt=4)
    assert len(clean) == 56 and {"A", "B", "tie"} <= {r["label"] for r in clean}
    assert all(r["label"] == r["true_label"] for r in clean)
    noisy = make_preference_pairs(prompts, generator, seeds_per_prompt=4, label_noise=0.5)
    flipped = sum(r["label"] != r["true_label"] for r in noisy) / len(noisy)
    assert 0.3 < flipped < 0.7
    with pytest.raises(ValueError, match="two seeds"):
        make_preference_pairs(prompts, generator, seeds_per_prompt=1)


def test_teacher_anchoring_hallucination_and_filtering(generator: SketchGenerator) -> None:
    from rationalrewards.rewardmodel import parse_pairwise

    prompt = "a photo of three wine glasses"
    images = [generator.generate_one(prompt, s) for s in range(12)]
    pairs = [(a.image, b.image) for a, b in zip(images[::2], images[1::2], strict=True)]
    honest = SketchOracle(image_dirs=[generator.out_dir])
    liar = SketchOracle(image_dirs=[generator.out_dir], hallucination=1.0, seed=1)

    def teach(teacher: SketchOracle, request: object) -> str:
        [completion] = asyncio.run(teacher.teach([request]))  # type: ignore[list-item]
        return completion.text

    contradicted = fabricated = 0
    for a, b in pairs:
        scene_pair = {"Image A": load_scene(a), "Image B": load_scene(b)}
        anchored = AnchoredRequest(prompt=prompt, image_a=a, image_b=b, label="A")
        honest_text = teach(honest, anchored)
        assert false_claims(honest_text, scene_pair) == []
        lie = teach(liar, anchored)
        contradicted += parse_pairwise(lie, "t2i").preferred != "A"
        if false_claims(lie, scene_pair):
            fabricated += 1
            verdict = teach(honest, RepredictRequest(prompt=prompt, rationale=lie, image_a=a, image_b=b))
            assert verdict.strip().endswith("Answer: tie")  # claims the images contradict void the rationale
    assert contradicted > 0 and fabricated > 0 and contradicted + fabricated == len(pairs)
    projection = ProjectRequest(prompt=prompt, image=pairs[0][0], reference_rationale="reference notes")
    assert isinstance(parse_critique(teach(honest, projection), "t2i"), Critique)
    # Over the wire (messages only), the oracle reads the typed request back and answers the same.
    wire = asyncio.run(SketchOracle(image_dirs=[generator.out_dir]).complete(build_messages(projection)))
    assert wire.text == teach(honest, projection)


def test_edits_parse_apply_and_score(generator: SketchGenerator) -> None:
    for instruction, kind in [
        ("make the cat blue", "recolor"),
        ("change the color of the cat to blue", "recolor"),
        ("add two red cups", "add"),
        ("remove the dog", "remove"),
        ("replace the cat with a zebra", "replace"),
        ("turn the cat into a zebra", "replace"),
        ("move the dog to the left", "move"),
        ("change the text to 'CLOSED'", "text"),
    ]:
        assert parse_edit(instruction).kind == kind, instruction
    assert parse_edit("Only make the cat blue, and keep everything else unchanged.").explicit
    with pytest.raises(SceneSpecError, match="not understood"):
        parse_edit("do something nice")
    source = generator.generate_one("a photo of a cat and a dog", 1)
    perfect = SketchGenerator(generator.out_dir, failures=FailureModel.perfect())
    edited = perfect.generate_one("make the cat blue", 5, source.image)
    assert score_edit(load_scene(source.image), load_scene(edited.image), "make the cat blue").success
    outcomes = []
    for seed in range(60):
        result = generator.generate_one("make the cat blue", seed, source.image)
        outcomes.append(score_edit(load_scene(source.image), load_scene(result.image), "make the cat blue"))
    assert 0.5 < sum(o.success for o in outcomes) / len(outcomes) < 0.95
    assert any(not o.made for o in outcomes) and any(not o.preserved for o in outcomes)
    oracle = SketchOracle()
    bad = next(
        generator.generate_one("make the cat blue", s, source.image) for s, o in enumerate(outcomes) if not o.preserved
    )
    [critique] = asyncio.run(
        oracle.critique(
            [CritiqueRequest(task="edit", prompt="make the cat blue", image=bad.image, source_image=source.image)]
        )
    )
    assert (
        critique.scores["image_faithfulness"] < 4.0
        and "Unrequested changes" in critique.assessments["image_faithfulness"].justification
    )
    assert parse_edit(critique.refined_request).explicit


def test_unreadable_request_makes_the_oracle_abstain(generator: SketchGenerator) -> None:
    made = generator.generate_one("a photo of a cat", 0)
    [result] = asyncio.run(SketchOracle().critique([CritiqueRequest(prompt="1000 dogs", image=made.image)]))
    assert isinstance(result, Abstention) and result.reason == "refused" and "limit" in result.detail


def test_failure_model_validates_its_knobs() -> None:
    with pytest.raises(ValueError, match="count_base"):
        FailureModel(count_base=1.5)
    with pytest.raises(ValueError, match="size"):
        SketchGenerator("/tmp/x", size=10)


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, check=check)


def test_cli_sketch_parse_render_and_critique(tmp_path: Path) -> None:
    spec = json.loads(_cli("sketch", "parse", "a photo of a laptop left of a cow", "--json").stdout)
    assert spec == {
        "tag": "position",
        "include": [{"class": "cow", "count": 1}, {"class": "laptop", "count": 1, "position": ["left of", 0]}],
    }
    out = tmp_path / "clocks.png"
    made = json.loads(
        _cli("sketch", "render", "a photo of four clocks", "--seed", "1", "--out", str(out), "--json").stdout
    )
    assert Path(made["image"]).exists() and Path(made["sidecar"]).exists()
    critique = json.loads(
        _cli("critique", str(out), "--prompt", "a photo of four clocks", "--critic", "sketch", "--json").stdout
    )
    assert critique["model"] == "sketch-oracle" and critique["scores"]["text_rendering"] is None
    lonely = tmp_path / "lonely.png"
    lonely.write_bytes(out.read_bytes())
    result = _cli("critique", str(lonely), "--prompt", "a photo of four clocks", check=False)
    # An image from elsewhere is not one the sketch critic can judge: it abstains (exit 1), it does not crash.
    assert result.returncode == 1 and "abstained (refused)" in result.stderr and "sidecar" in result.stderr
    bad = _cli("sketch", "parse", "1000 dogs", check=False)
    assert bad.returncode == 2 and "limit of 12" in bad.stderr
    suite = tmp_path / "suite.jsonl"
    _cli("sketch", "suite", "--n", "14", "--out", str(suite))
    assert len(suite.read_text().splitlines()) == 14
