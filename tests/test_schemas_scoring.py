"""Schemas round-trip through JSON; scoring policies, pairwise decisions and accuracy; the trl reward adapter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from rationalrewards.rewardmodel import (
    Abstention,
    Aspect,
    AspectAssessment,
    CompareRequest,
    Critique,
    CritiqueRequest,
    ImageRef,
    NoActiveAspectsError,
    PairwiseAspect,
    PairwiseJudgement,
    Task,
    pairwise_accuracy,
    reward_from_critique,
)
from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.reward_fn import CritiqueReward
from rationalrewards.rewardmodel.schemas import CritiqueResult, PairwiseResult, decide_pairwise
from rationalrewards.rewardmodel.scoring import passes_threshold, reward_or_none
from rationalrewards.rewardmodel.testing import FakeRewardModel

REF = ImageRef(uri="/tmp/x.png", sha256="0" * 64, width=8, height=8)


def _critique(task: Task, **scores: float | None) -> Critique:
    return Critique(
        task=task, assessments={Aspect(k): AspectAssessment(score=v, justification="j") for k, v in scores.items()}
    )


def test_every_type_round_trips_through_json() -> None:
    critique = _critique(
        Task.edit, text_faithfulness=3.5, image_faithfulness=4, physical_quality=2, text_rendering=None
    )
    judgement = PairwiseJudgement(
        task=Task.t2i,
        aspects={a: PairwiseAspect(score_a=3, score_b=2, winner="A") for a in Task.t2i.aspects},
    )
    objects = [
        critique,
        judgement,
        Abstention(reason="truncated", detail="cut", raw_text="# User"),
        REF,
        CritiqueRequest(task="edit", prompt="make it red", image=REF, source_image=REF),
        CompareRequest(prompt="a cat", image_a=REF, image_b=REF),
    ]
    for obj in objects:
        assert type(obj).model_validate_json(obj.model_dump_json()) == obj
    mixed = TypeAdapter(list[CritiqueResult]).validate_json(
        TypeAdapter(list[CritiqueResult]).dump_json([critique, Abstention(reason="timeout")])
    )
    assert [type(x) for x in mixed] == [Critique, Abstention]
    assert TypeAdapter(PairwiseResult).validate_python(judgement.model_dump()).preferred == "A"


def test_validation_errors_are_clear() -> None:
    with pytest.raises(ValidationError, match="outside"):
        AspectAssessment(score=4.5)
    with pytest.raises(ValidationError, match="source_image"):
        CritiqueRequest(task="edit", prompt="x", image=REF)
    with pytest.raises(ValidationError):
        Abstention(reason="made_up_reason")


def test_paper_policy_uses_active_aspects_only() -> None:
    t2i = _critique(Task.t2i, text_faithfulness=4, physical_quality=1, text_rendering=None)
    assert reward_from_critique(t2i) == pytest.approx((2.5 - 1) / 3)
    edit = _critique(Task.edit, text_faithfulness=4, image_faithfulness=1, physical_quality=4, text_rendering=4)
    assert reward_from_critique(edit, "paper") == pytest.approx((13 / 4 - 1) / 3)
    assert reward_from_critique(edit, "edit_rl_release") == pytest.approx(1.0)  # image faithfulness left out
    assert reward_from_critique(t2i, "all") == pytest.approx((9 / 3 - 1) / 3)  # N/A counts as a flawless 4
    with pytest.raises(ValueError, match="unknown reward policy"):
        reward_from_critique(t2i, "median")  # type: ignore[arg-type]


def test_a_critique_with_nothing_to_score_cannot_exist() -> None:
    # N/A on a required aspect used to read as a pass (policy `all` made an all-N/A critique worth 1.0): such a
    # critique is no longer representable, whatever builds it.
    with pytest.raises(ValidationError, match="only Text Rendering may be N/A"):
        _critique(Task.t2i, text_faithfulness=None, physical_quality=None, text_rendering=None)
    with pytest.raises(ValidationError, match="only Text Rendering may be N/A"):
        _critique(Task.edit, text_faithfulness=3, image_faithfulness=None, physical_quality=3, text_rendering=None)
    with pytest.raises(ValidationError, match="missing: Physical and Visual Quality"):
        _critique(Task.t2i, text_faithfulness=3, text_rendering=None)
    assert reward_or_none(Abstention(reason="parse_error")) is None
    only = _critique(Task.t2i, text_faithfulness=2, physical_quality=4, text_rendering=None)
    assert reward_from_critique(only, "all") == pytest.approx((10 / 3 - 1) / 3)  # N/A text rendering counts as 4
    with pytest.raises(NoActiveAspectsError):
        reward_from_critique(only.model_copy(update={"assessments": {}}))  # a copy skips validation: still no number


def test_threshold_rule() -> None:
    assert passes_threshold(_critique(Task.t2i, text_faithfulness=3, physical_quality=3.5, text_rendering=None))
    assert not passes_threshold(_critique(Task.t2i, text_faithfulness=2.5, physical_quality=4, text_rendering=None))


def test_pairwise_decision_and_tolerance() -> None:
    a = {"text_faithfulness": 3.5, "physical_quality": 3.0, "text_rendering": None}
    b = {"text_faithfulness": 3.0, "physical_quality": 3.0, "text_rendering": 4.0}  # unshared aspects do not count
    assert decide_pairwise(a, b) == "A"
    assert decide_pairwise(a, b, tolerance=0.5) == "tie"
    assert decide_pairwise(b, a) == "B"


def test_pairwise_accuracy_counts_ties_and_abstentions_apart() -> None:
    result = pairwise_accuracy(["A", "tie", Abstention(reason="timeout"), "B", "tie"], ["A", "A", "B", "A", "tie"])
    assert (result.n, result.judged, result.correct, result.abstentions) == (5, 4, 2, 1)
    assert (result.predicted_ties, result.label_ties) == (2, 1)
    assert result.accuracy == pytest.approx(0.5)
    assert result.accuracy_decisive == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="labels"):
        pairwise_accuracy(["A"], [])


def test_trl_reward_adapter_maps_abstentions_to_none(png_file: Path) -> None:
    def score(request: CritiqueRequest):
        if "fail" in request.prompt:
            return Abstention(reason="parse_error", raw_text="garbage")
        return {"text_faithfulness": 4.0, "physical_quality": 2.5, "text_rendering": None}

    from PIL import Image

    with CritiqueReward(FunctionRewardModel(score)) as reward:
        # Exactly as trl calls a reward function: keywords only, extra dataset columns and trainer state alongside.
        rewards = reward(
            prompts=["a red ball", "please fail"],
            completions=[Image.open(png_file), str(png_file)],
            completion_ids=[[1, 2], [3]],
            trainer_state=object(),
            extra_column=["x", "y"],
        )
        assert rewards[0] == pytest.approx((3.25 - 1) / 3)
        assert rewards[1] is None  # an abstention is masked, never scored 0.0
        conversational = [[{"role": "system", "content": "be nice"}, {"role": "user", "content": "a red ball"}]]
        assert reward(prompts=conversational, images=[png_file]) == [pytest.approx(rewards[0])]

        async def inside_a_running_loop() -> list[float | None]:
            return reward(prompts=["a red ball"], completions=[png_file])  # sync call from async code (notebooks)

        assert asyncio.run(inside_a_running_loop())[0] == pytest.approx(rewards[0])
        assert asyncio.run(reward.acall(prompts=["a red ball"], completions=[png_file]))[0] == pytest.approx(rewards[0])
        with pytest.raises(ValueError, match="prompts but"):
            reward(prompts=["a"], completions=[])
        with pytest.raises(ValueError, match="no images to score"):
            reward(prompts=["a"])


def test_trl_reward_adapter_reuses_one_loop_and_connection_pool(png_file: Path) -> None:
    from helpers import free_port
    from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
    from rationalrewards.rewardmodel.mock_server import MockServer

    with MockServer(free_port()) as server:
        critic = OpenAICompatibleRewardModel(server.base_url, "mock-critic")
        reward = CritiqueReward(critic)
        sessions = set()
        for _ in range(3):
            assert reward(prompts=["a cat"], completions=[png_file])[0] is not None
            sessions |= {id(state.session) for state in critic.http._states.values()}
        assert len(sessions) == 1  # one event loop and one aiohttp pool across calls, not one per call
        request = server.state.requests[-1]
        assert "# User Request Refinement" in str(request["messages"])  # the RL request asks for the refinement too
        reward.close()
        assert not critic.http._states


async def test_fake_reward_model_is_deterministic_and_parses(png_file: Path) -> None:
    ref = image_ref_from_path(png_file)
    fake = FakeRewardModel()
    first = await fake.critique([CritiqueRequest(prompt="a sign that says 'OPEN'", image=ref)])
    again = await FakeRewardModel().critique([CritiqueRequest(prompt="a sign that says 'OPEN'", image=ref)])
    assert first == again
    assert isinstance(first[0], Critique) and first[0].scores["text_rendering"] is not None
    plain = (await fake.critique([CritiqueRequest(prompt="a dog", image=ref)]))[0]
    assert plain.scores["text_rendering"] is None
    judged = (await fake.compare([CompareRequest(prompt="a dog", image_a=ref, image_b=ref)]))[0]
    assert judged.preferred == "tie"  # same image, same scores
