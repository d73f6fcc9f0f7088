"""Release fidelity (issue 11): the `release` prompt profile renders every critic request exactly as the released
checkpoints were trained on it (compared with reference copies under tests/data/release_format/), `auto` picks it for
RationalRewards checkpoints, the CLI sends it over the wire, truncated answers with every score keep their scores, and
the two GCR stop rules differ where they should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import run_cli
from rationalrewards.agents.refiner import CriticRefiner, RefineHistory, RoundMemory
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.rewardmodel import _release_format as release_format
from rationalrewards.rewardmodel.backends.base import Completion, critique_from_completion, judgement_from_completion
from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
from rationalrewards.rewardmodel.format import render_critique, render_pairwise
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.mock_server import MockServer, parrot_teacher_answer
from rationalrewards.rewardmodel.prompts import build_messages, declared_profile, read_messages, resolve_profile
from rationalrewards.rewardmodel.schemas import (
    Abstention,
    Aspect,
    AspectAssessment,
    CompareRequest,
    Critique,
    CritiqueRequest,
    ImageRef,
    PairwiseAspect,
    PairwiseJudgement,
    Task,
)
from rationalrewards.rewardmodel.scoring import passes_threshold
from rationalrewards.runtime.parrot_runner import sft_row

DATA = Path(__file__).parent / "data" / "release_format"
PROMPT = "Put a red hat on the cat"


def _copy(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def _ref(tmp_path: Path, color: str) -> ImageRef:
    from PIL import Image

    path = tmp_path / f"{color}.png"
    Image.new("RGB", (12, 10), color).save(path)
    return image_ref_from_path(path)


@pytest.fixture
def images(tmp_path: Path) -> dict[str, ImageRef]:
    return {name: _ref(tmp_path, color) for name, color in (("a", "red"), ("b", "blue"), ("source", "green"))}


def _turns(messages: list[dict]) -> tuple[list[str | None], str, list[str]]:
    """(system turns, the user turn as the release writes its template: text with `<image>` where each image goes,
    the image URLs in order)."""
    systems = [m["content"] for m in messages if m["role"] == "system"]
    [user] = [m for m in messages if m["role"] == "user"]
    text, urls = "", []
    for part in user["content"]:
        if part["type"] == "image_url":
            text += "<image>"
            urls.append(part["image_url"]["url"])
        else:
            text += part["text"]
    return systems, text, urls


def _url(ref: ImageRef) -> str:
    return f"file://{ref.sha256}"


CASES = [
    # (request builder, system copy, user copy(s), image order)
    ("t2i pointwise", lambda i: CritiqueRequest(prompt=PROMPT, image=i["a"]), "t2i_system.txt", ["t2i_user.txt"], "a"),
    (
        "t2i test-time (GCR): the release has none, so the pointwise request",
        lambda i: CritiqueRequest(prompt=PROMPT, image=i["a"], purpose="refine"),
        "t2i_system.txt",
        ["t2i_user.txt"],
        "a",
    ),
    (
        "edit pointwise and RL reward",
        lambda i: CritiqueRequest(task="edit", prompt=PROMPT, image=i["a"], source_image=i["source"]),
        "edit_system.txt",
        ["edit_task.txt", "edit_guideline.txt"],
        "source a",
    ),
    (
        "edit test-time, score first",
        lambda i: CritiqueRequest(task="edit", prompt=PROMPT, image=i["a"], source_image=i["source"], purpose="refine"),
        None,
        ["test_time_edit.txt"],
        "source a",
    ),
    (
        "t2i pairwise",
        lambda i: CompareRequest(prompt=PROMPT, image_a=i["a"], image_b=i["b"]),
        None,
        ["pairwise_t2i.txt"],
        "a b",
    ),
    (
        "edit pairwise",
        lambda i: CompareRequest(task="edit", prompt=PROMPT, image_a=i["a"], image_b=i["b"], source_image=i["source"]),
        None,
        ["pairwise_edit.txt"],
        "source a b",
    ),
]


@pytest.mark.parametrize(("what", "make", "system", "users", "order"), CASES, ids=[c[0] for c in CASES])
def test_release_requests_match_the_reference_copies(images, what, make, system, users, order) -> None:
    request = make(images)
    systems, user, urls = _turns(build_messages(request, profile="release", image_url=_url))
    assert systems == ([_copy(system)] if system else []), what
    # The edit pointwise user turn is the task template, a blank line, then the guideline (as the release joins them).
    expected = "\n\n".join(_copy(name) for name in users).replace("{request}", PROMPT)
    assert user == expected, what
    assert urls == [_url(images[name]) for name in order.split()], what
    # `with_refinement=False` cannot change the release format: its models were trained to write the section.
    if isinstance(request, CritiqueRequest):
        quiet = request.model_copy(update={"with_refinement": False})
        assert build_messages(quiet, profile="release", image_url=_url) == build_messages(
            request, profile="release", image_url=_url
        )


def test_every_text_part_is_sent_and_images_alternate_with_text(images) -> None:
    """The release splits a template at `<image>` and sends every piece, the empty last one included."""
    [user] = build_messages(CompareRequest(prompt="x", image_a=images["a"], image_b=images["b"]), profile="release")
    kinds = [part["type"] for part in user["content"]]
    assert kinds == ["text", "image_url", "text", "image_url", "text"]
    assert all(part["image_url"]["url"].startswith("data:image/png;base64,") for part in user["content"][1::2])


def test_release_format_module_matches_the_copies() -> None:
    pairs = {
        "T2I_SYSTEM": "t2i_system.txt",
        "T2I_USER": "t2i_user.txt",
        "EDIT_SYSTEM": "edit_system.txt",
        "EDIT_TASK": "edit_task.txt",
        "EDIT_GUIDELINE": "edit_guideline.txt",
        "PAIRWISE_T2I": "pairwise_t2i.txt",
        "PAIRWISE_EDIT": "pairwise_edit.txt",
        "TEST_TIME_EDIT": "test_time_edit.txt",
    }
    for constant, name in pairs.items():
        assert getattr(release_format, constant) == _copy(name), constant
    assert "[ float score or N/A ]" in release_format.T2I_USER and "[ float score ]" in release_format.T2I_USER
    assert "## Winner: [N/A or Image A or Image B or It's a tie]" in release_format.PAIRWISE_T2I
    readme = _copy("README.md")
    assert "2a5ff5adda807317d4c81900a40812ca6ef2a783" in readme and "fe6e7434b1cc363d4293307fdef09b1070ea03f7" in readme


def test_read_messages_inverts_every_profile(images) -> None:
    requests = [
        CritiqueRequest(prompt=PROMPT, image=images["a"]),
        CritiqueRequest(prompt="a sign that says {OPEN}\nnow", image=images["a"]),  # braces and newlines survive
        CritiqueRequest(task="edit", prompt=PROMPT, image=images["a"], source_image=images["source"]),
        CritiqueRequest(task="edit", prompt=PROMPT, image=images["a"], source_image=images["source"], purpose="refine"),
        CompareRequest(prompt=PROMPT, image_a=images["a"], image_b=images["b"]),
        CompareRequest(
            task="edit", prompt=PROMPT, image_a=images["a"], image_b=images["b"], source_image=images["source"]
        ),
    ]
    from rationalrewards.rewardmodel.prompts import PROFILES

    assert set(PROFILES) == {"house", "release", "compact"}
    for profile in PROFILES:
        for request in requests:
            back = read_messages(build_messages(request, profile=profile))
            assert type(back) is type(request) and back.prompt == request.prompt and back.task == request.task
            if isinstance(request, CritiqueRequest):
                assert back.image.sha256 == request.image.sha256
                if profile == "release":
                    assert back.purpose == request.purpose
            else:
                assert (back.image_a.sha256, back.image_b.sha256) == (request.image_a.sha256, request.image_b.sha256)
            assert (back.source_image is None) == (request.source_image is None)


def test_auto_picks_release_for_rationalrewards_checkpoints(tmp_path: Path) -> None:
    assert resolve_profile("auto", "TIGER-Lab/RationalRewards-8B-T2I") == "release"
    assert resolve_profile("auto", "/models/rational_rewards_edit") == "release"
    assert resolve_profile("auto", "Qwen3-VL-8B-Instruct") == "house"
    assert resolve_profile("auto", None) == "house"
    assert resolve_profile("house", "RationalRewards-8B") == "house"  # an explicit choice wins
    (tmp_path / "rationalrewards.json").write_text(json.dumps({"prompt_profile": "release"}))
    assert declared_profile(tmp_path) == "release"
    assert resolve_profile("auto", "my-student", declared_profile(tmp_path)) == "release"
    with pytest.raises(ValueError, match="unknown prompt profile"):
        resolve_profile("relase")
    (tmp_path / "rationalrewards.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="prompt_profile"):
        declared_profile(tmp_path)


def test_cli_critique_sends_the_release_format_over_the_wire(png_file: Path, port: int) -> None:
    with MockServer(port) as server:
        result = run_cli(
            "critique", str(png_file), "-p", PROMPT, "--critic", server.base_url, "--prompts", "release", "--json"
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["prompts"] == "release"
        body = server.state.requests[-1]
        systems, user, urls = _turns(body["messages"])
        assert systems == [_copy("t2i_system.txt")]
        assert user == _copy("t2i_user.txt").replace("{request}", PROMPT) and len(urls) == 1
        assert body["max_tokens"] == 20480
        # auto: the served model's name decides; `house` for any other model.
        run_cli("critique", str(png_file), "-p", PROMPT, "--critic", server.base_url, check=True)
        assert not any(m["role"] == "system" for m in server.state.requests[-1]["messages"])
        server.state.model = "RationalRewards-8B-T2I"
        run_cli(
            "compare", str(png_file), str(png_file), "-p", PROMPT, "--critic", server.base_url, "--max-tokens", "4096"
        )
        body = server.state.requests[-1]
        assert _turns(body["messages"])[1] == _copy("pairwise_t2i.txt").replace("{request}", PROMPT)
        assert body["max_tokens"] == 4096 and body["model"] == "RationalRewards-8B-T2I"
    bad = run_cli("critique", str(png_file), "-p", PROMPT, "--critic", "fake", "--prompts", "paper")
    assert (
        bad.returncode == 2 and "'--prompts': 'paper' is not one of 'auto', 'house', 'release', 'compact'" in bad.stderr
    )


async def test_the_oracle_and_the_mock_teacher_answer_both_profiles(tmp_path: Path) -> None:
    from rationalrewards.sketch.generator import SketchGenerator
    from rationalrewards.sketch.oracle import SketchOracle

    generator = SketchGenerator(tmp_path / "images", size=96)
    [made] = await generator.generate(["a photo of two cats"], [1])
    oracle = SketchOracle(image_dirs=[tmp_path / "images"])  # behind HTTP it sees data URLs only
    for profile in ("house", "release"):
        for purpose in ("score", "refine"):
            request = CritiqueRequest(prompt="a photo of two cats", image=made.image, purpose=purpose)
            completion = await oracle.complete(build_messages(request, profile=profile))
            critique = critique_from_completion(completion, request)
            assert isinstance(critique, Critique) and critique.scores["text_faithfulness"] is not None, profile
        pair = CompareRequest(prompt="a photo of two cats", image_a=made.image, image_b=made.image)
        text = parrot_teacher_answer(read_messages(build_messages(pair, profile=profile)))
        assert isinstance(judgement_from_completion(Completion(text=text), pair), PairwiseJudgement)


async def test_a_release_profile_backend_still_teaches_in_house_prompts(png_file: Path, port: int) -> None:
    """No PARROT prompt was released: teacher requests are the house ones under either profile, and the mock teacher
    behind HTTP answers them."""
    from rationalrewards.rewardmodel.mock_server import parrot_teacher_text
    from rationalrewards.rewardmodel.schemas import AnchoredRequest

    image = image_ref_from_path(png_file)
    anchored = AnchoredRequest(prompt="a cat", image_a=image, image_b=image, label="B")
    with MockServer(port) as server:
        server.state.responder = parrot_teacher_text
        teacher = OpenAICompatibleRewardModel(server.base_url, "RationalRewards-8B", prompts="release", max_retries=0)
        [answer] = await teacher.teach([anchored])
        await teacher.aclose()
    sent = server.state.requests[-1]["messages"]
    assert not any(m["role"] == "system" for m in sent)  # the house request, not a release template
    back = read_messages(sent)
    assert isinstance(back, AnchoredRequest) and (back.prompt, back.label) == ("a cat", "B")
    judgement = judgement_from_completion(answer, CompareRequest.like(anchored))
    assert isinstance(judgement, PairwiseJudgement) and judgement.preferred == "B"


# ------------------------------------------------------------------ truncation -------------------------------------


def _critique(task: Task = Task.t2i) -> Critique:
    return Critique(
        task=task,
        assessments={
            a: AspectAssessment(score=None if a is Aspect.text_rendering else 3.25, justification="Evidence.")
            for a in task.aspects
        },
        summary="Fine.",
        refinement_comments="Be explicit.",
        refined_request="A red hat, centred, on the sleeping cat, in soft light.",
    )


def test_truncation_after_every_score_keeps_the_critique_and_flags_the_refinement(images) -> None:
    request = CritiqueRequest(prompt=PROMPT, image=images["a"])
    full = render_critique(_critique())
    cut = full[: full.index("in soft light") + 4]  # mid refined request
    result = critique_from_completion(Completion(text=cut, finish_reason="length"), request)
    assert isinstance(result, Critique) and result.truncated and result.raw_text == cut
    assert result.scores == {"text_faithfulness": 3.25, "physical_quality": 3.25, "text_rendering": None}
    assert any("max_tokens" in w for w in result.warnings) and any("refined request" in w for w in result.warnings)
    # The refiner does not act on a refined request that may stop mid-sentence.
    history = RefineHistory(original_prompt=PROMPT, rounds=[RoundMemory(prompt=PROMPT, critique=result, reward=0.5)])
    assert run_refine(CriticRefiner(), history) == PROMPT
    whole = critique_from_completion(Completion(text=full, finish_reason="stop"), request)
    assert isinstance(whole, Critique) and not whole.truncated
    assert (
        run_refine(CriticRefiner(), RefineHistory(PROMPT, [RoundMemory(PROMPT, whole, 0.5)])) == whole.refined_request
    )


def test_truncation_before_a_score_abstains(images) -> None:
    request = CritiqueRequest(prompt=PROMPT, image=images["a"])
    full = render_critique(_critique())
    for marker in ("2. Physical", "## Score: 3.25\n\n2."):
        cut = full[: full.index(marker)]
        result = critique_from_completion(Completion(text=cut, finish_reason="length"), request)
        assert isinstance(result, Abstention) and result.reason == "truncated" and result.raw_text == cut
    # The last score line cut mid-number ("3." of "3.25") is not read as 3: the last line of a cut text is dropped.
    last = full.index("## Score: N/A")
    text = full[:last] + "## Score: 3."
    pointwise = critique_from_completion(Completion(text=text, finish_reason="length"), request)
    assert isinstance(pointwise, Abstention) and pointwise.reason == "truncated"


def test_truncated_pairwise_with_every_score_is_a_judgement(images) -> None:
    pair = CompareRequest(prompt=PROMPT, image_a=images["a"], image_b=images["b"])
    aspects = {
        a: PairwiseAspect(score_a=3.5, score_b=2.0, winner="A", justification="A is better.") for a in Task.t2i.aspects
    }
    text = render_pairwise(PairwiseJudgement(task=Task.t2i, aspects=aspects, summary="A wins on every dimension."))
    result = judgement_from_completion(Completion(text=text[:-10], finish_reason="length"), pair)
    assert isinstance(result, PairwiseJudgement) and result.truncated and result.preferred == "A"


def run_refine(refiner: CriticRefiner, history: RefineHistory) -> str:
    import asyncio

    return asyncio.run(refiner.refine(history))


# ------------------------------------------------------------------ presets -----------------------------------------


def _scored(tf: float, iff: float, pq: float, tr: float | None) -> Critique:
    scores = {
        Aspect.text_faithfulness: tf,
        Aspect.image_faithfulness: iff,
        Aspect.physical_quality: pq,
        Aspect.text_rendering: tr,
    }
    return Critique(task=Task.edit, assessments={a: AspectAssessment(score=s) for a, s in scores.items()})


def test_the_two_stop_rules_differ_where_the_release_reads_fewer_aspects() -> None:
    weak_preservation = _scored(3.5, 2.0, 3.0, None)  # the release does not read image faithfulness
    assert passes_threshold(weak_preservation, 3.0, "release") and not passes_threshold(weak_preservation, 3.0, "paper")
    weak_text = _scored(3.5, 3.5, 3.5, 1.5)  # nor text rendering
    assert passes_threshold(weak_text, 3.0, "release") and not passes_threshold(weak_text, 3.0, "paper")
    weak_quality = _scored(3.5, 3.5, 2.5, None)
    assert not passes_threshold(weak_quality, 3.0, "release") and not passes_threshold(weak_quality, 3.0, "paper")
    release, paper = GCRConfig.preset("release"), GCRConfig.preset("paper")
    assert (release.stop_rule, paper.stop_rule) == ("release", "paper")
    assert (release.max_rounds, release.candidates, release.seeds, release.rescore) == (2, 1, "same", False)
    with pytest.raises(ValueError, match="stop rule"):
        GCRConfig(stop_rule="strict")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="paper, release, deep"):
        GCRConfig.preset("fast")


class _SamePrompt:
    """A refiner that keeps the prompt (the stop rule is what this test is about)."""

    name = "same"

    async def refine(self, history: RefineHistory) -> str:
        return history.last_prompt


async def test_gcr_release_preset_keeps_an_image_the_paper_preset_regenerates(tmp_path: Path) -> None:
    """One edit, two presets: image faithfulness 2 fails `paper`, but the release's rule never reads it."""
    from langgraph.checkpoint.memory import InMemorySaver

    from rationalrewards.graphs.gcr import GCRContext, build_gcr_graph
    from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
    from rationalrewards.sketch.generator import SketchGenerator

    scores = {"text_faithfulness": 3.5, "image_faithfulness": 2.0, "physical_quality": 3.5, "text_rendering": None}
    critic = FunctionRewardModel(lambda request: scores)
    generator = SketchGenerator(tmp_path / "images", size=96)
    source = generator.generate_one("a photo of a cat", 0)
    stops = {}
    for preset in ("paper", "release"):
        graph = build_gcr_graph(GCRConfig.preset(preset), checkpointer=InMemorySaver())
        out = await graph.ainvoke(
            {"prompt": "make the cat blue", "seed": 0, "source_image": source.image.model_dump(mode="json")},
            {"configurable": {"thread_id": preset}},
            context=GCRContext(generator=generator, critic=critic, refiner=_SamePrompt()),
        )
        stops[preset] = (out["stop_reason"], len(out["rounds"]))
    assert stops == {"paper": ("max_rounds", 2), "release": ("passed", 1)}


def test_parrot_sft_rows_follow_the_student_profile(images) -> None:
    request = CritiqueRequest(task="edit", prompt=PROMPT, image=images["a"], source_image=images["source"])
    release = sft_row(request, "answer", profile="release")
    assert [m["role"] for m in release["messages"]] == ["system", "user", "assistant"]
    expected = (_copy("edit_task.txt") + "\n\n" + _copy("edit_guideline.txt")).replace("{request}", PROMPT)
    assert release["messages"][1]["content"] == expected
    assert release["images"] == [images["source"].uri, images["a"].uri]
    house = sft_row(request, "answer", profile="house")
    assert [m["role"] for m in house["messages"]] == ["user", "assistant"]
    assert house["messages"][0]["content"].count("<image>") == 2
    # Text parts end their own lines, so joined as a chat template joins them they do not run together.
    assert (
        "(before the edit):\n<image>Edited image (after the edit):\n<image>You are"
        not in house["messages"][0]["content"]
    )
    assert (
        "(before the edit):\n<image>Edited image (after the edit):\n<image>Answer in" in house["messages"][0]["content"]
    )


def test_in_process_critic_reads_its_declared_profile(tiny_vlm_dir: Path, tmp_path: Path, images) -> None:
    """A model directory that declares the release profile (as our distilled students do) is asked in that format by
    `TransformersRewardModel` under `auto`; one that declares nothing gets the house prompts."""
    import shutil

    from rationalrewards.rewardmodel.backends.local import TransformersRewardModel

    request = CritiqueRequest(prompt=PROMPT, image=images["a"])
    house = TransformersRewardModel(tiny_vlm_dir, max_new_tokens=4)
    assert house.prompt_profile() == "house" and house.messages(request)[0]["role"] == "user"
    student = shutil.copytree(tiny_vlm_dir, tmp_path / "student")
    (student / "rationalrewards.json").write_text(json.dumps({"prompt_profile": "release"}))
    release = TransformersRewardModel(student, max_new_tokens=4)
    assert release.prompt_profile() == "release"
    assert [m["role"] for m in release.messages(request)] == ["system", "user"]
    assert TransformersRewardModel(student, max_new_tokens=4, prompts="house").prompt_profile() == "house"
    with pytest.raises(ValueError, match="unknown prompt profile"):
        TransformersRewardModel(student, prompts="paper")
