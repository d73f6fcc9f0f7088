"""The sketch world: a deterministic procedural world (generator, oracle critic and teacher, ground truth) in which
the whole method runs on a CPU with no downloaded weights. See docs/sketch_world.md."""

from rationalrewards.sketch.spec import (
    ObjectSpec,
    SceneSpec,
    SceneSpecError,
    parse_scene_spec,
    read_prompt,
    render_prompt,
)

__all__ = ["ObjectSpec", "SceneSpec", "SceneSpecError", "parse_scene_spec", "read_prompt", "render_prompt"]
