"""The GCR graph: shape, the paper and deep presets, abstaining critics, refiners, human in the loop, editing,
the generation cache, the critic tool and node factory, and the example multi-agent workflow."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from rationalrewards.agents.refiner import CriticRefiner, LLMRefiner, RefineHistory, RoundMemory
from rationalrewards.graphs.gcr import GCRContext, GCRGraph, build_gcr_graph
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.graphs.state import critique_of
from rationalrewards.graphs.store import GenerationCache
from rationalrewards.integrations.langchain import critique_image_tool, make_critic_node
from rationalrewards.rewardmodel import Abstention, Aspect, AspectAssessment, Critique, CritiqueRequest, Task
from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
from rationalrewards.rewardmodel.images import content_path
from rationalrewards.rewardmodel.schemas import ImageRef
from rationalrewards.sketch.failures import FailureModel
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.oracle import SketchOracle
from rationalrewards.sketch.scene import load_scene

SNAPSHOT = Path(__file__).parent / "snapshots" / "gcr_graph.mmd"
ROOT_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def generator(tmp_path: Path) -> SketchGenerator:
    return SketchGenerator(tmp_path / "images")


def _context(generator: SketchGenerator, **kw: Any) -> GCRContext:
    return GCRContext(
        generator=generator, critic=kw.pop("critic", SketchOracle()), refiner=kw.pop("refiner", CriticRefiner()), **kw
    )


async def _run(config: GCRConfig, context: GCRContext, inputs: dict[str, Any], thread: str = "t") -> dict[str, Any]:
    graph = build_gcr_graph(config, checkpointer=InMemorySaver())
    return await graph.ainvoke(inputs, {"configurable": {"thread_id": thread}}, context=context)


def _failing_seed(generator: SketchGenerator, prompt: str, candidates: int = 1) -> int:
    """A base seed whose first `candidates` images all miss the prompt (and carry no artifacts)."""
    from rationalrewards.sketch.scene import score_against_spec
    from rationalrewards.sketch.spec import parse_scene_spec

    def fails(seed: int) -> bool:
        scene = generator.scene_for(prompt, seed)
        return not score_against_spec(scene, parse_scene_spec(prompt)).correct and not scene.artifacts

    return next(s for s in range(200) if all(fails(s + k) for k in range(candidates)))


def test_graph_shape_matches_the_snapshot() -> None:
    drawing = GCRGraph(GCRConfig()).compile().get_graph().draw_mermaid()
    assert drawing == SNAPSHOT.read_text()


async def test_paper_preset_is_the_published_protocol(generator: SketchGenerator) -> None:
    prompt = "a photo of a laptop left of a cow"
    seed = _failing_seed(generator, prompt)
    out = await _run(GCRConfig.preset("paper"), _context(generator), {"prompt": prompt, "seed": seed})
    first, second = out["rounds"]
    assert first["scored"] and not second["scored"]  # one critique; the refined image is not re-scored
    assert out["critique_calls"] == 1 and out["generations"] == 2
    assert second["prompt"] != prompt and "left side of the image" in second["prompt"]
    assert out["best"]["key"] == "r1c0" and out["best"]["reward"] is None  # the refined image is the output
    assert out["stop_reason"] == "max_rounds"
    seeds = {load_scene(ImageRef.model_validate(out["best"]["image"])).seed, seed}
    assert seeds == {seed}  # regenerated with the same seed


async def test_paper_preset_stops_when_every_aspect_passes(generator: SketchGenerator) -> None:
    prompt = "a photo of a cat"
    seed = next(s for s in range(50) if not generator.scene_for(prompt, s).artifacts)
    out = await _run(GCRConfig.preset("paper"), _context(generator), {"prompt": prompt, "seed": seed})
    assert out["stop_reason"] == "passed" and len(out["rounds"]) == 1 and out["generations"] == 1


async def test_deep_preset_fans_out_rescores_and_keeps_the_best(generator: SketchGenerator) -> None:
    prompt = "a photo of a purple suitcase and an orange pizza"
    out = await _run(GCRConfig.preset("deep", threshold=4.0), _context(generator), {"prompt": prompt, "seed": 3})
    assert all(len(r["candidates"]) == 4 for r in out["rounds"])
    rewards = [c["reward"] for c in out.get("critiques", {}).values()] if "critiques" in out else None
    assert rewards is None  # output schema: history is in rounds, not raw channels
    best_round_rewards = [r["reward"] for r in out["rounds"] if r["reward"] is not None]
    assert out["best"]["reward"] == max(best_round_rewards)
    assert out["critique_calls"] == 4 * len(out["rounds"])
    assert out["stop_reason"] in ("passed", "plateau", "max_rounds")


async def test_an_abstaining_critic_never_crashes_a_thread(generator: SketchGenerator) -> None:
    calls = []

    def always_abstain(request: CritiqueRequest) -> Abstention:
        calls.append(request)
        return Abstention(reason="parse_error", raw_text="garbled")

    config = GCRConfig.preset("deep", max_rounds=3, candidates=2, critique_retries=2)
    out = await _run(
        config, _context(generator, critic=FunctionRewardModel(always_abstain)), {"prompt": "a photo of a cat"}
    )
    assert out["stop_reason"] == "critic_abstained"
    assert len(calls) == 2 * 3 and out["rounds"][0]["abstentions"] == 2
    assert out["best"] is not None and out["best"]["reward"] is None  # keeps the image it has


async def test_a_critic_that_abstains_once_is_asked_again(generator: SketchGenerator) -> None:
    oracle = SketchOracle()
    seen: list[str] = []

    def flaky(request: CritiqueRequest) -> Any:
        seen.append(request.image.sha256)
        if len(seen) == 1:
            return Abstention(reason="timeout")
        return oracle.critique_one(request)

    out = await _run(
        GCRConfig.preset("paper"),
        _context(generator, critic=FunctionRewardModel(flaky)),
        {"prompt": "a photo of a cat"},
    )
    assert len(seen) == 2 and out["rounds"][0]["scored"]


def _critique(refined: str = "", summary: str = "") -> Critique:
    assessments = {
        a: AspectAssessment(score=None if a is Aspect.text_rendering else 2.0, justification="j")
        for a in Task.t2i.aspects
    }
    return Critique(task=Task.t2i, assessments=assessments, refined_request=refined, summary=summary)


async def test_critic_refiner_falls_back_to_the_previous_prompt() -> None:
    history = RefineHistory(
        original_prompt="a cat", rounds=(RoundMemory(prompt="a cat", critique=_critique(""), reward=0.3),)
    )
    assert await CriticRefiner().refine(history) == "a cat"
    history = RefineHistory(
        original_prompt="a cat",
        rounds=(RoundMemory(prompt="a cat", critique=_critique("exactly one cat"), reward=0.3),),
    )
    assert await CriticRefiner().refine(history) == "exactly one cat"


async def test_llm_refiner_reads_the_whole_history(generator: SketchGenerator) -> None:
    seen: list[str] = []

    def llm(messages: list[dict[str, Any]]) -> str:
        seen.append(messages[0]["content"][0]["text"])
        return "Sure.\nRefined prompt: exactly four clocks in a row, each fully visible"

    refiner = LLMRefiner(FunctionRewardModel(lambda r: {}, complete=llm))
    config = GCRConfig.preset("deep", max_rounds=3, candidates=1, threshold=4.0, plateau_rounds=0)
    out = await _run(config, _context(generator, refiner=refiner), {"prompt": "a photo of four clocks", "seed": 1})
    if len(out["rounds"]) > 1:
        assert out["rounds"][1]["prompt"] == "exactly four clocks in a row, each fully visible"
        assert "Attempt 1" in seen[0] and "Do not repeat a fix that already failed" in seen[0]
    if len(out["rounds"]) > 2:
        assert "Attempt 2" in seen[1]


async def test_llm_refiner_over_an_openai_compatible_server(port: int) -> None:
    from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
    from rationalrewards.rewardmodel.mock_server import Fault, MockServer

    with MockServer(port) as server:
        server.state.script.append(Fault(text="Refined prompt: a single red apple on the left side of the image"))
        refiner = LLMRefiner(OpenAICompatibleRewardModel(server.base_url, "mock-critic"))
        history = RefineHistory(
            original_prompt="an apple",
            rounds=(RoundMemory(prompt="an apple", critique=_critique(summary="wrong colour"), reward=0.2),),
        )
        assert await refiner.refine(history) == "a single red apple on the left side of the image"
        assert "wrong colour" in server.state.requests[-1]["messages"][0]["content"][0]["text"]


@pytest.mark.parametrize("candidates", [1, 2], ids=["edge-to-generate", "send-per-call"])
async def test_human_in_the_loop_interrupt_and_resume(generator: SketchGenerator, candidates: int) -> None:
    prompt = "a photo of a laptop left of a cow"
    seed = _failing_seed(generator, prompt, candidates)
    gcr = GCRGraph(GCRConfig.preset("paper", human_in_the_loop=True, candidates=candidates))
    assert gcr.single_call is (candidates == 1)
    graph = gcr.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "hitl"}}
    context = _context(generator)
    await graph.ainvoke({"prompt": prompt, "seed": seed}, config, context=context)
    snapshot = await graph.aget_state(config)
    [interrupt] = [i for t in snapshot.tasks for i in t.interrupts]
    assert "left side of the image" in interrupt.value["proposed_prompt"]
    out = await graph.ainvoke(
        Command(resume="a laptop on the far left, a cow on the far right"), config, context=context
    )
    assert out["rounds"][1]["prompt"] == "a laptop on the far left, a cow on the far right"
    assert out["generations"] == 2 * candidates and len(out["rounds"][1]["candidates"]) == candidates


async def test_editing_runs_through_the_loop(generator: SketchGenerator) -> None:
    source = generator.generate_one("a photo of a cat and a dog", 2)
    out = await _run(
        GCRConfig.preset("deep", max_rounds=2, candidates=2),
        _context(generator),
        {"prompt": "make the cat blue", "source_image": source.image.model_dump(mode="json"), "seed": 0},
    )
    assert out["task"] == "edit"
    critique = critique_of(out["best"])
    assert critique is not None and critique.task is Task.edit and "image_faithfulness" in critique.scores


async def test_generation_cache_skips_regeneration(generator: SketchGenerator, tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path / "cache")
    calls: list[int] = []
    original = generator.generate

    async def counting(prompts: Any, seeds: Any, sources: Any = None) -> Any:
        calls.append(len(prompts))
        return await original(prompts, seeds, sources)

    generator.generate = counting  # type: ignore[method-assign]
    context = _context(generator, cache=cache)
    first = await _run(GCRConfig.preset("paper"), context, {"prompt": "a photo of two dogs", "seed": 4}, thread="a")
    made = len(calls)
    again = await _run(GCRConfig.preset("paper"), context, {"prompt": "a photo of two dogs", "seed": 4}, thread="b")
    assert made >= 1 and len(calls) == made and cache.hits >= 1  # the second thread generated nothing
    assert again["generations"] == first["generations"]  # cached images count as a clean run counts them
    assert again["best"]["image"] == first["best"]["image"]


async def test_backends_are_required_never_defaulted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rationalrewards.graphs.dev import make_gcr_graph
    from rationalrewards.graphs.gcr import MissingBackendsError

    with pytest.raises(TypeError):
        GCRContext(generator=SketchGenerator(tmp_path))  # type: ignore[call-arg]
    with pytest.raises(MissingBackendsError, match="context=GCRContext"):
        await build_gcr_graph(GCRConfig()).ainvoke({"prompt": "a photo of two dogs"})
    monkeypatch.setenv(
        "RATIONALREWARDS_HOME", str(tmp_path)
    )  # the langgraph.json entry binds the sketch world explicitly
    out = await make_gcr_graph().ainvoke({"prompt": "a photo of two dogs"})
    assert out["best"]["image"]["uri"].startswith(str(tmp_path))


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_rounds"):
        GCRConfig(max_rounds=0)
    with pytest.raises(ValueError, match="keep_best needs rescore"):
        GCRConfig(keep_best=True)
    with pytest.raises(ValueError, match="unknown preset"):
        GCRConfig.preset("fast")  # type: ignore[arg-type]


async def test_critic_tool_and_node_factory(generator: SketchGenerator) -> None:
    made = generator.generate_one("a photo of four clocks", 1)
    tool = critique_image_tool(SketchOracle())
    assert tool.name == "critique_image" and "image" in tool.args
    result = await tool.ainvoke({"image": made.image.uri, "prompt": "a photo of four clocks"})
    assert result["kind"] == "critique" and set(result["scores"]) == {
        "text_faithfulness",
        "physical_quality",
        "text_rendering",
    }
    assert tool.invoke({"image": made.image.uri, "prompt": "a photo of four clocks"}) == result
    node = make_critic_node(SketchOracle(), output_key="review")
    update = await node({"image": made.image.model_dump(mode="json"), "prompt": "a photo of four clocks"})
    assert update["review"] == result


async def test_example_planner_workflow_uses_the_critic_tool() -> None:
    import importlib.util

    path = ROOT_EXAMPLES / "planner_with_critic.py"
    spec = importlib.util.spec_from_file_location("planner_example", path)
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules["planner_example"] = module  # LangGraph resolves the state's annotations through sys.modules
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    final = await module.main("a photo of three red apples left of a blue cup")
    assert final["log"][0].startswith("planner:") and any(line.startswith("critic:") for line in final["log"])
    assert final["tries"] >= 1


def test_perfect_world_has_nothing_to_refine(tmp_path: Path) -> None:
    perfect = SketchGenerator(tmp_path, failures=FailureModel.perfect())
    out = asyncio.run(
        _run(GCRConfig.preset("paper"), _context(perfect), {"prompt": "a photo of a laptop left of a cow"})
    )
    assert out["stop_reason"] == "passed"


@pytest.mark.slow
async def test_diffusers_pipeline_as_the_generator(tmp_path: Path) -> None:
    """A tiny Stable-Diffusion pipeline built from config: its images are noise, so this checks loop mechanics."""
    from rationalrewards.agents.diffusers_generator import DiffusersGenerator, save_tiny_sd_pipeline
    from rationalrewards.rewardmodel.testing import FakeRewardModel

    pipeline = save_tiny_sd_pipeline(tmp_path / "tiny-sd")
    generator = DiffusersGenerator(pipeline, tmp_path / "images", steps=2, size=32)
    context = GCRContext(generator=generator, critic=FakeRewardModel(), refiner=CriticRefiner())
    out = await _run(
        GCRConfig.preset("deep", max_rounds=2, candidates=2, threshold=4.0),
        context,
        {"prompt": "a photo of two dogs", "seed": 5},
    )
    assert out["generations"] == 2 * len(out["rounds"])
    for record in out["rounds"]:
        assert len(record["candidates"]) == 2
    image = ImageRef.model_validate(out["best"]["image"])
    assert Path(image.uri) == content_path(tmp_path / "images", image.sha256)  # fanned out by the digest
    assert (image.width, image.height) == (32, 32)
    again = await generator.generate(["a photo of two dogs"], [5])
    first = await generator.generate(["a photo of two dogs"], [5])
    assert again[0].image.sha256 == first[0].image.sha256  # seeded: same prompt and seed, same image
    source = again[0].image
    with pytest.raises(Exception, match="cannot edit"):
        await generator.generate(["make it blue"], [0], [source])


async def test_batched_fan_out_follows_the_generator(generator: SketchGenerator, tmp_path: Path) -> None:
    from rationalrewards.graphs.trace import Tracer, read_trace

    calls: list[int] = []
    original = generator.generate

    async def counting(prompts: Any, seeds: Any, sources: Any = None) -> Any:
        calls.append(len(prompts))
        return await original(prompts, seeds, sources)

    generator.generate = counting  # type: ignore[method-assign]
    config = GCRConfig.preset("deep", max_rounds=1, candidates=4, generate_batch=2)
    tracer = Tracer(tmp_path / "trace.jsonl")
    out = await _run(config, _context(generator, tracer=tracer), {"prompt": "a photo of two dogs"})
    assert sorted(calls) == [2, 2] and len(out["rounds"][0]["candidates"]) == 4
    assert sorted(e["candidate"] for e in read_trace(tmp_path / "trace.jsonl") if e["node"] == "generate") == [
        0,
        1,
        2,
        3,
    ]
    assert GCRConfig.preset("deep").for_generator(generator).generate_batch == generator.batch_size
    assert GCRConfig.preset("deep", generate_batch=3).for_generator(generator).generate_batch == 3
