"""The sketch world behind the `World` interface (`agents/world.py`): the only door the rest of the project uses.

Variants: the critic and grader read scene-graph sidecars by default and pixels as `sketch-pixels`; the generator is
the procedural `SketchGenerator` by default and the shipped 32-pixel flow-matching pipeline as `sketch-flow`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rationalrewards.agents.world import SuiteKind, WorldRole

if TYPE_CHECKING:
    import typer

    from rationalrewards.agents.generator import ImageGenerator
    from rationalrewards.agents.grading import Grader
    from rationalrewards.rewardmodel.backends.base import RewardModel

_VARIANTS: dict[WorldRole, dict[str, str]] = {
    "critic": {
        "": "the privileged oracle: reads an image's scene-graph sidecar and the exact prompt spec",
        "pixels": "reads a 32-pixel sketch image's pixels (text-to-image only; no sidecar needed)",
    },
    "generator": {
        "": "the procedural sketch generator (realistic, seeded failures; every image carries its scene graph)",
        "flow": "the shipped 32-pixel flow-matching pipeline (a diffusers pipeline trained by our code)",
    },
    "grader": {
        "": "scene graphs against the GenEval spec",
        "pixels": "the scene a pixel reader perceives (for 32-pixel images from a trained generator)",
    },
}


def shipped_flow_pipeline() -> Path:
    """The 32-pixel sketch generator that ships with the package (a diffusers pipeline directory)."""
    path = Path(str(files("rationalrewards.sketch") / "weights" / "sketch-flow"))
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(
            f"no shipped sketch generator at {path}; train one with `rationalrewards experiment "
            "train-sketch-generator --out DIR` and pass its pipeline/ directory"
        )
    return path


def _check_variant(role: WorldRole, variant: str) -> None:
    if variant not in _VARIANTS[role]:
        names = ", ".join("sketch" + (f"-{v}" if v else "") for v in _VARIANTS[role])
        raise ValueError(f"the sketch world has no {role} 'sketch-{variant}'; use {names}")


class SketchWorld:
    name = "sketch"

    def variants(self, role: WorldRole) -> Mapping[str, str]:
        return _VARIANTS[role]

    def generator(self, out_dir: Path, *, variant: str = "", size: int = 256, device: str = "cpu") -> ImageGenerator:
        _check_variant("generator", variant)
        if variant == "flow":
            from rationalrewards.agents.diffusers_generator import DiffusersGenerator

            return DiffusersGenerator(shipped_flow_pipeline(), out_dir, device=device)
        from rationalrewards.sketch.generator import SketchGenerator

        return SketchGenerator(out_dir, size=size)

    def critic(self, *, variant: str = "", **knobs: Any) -> RewardModel:
        _check_variant("critic", variant)
        if variant == "pixels":
            from rationalrewards.sketch.pixels import PixelCritic

            return PixelCritic(**knobs)
        from rationalrewards.sketch.oracle import SketchOracle

        return SketchOracle(**knobs)

    def grader(self, *, variant: str = "") -> Grader:
        _check_variant("grader", variant)
        if variant == "pixels":
            from rationalrewards.sketch.pixels import PixelGrader

            return PixelGrader()
        from rationalrewards.sketch.grader import SketchGrader

        return SketchGrader()

    def suite(self, kind: SuiteKind, n: int, *, seed: int = 0) -> list[dict[str, object]]:
        from rationalrewards.sketch.suites import suite_of_kind

        return suite_of_kind(kind, n, seed)

    def pairs(self, out_dir: Path, n: int, *, seed: int, label_noise: float) -> Path:
        from rationalrewards.plumbing.files import atomic_write_jsonl
        from rationalrewards.sketch.generator import SketchGenerator
        from rationalrewards.sketch.pairs import make_preference_pairs
        from rationalrewards.sketch.suites import make_suite

        if n < 1:
            raise ValueError("the number of pairs must be at least 1")
        world = Path(out_dir) / "world"
        prompts = [row["prompt"] for row in make_suite(n, seed=seed)]
        rows = make_preference_pairs(
            prompts, SketchGenerator(world / "images"), seeds_per_prompt=2, label_noise=label_noise, seed=seed
        )
        keys = ("pair_id", "prompt", "image_a", "image_b", "label")
        return atomic_write_jsonl(world / "pairs.jsonl", [{k: row[k] for k in keys} for row in rows])

    def text_perception(self, noise: float) -> Callable[[str], str]:
        from rationalrewards.sketch.transcript import sketch_perception

        return sketch_perception(noise)

    def declared_perception(self, model_dir: Path) -> Callable[[str], str] | None:
        from rationalrewards.sketch.transcript import declared_perception

        return declared_perception(model_dir)

    def pipeline_classes(self) -> Mapping[str, Callable[[], type]]:
        def flow_pipeline() -> type:
            from rationalrewards.sketch.flow import SketchFlowPipeline

            return SketchFlowPipeline

        return {"SketchFlowPipeline": flow_pipeline}

    def ground_truth_of(self, image: Path) -> str | None:
        from rationalrewards.sketch.scene import sidecar_path

        path = sidecar_path(image)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def attach_ground_truth(self, image: Path, text: str | Mapping[str, object], digest: str) -> Path:
        from rationalrewards.sketch.scene import SceneGraph, write_sidecar

        try:
            graph = SceneGraph.model_validate_json(text if isinstance(text, str) else json.dumps(text))
        except ValueError as e:
            raise ValueError(f"the scene graph is not valid ({type(e).__name__})") from e
        if graph.image_sha256 != digest:  # never re-stamped: a scene of another image stays another image's
            raise ValueError("the scene graph describes another image than the one it came with")
        return write_sidecar(graph, image)

    def audit_parrot(self, out_dir: Path) -> dict[str, object]:
        from rationalrewards.sketch.audit import audit_parrot

        return audit_parrot(out_dir)

    def commands(self) -> typer.Typer:
        from rationalrewards.sketch._commands import app

        return app
