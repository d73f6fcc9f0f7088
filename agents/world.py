"""Worlds: places where the whole method runs with ground truth, reached through one small interface.

A world supplies the roles a run needs (a generator, a critic that can also teach PARROT, a grader), the data a run
reads (prompt suites and labelled preference pairs), and a few hooks that let its own data pass through generic code
(how a text student perceives its images, the pipeline classes it ships, the ground truth an image carries). The rest
of the project reaches a world only through `World` and `world_named`: the factory, the jobs and the command line name
no world module. The sketch world (`sketch/`) is the embedded one; a second world is a class implementing `World`,
registered under the entry-point group `rationalrewards.worlds` (or with `register_world`), and every `--critic`,
`--generator`, `--grader` and `--world` flag takes its name at once.

Spec names: a world's name (`sketch`) is its default variant for every role; `<world>-<variant>` names another one
(`sketch-pixels`: the critic and grader that read pixels; `sketch-flow`: the shipped 32-pixel generator).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import typer

    from rationalrewards.agents.generator import ImageGenerator
    from rationalrewards.agents.grading import Grader
    from rationalrewards.rewardmodel.backends.base import RewardModel

WorldRole = Literal["critic", "generator", "grader"]
SuiteKind = Literal["t2i", "paraphrase", "edit", "demo"]
ENTRY_POINT_GROUP = "rationalrewards.worlds"
_BUILT_IN = {"sketch": "rationalrewards.sketch.world:SketchWorld"}


@runtime_checkable
class World(Protocol):
    """What a world offers the rest of the project."""

    name: str

    def variants(self, role: WorldRole) -> Mapping[str, str]:
        """The variants of `role` this world has, each with a one-line description; `""` is the default one."""
        ...

    def generator(
        self, out_dir: Path, *, variant: str = "", size: int = 256, device: str = "cpu"
    ) -> ImageGenerator: ...

    def critic(self, *, variant: str = "", **knobs: object) -> RewardModel:
        """A critic of this world's images; it is also a PARROT teacher. `knobs` are the world's own (noise, seed,
        where its images live)."""
        ...

    def grader(self, *, variant: str = "") -> Grader: ...

    def suite(self, kind: SuiteKind, n: int, *, seed: int = 0) -> list[dict[str, object]]:
        """Prompt rows (`prompt`, and the world's ground-truth fields) of `kind`; `demo` ignores `n` and `seed`."""
        ...

    def pairs(self, out_dir: Path, n: int, *, seed: int, label_noise: float) -> Path:
        """`n` preference pairs with ground-truth labels, written as JSONL under `out_dir` (image paths relative)."""
        ...

    def text_perception(self, noise: float) -> Callable[[str], str]:
        """What a text student reads in place of one of this world's images (an image path -> text)."""
        ...

    def declared_perception(self, model_dir: Path) -> Callable[[str], str] | None:
        """The perception a trained text student declares in its directory (None: the directory declares none)."""
        ...

    def pipeline_classes(self) -> Mapping[str, Callable[[], type]]:
        """Pipeline classes this world ships, by the `_class_name` of their `model_index.json`."""
        ...

    def ground_truth_of(self, image: Path) -> str | None:
        """The ground truth an image of this world carries beside it (a sidecar), as text to send along with it."""
        ...

    def attach_ground_truth(self, image: Path, text: str | Mapping[str, object], digest: str) -> Path:
        """Write ground truth received with an image beside it; ValueError if it is not this world's, or describes
        another image than the bytes whose sha256 is `digest` (it is checked, never re-stamped)."""
        ...

    def audit_parrot(self, out_dir: Path) -> dict[str, object]:
        """PARROT's kept rationales checked against ground truth."""
        ...

    def commands(self) -> typer.Typer | None:
        """The world's own commands, mounted as `rationalrewards <name> ...` (None: it has none)."""
        ...


_loaded: dict[str, World] = {}


def register_world(name: str, target: str | World) -> None:
    """Make a world available under `name`: an instance, or `"package.module:Class"` loaded on first use."""
    if not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"a world's name is lower-case letters, digits and underscores, got {name!r}")
    if isinstance(target, str):
        _registry()[name] = target
        _loaded.pop(name, None)
    else:
        _loaded[name] = target


def _registry() -> dict[str, str]:
    global _targets
    if _targets is None:
        _targets = dict(_BUILT_IN)
        for point in entry_points(group=ENTRY_POINT_GROUP):
            _targets.setdefault(point.name, point.value)
    return _targets


_targets: dict[str, str] | None = None


def world_names() -> list[str]:
    return sorted(set(_registry()) | set(_loaded))


def world_named(name: str) -> World:
    """The world registered as `name` (a ValueError naming the known ones otherwise)."""
    if name in _loaded:
        return _loaded[name]
    target = _registry().get(name)
    if target is None:
        raise ValueError(f"unknown world {name!r}; known: {', '.join(world_names())}")
    module_name, _, attribute = target.partition(":")
    world = getattr(importlib.import_module(module_name), attribute)()
    if not isinstance(world, World):
        raise TypeError(f"{target} does not implement the World interface")
    _loaded[name] = world
    return world


def split_world_spec(text: str) -> tuple[str, str] | None:
    """`sketch` -> ("sketch", ""), `sketch-pixels` -> ("sketch", "pixels"); None when no known world is named."""
    name, _, variant = text.partition("-")
    if name not in world_names():
        return None
    return name, variant


def world_specs(role: WorldRole) -> list[str]:
    """Every spec name that selects a world's backend for `role` (for help texts and error messages)."""
    names: list[str] = []
    for name in world_names():
        for variant in world_named(name).variants(role):
            names.append(name if not variant else f"{name}-{variant}")
    return names


def pipeline_class(class_name: str) -> type | None:
    """A pipeline class some world ships, by the `_class_name` its `model_index.json` names (None: not a world's)."""
    for name in world_names():
        loader = world_named(name).pipeline_classes().get(class_name)
        if loader is not None:
            return loader()
    return None


def ground_truth_of(image: Path) -> str | None:
    """The ground truth any world finds beside `image` (sent along with an image to another process)."""
    for name in world_names():
        text = world_named(name).ground_truth_of(image)
        if text is not None:
            return text
    return None


def attach_ground_truth(image: Path, text: str | Mapping[str, object], digest: str) -> Path:
    """Ground truth received with an image, written beside it by the world that reads it (ValueError: none does)."""
    reasons = []
    for name in world_names():
        try:
            return world_named(name).attach_ground_truth(image, text, digest)
        except ValueError as e:
            reasons.append(f"{name}: {e}")
    raise ValueError("no world reads the ground truth sent with the image (" + "; ".join(reasons) + ")")


__all__: Sequence[str] = [
    "World",
    "WorldRole",
    "attach_ground_truth",
    "ground_truth_of",
    "pipeline_class",
    "register_world",
    "split_world_spec",
    "world_named",
    "world_names",
    "world_specs",
]
