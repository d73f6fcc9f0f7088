"""Composing from Python with the top-level names only (issue 29): a generator from a function, a critic from a
function, the loop with a trace file, a result that says why an image was not re-scored, PARROT over one's own pairs
into SFT rows, and the same functions named on the command line as `py:` specs from the working directory."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import rationalrewards as rr
from helpers import run_cli


def _square(colour: tuple[int, int, int], size: int = 24) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def brightness(request: rr.CritiqueRequest) -> float:
    """A critic from a function: the mean brightness of the image, in [0, 1]."""
    pixels = rr.load_pil(request.image).convert("L")
    return sum(pixels.getdata()) / (255 * pixels.width * pixels.height)


@pytest.mark.parametrize("returns", ["pil", "bytes", "path", "data_url", "async"])
def test_a_generator_from_a_function(tmp_path: Path, returns: str) -> None:
    made_paths: list[Path] = []

    def draw(prompt: str, seed: int) -> object:
        image = _square((seed % 256, 10, 10))
        if returns == "pil":
            return image
        if returns == "bytes":
            return _png(image)
        if returns == "data_url":
            return "data:image/png;base64," + base64.b64encode(_png(image)).decode()
        path = tmp_path / f"scratch-{seed}.png"
        image.save(path)
        made_paths.append(path)
        return path

    async def draw_async(prompt: str, seed: int) -> Image.Image:
        return _square((seed % 256, 10, 10))

    generator = rr.FunctionGenerator(draw_async if returns == "async" else draw, tmp_path / "images")
    [first, second] = asyncio.run(generator.generate(["a", "b"], [5, 6]))
    assert isinstance(first, rr.GeneratedImage) and first.prompt == "a" and first.seed == 5
    for made in (first, second):
        path = Path(made.image.uri)
        assert path.is_relative_to(tmp_path / "images") and path.is_file()  # copied in: the caller's file may go
    assert rr.load_pil(first.image).getpixel((0, 0)) == (5, 10, 10)
    for path in made_paths:
        path.unlink()
    assert rr.load_pil(second.image).getpixel((0, 0)) == (6, 10, 10)


def test_a_function_generator_says_what_it_cannot_do(tmp_path: Path) -> None:
    generator = rr.FunctionGenerator(lambda prompt: _square((0, 0, 0)), tmp_path)
    source = rr.image_ref_from_pil(_square((1, 2, 3)), tmp_path)
    with pytest.raises(ValueError, match="cannot edit"):
        asyncio.run(generator.generate(["x"], [0], [source]))
    broken = rr.FunctionGenerator(lambda prompt, seed: None, tmp_path, name="broken")
    with pytest.raises(ValueError, match="broken returned something that is not an image"):
        asyncio.run(broken.generate(["x"], [0]))
    with pytest.raises(TypeError, match="must take a `prompt`"):
        rr.FunctionGenerator(lambda text: None, tmp_path)


def test_refine_with_your_own_generator_and_critic(tmp_path: Path) -> None:
    """The README's first scenario: brighter each round, because the critic's refined request says so."""

    def draw(prompt: str, seed: int) -> Image.Image:
        level = min(255, 60 + 60 * prompt.count("brighter"))
        return _square((level, level, level))

    def critic(request: rr.CritiqueRequest) -> dict[str, float | None]:
        score = 1 + 3 * brightness(request)
        return {"text_faithfulness": score, "physical_quality": score, "text_rendering": None}

    context = rr.GCRContext(
        rr.FunctionGenerator(draw, tmp_path / "images"),
        rr.FunctionRewardModel(critic),
        refiner=_BrighterRefiner(),
        trace=tmp_path / "trace.jsonl",
    )
    paper = asyncio.run(rr.build_gcr_graph().ainvoke({"prompt": "a grey square"}, context=context))
    best = paper["best"]
    assert best["round"] == 1 and best["reward"] is None  # the paper's protocol: the refined image is not scored
    assert "not re-scored" in best["reward_note"] and "deep" in best["reward_note"]
    deep = rr.GCRConfig.preset("deep", max_rounds=3, candidates=1)
    out = asyncio.run(rr.build_gcr_graph(deep).ainvoke({"prompt": "a grey square"}, context=context))
    rewards = [r["reward"] for r in out["rounds"]]
    assert rewards == sorted(rewards) and rewards[-1] > rewards[0] and out["best"]["reward_note"] == ""
    events = rr.read_trace(tmp_path / "trace.jsonl")
    assert sum(e["node"] == "finish" for e in events) == 2


class _BrighterRefiner:
    name = "brighter"

    async def refine(self, history: Any) -> str:
        return history.last_prompt + ", brighter"


def test_an_edit_takes_its_source_image_as_a_data_url(tmp_path: Path) -> None:
    def recolour(prompt: str, seed: int, source_image: Image.Image | None) -> Image.Image:
        assert source_image is not None
        return source_image.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    source = _square((200, 0, 0))
    data_url = "data:image/png;base64," + base64.b64encode(_png(source)).decode()
    context = rr.GCRContext(rr.FunctionGenerator(recolour, tmp_path), rr.FunctionRewardModel(lambda r: 0.9))
    out = asyncio.run(rr.build_gcr_graph().ainvoke({"prompt": "flip it", "source_image": data_url}, context=context))
    assert out["task"] == "edit" and out["best"]["reward"] == pytest.approx(0.9)


def test_parrot_over_your_own_pairs_into_sft_rows(tmp_path: Path) -> None:
    """Pairs from what a user holds (a PIL image, bytes, a datasets-style record), any label spelling; PARROT's
    graph with a teacher; the SFT rows of the kept pairs."""
    generator = rr.SketchGenerator(tmp_path / "images")
    prompt = "a photo of two cats"
    [good, bad] = asyncio.run(generator.generate([prompt, "a photo of a dog"], [0, 0]))
    good_bytes = Path(good.image.uri).read_bytes()
    pair = rr.PreferencePair.of(prompt, good.image.uri, {"bytes": None, "path": bad.image.uri}, "model_a")
    assert pair.label == "A" and len(pair.pair_id) == 16
    # The same images in other forms (bytes, a PIL image): the same pair, by content.
    assert rr.PreferencePair.of(prompt, good_bytes, Image.open(bad.image.uri), "A").pair_id == pair.pair_id
    with pytest.raises(ValueError, match="label"):
        rr.PreferencePair.of(prompt, good.image.uri, bad.image.uri, "left one")

    teacher = rr.SketchOracle(image_dirs=[tmp_path / "images"])
    out = asyncio.run(rr.build_parrot_graph().ainvoke({"pair": pair.to_json()}, context=rr.ParrotContext(teacher)))
    rows = rr.parrot_sft_rows(pair, out)
    assert out["status"] == "kept" and rows[0]["kind"] == "pairwise" and len(rows) >= 2
    assert rows[0]["messages"][-1]["role"] == "assistant" and rows[0]["images"] == [good.image.uri, bad.image.uri]
    assert "<image>" in rows[0]["messages"][-2]["content"]
    assert json.dumps(rows)  # JSON-ready as they are


def test_py_specs_on_the_command_line_import_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "my_pipeline.py").write_text(
        textwrap.dedent(
            """
            from PIL import Image

            def draw(prompt, seed):
                return Image.new("RGB", (16, 16), (200, 200, 200))

            def score(request):
                return 0.75
            """
        )
    )
    result = run_cli(
        "refine", "a square", "--generator", "py:my_pipeline:draw", "--critic", "py:my_pipeline:score",
        "--out", str(tmp_path / "run"), "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["finished"] == 1 and summary["reward_initial"] == pytest.approx(0.75)
    bad = run_cli("refine", "x", "--generator", "py:my_pipeline:nothing", "--out", str(tmp_path / "r2"), cwd=tmp_path)
    assert bad.returncode == 2 and "no function 'nothing'" in bad.stderr and "Traceback" not in bad.stderr
