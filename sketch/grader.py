"""`SketchGrader`: ground truth for sketch images (a `Grader`): the scene-graph sidecar against the row's GenEval spec
(or the spec read from its prompt), and edit success for edits. Images without a sidecar cannot be graded (None)."""

from __future__ import annotations

from rationalrewards.agents.grading import Grade
from rationalrewards.agents.suite import SuiteRow
from rationalrewards.rewardmodel.errors import InvalidImageError
from rationalrewards.rewardmodel.schemas import ImageRef
from rationalrewards.sketch.edits import score_edit
from rationalrewards.sketch.scene import load_scene, score_against_spec
from rationalrewards.sketch.spec import SceneSpec, SceneSpecError, parse_scene_spec


class SketchGrader:
    name = "sketch"

    def grade(self, row: SuiteRow, prompt: str, image: ImageRef, source_image: ImageRef | None) -> Grade | None:
        try:
            scene = load_scene(image)
            source = load_scene(source_image) if source_image is not None else None
        except InvalidImageError:
            return None  # not a sketch image: no ground truth to grade against
        if source is not None:
            result = score_edit(source, scene, prompt)
            return Grade(correct=result.success, tag="edit", errors=tuple(result.errors))
        try:
            spec = SceneSpec.from_geneval(row.geneval()) if row.include is not None else parse_scene_spec(prompt)
        except SceneSpecError:
            return None  # a prompt the sketch world cannot read exactly has no ground truth
        return score_against_spec(scene, spec)
