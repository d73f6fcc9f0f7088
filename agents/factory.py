"""One place that turns a backend spec into a backend (and the only one that picks real libraries).

Specs are parsed once (`agents/specs.py`); a string given here is parsed on the way in. A world's backends come from
its `World` (`agents/world.py`), never from its modules. HTTP backends read their API key from
$RATIONALREWARDS_API_KEY; a `user:password` in a URL is sent as HTTP Basic auth instead (one or the other).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from pathlib import Path
from typing import Any, cast

from rationalrewards.agents.generator import ImageGenerator
from rationalrewards.agents.grading import Grader
from rationalrewards.agents.refiner import CriticRefiner, LLMRefiner, PromptRefiner
from rationalrewards.agents.specs import (
    AutoGrader,
    BackendSpec,
    CriticSpec,
    CritiqueRefiner,
    FakeBackend,
    GeneratorSpec,
    GraderSpec,
    HttpBackend,
    LocalBackend,
    NoGrader,
    PythonBackend,
    RayBackend,
    RefinerSpec,
    WorldBackend,
    parse_spec,
    spec_world,
)
from rationalrewards.agents.world import world_named
from rationalrewards.rewardmodel.backends.base import RewardModel, Teacher
from rationalrewards.rewardmodel.prompts import PromptChoice, check_prompts_choice

API_KEY_ENV = "RATIONALREWARDS_API_KEY"


def _critic_spec(spec: str | BackendSpec) -> CriticSpec:
    parsed = parse_spec(spec, "critic") if isinstance(spec, str) else spec
    return cast(CriticSpec, parsed)


def _api_key(spec: HttpBackend) -> str | None:
    """The key from the environment, unless the URL brought its own login (the two share one header)."""
    return None if spec.credentials is not None else os.environ.get(API_KEY_ENV)


def reward_model_from_spec(
    spec: str | BackendSpec,
    *,
    model: str | None = None,
    prompts: PromptChoice | str = "auto",
    max_tokens: int | None = None,
    **options: Any,
) -> RewardModel:
    """A critic. `prompts` (house, release, compact or auto) and `max_tokens` (default: the release's 20480) reach the
    backends that write prompts and generate text (HTTP and local models); a world's critic, `fake` and Python
    critics read typed requests, so for them both only need to be valid. `options` go to the backend."""
    samples = int(options.pop("samples", 1))
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if samples > 1:  # self-ensembling: N answers per request, their per-aspect means
        from rationalrewards.rewardmodel.backends.ensemble import SelfEnsemble

        parsed = _critic_spec(spec)
        if (
            isinstance(parsed, WorldBackend) and not parsed.variant
        ):  # a world's critic samples by its seed: N replicas, seeds in turn
            seed = int(options.pop("seed", 0))
            critics = [
                reward_model_from_spec(
                    parsed, model=model, prompts=prompts, max_tokens=max_tokens, seed=seed + i, **options
                )
                for i in range(samples)
            ]
            return cast(RewardModel, SelfEnsemble(critics, samples))
        inner = reward_model_from_spec(parsed, model=model, prompts=prompts, max_tokens=max_tokens, **options)
        return cast(RewardModel, SelfEnsemble([inner], samples))
    prompts = check_prompts_choice(prompts)
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    parsed = _critic_spec(spec)
    if isinstance(parsed, WorldBackend):
        return world_named(parsed.world).critic(variant=parsed.variant, **options)
    if isinstance(parsed, RayBackend):
        from rationalrewards.agents.ray_pool import RayRewardModel

        replicas, device = int(options.pop("replicas", 1)), str(options.pop("device", "cpu"))
        inner_options = {"model": model, "prompts": prompts, "max_tokens": max_tokens} | options
        build = functools.partial(reward_model_from_spec, parsed.inner, **inner_options)
        return cast(RewardModel, RayRewardModel(build, name=parsed.text, replicas=replicas, device=device))
    if isinstance(parsed, FakeBackend):
        from rationalrewards.rewardmodel.testing import FakeRewardModel

        return FakeRewardModel()
    if isinstance(parsed, HttpBackend):
        from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel

        text = {"prompts": prompts} | ({} if max_tokens is None else {"max_tokens": max_tokens})
        return OpenAICompatibleRewardModel(
            list(parsed.urls), model, api_key=_api_key(parsed), credentials=parsed.credentials, **(text | options)
        )
    if isinstance(parsed, PythonBackend):
        from rationalrewards.rewardmodel.backends.function import FunctionRewardModel

        return FunctionRewardModel(python_function(parsed), name=parsed.text)
    return _local_critic(parsed, prompts, max_tokens, options)


def _local_critic(spec: LocalBackend, prompts: str, max_tokens: int | None, options: dict[str, object]) -> RewardModel:
    from rationalrewards.rewardmodel.backends.local import TransformersRewardModel

    local: dict[str, Any] = {"prompts": prompts} | ({} if max_tokens is None else {"max_new_tokens": max_tokens})
    perception = _declared_perception(spec.path)  # a text student reads images as its world's transcripts
    if perception is not None:
        local["describe_image"] = perception
    return TransformersRewardModel(str(spec.path), **(local | options))


def _declared_perception(model_dir: Path) -> object:
    from rationalrewards.agents.world import world_names

    for name in world_names():
        perception = world_named(name).declared_perception(model_dir)
        if perception is not None:
            return perception
    return None


def python_function(spec: PythonBackend, role: str = "critic") -> Any:
    """The function a `py:package.module:function` spec names, imported as `python -m` would: modules in the working
    directory are found."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        function = getattr(importlib.import_module(spec.module), spec.function)
    except ImportError as e:
        raise ValueError(
            f"cannot import the {role} module {spec.module!r} (from {cwd} or the installed packages): {e}"
        ) from e
    except AttributeError as e:
        raise ValueError(f"the module {spec.module!r} has no function {spec.function!r}") from e
    finally:
        if added:
            sys.path.remove(cwd)
    if not callable(function):
        raise ValueError(f"{spec.module}:{spec.function} is not a function")
    return function


def teacher_from_spec(spec: str | BackendSpec, *, model: str | None = None, **options: Any) -> Teacher:
    """A PARROT teacher from the same specs as a critic (every backend that generates text can teach)."""
    parsed = parse_spec(spec, "teacher") if isinstance(spec, str) else spec
    backend = reward_model_from_spec(parsed, model=model, **options)
    if not isinstance(backend, Teacher):
        raise ValueError(
            f"{parsed.text!r} cannot act as PARROT's teacher (it answers no anchored / re-predict / project requests)"
        )
    return backend


def generator_from_spec(
    spec: str | BackendSpec,
    out_dir: str | Path,
    *,
    device: str = "cpu",
    size: int = 256,
    lora: str | None = None,
    replicas: int = 1,
    trust_scenes: bool = False,
) -> ImageGenerator:
    """A world's generator (`sketch`, `sketch-flow`), a local diffusers pipeline directory (text-to-image or image
    editing) with an optional LoRA, OpenAI Images API servers (`trust_scenes`: take the ground truth they send with an
    image), or `ray:<spec>` with `replicas` Ray actors."""
    parsed = cast(GeneratorSpec, parse_spec(spec, "generator") if isinstance(spec, str) else spec)
    out_dir = Path(out_dir)
    if lora is not None and not isinstance(parsed, LocalBackend):
        where = {
            WorldBackend: "the world's generator has no weights to load it into",
            RayBackend: "load the LoRA into the pipeline directory the replicas load",
            HttpBackend: "load it into the served pipeline instead",
            PythonBackend: "load it in your function instead",
        }[type(parsed)]
        raise ValueError(f"--lora needs a local diffusers pipeline as --generator: {where}")
    if replicas != 1 and not isinstance(parsed, RayBackend):
        raise ValueError("--replicas applies to ray: generators and critics")
    if isinstance(parsed, WorldBackend):
        return world_named(parsed.world).generator(out_dir, variant=parsed.variant, size=size, device=device)
    if isinstance(parsed, RayBackend):
        from rationalrewards.agents.ray_pool import RayGeneratorPool

        build = functools.partial(generator_from_spec, parsed.inner, device=device, size=size)
        return RayGeneratorPool(build, out_dir, name=parsed.text, replicas=replicas, device=device)
    if isinstance(parsed, PythonBackend):
        from rationalrewards.agents.function_generator import FunctionGenerator

        return FunctionGenerator(python_function(parsed, "generator"), out_dir, name=parsed.text)
    if isinstance(parsed, HttpBackend):
        from rationalrewards.agents.served_generator import ServedGenerator

        return ServedGenerator(
            list(parsed.urls),
            out_dir,
            api_key=_api_key(parsed),
            credentials=parsed.credentials,
            trust_scenes=trust_scenes,
        )
    from rationalrewards.agents.diffusers_generator import DiffusersGenerator

    return DiffusersGenerator(parsed.path, out_dir, device=device, lora=lora)


def grader_from_spec(spec: str | BackendSpec, *, generator: str | BackendSpec = "sketch") -> Grader | None:
    """A world's grader, `none`, or `auto`: the generator's world's grader when the generator is a world's (its images
    carry their ground truth), none otherwise."""
    parsed = cast(GraderSpec, parse_spec(spec, "grader") if isinstance(spec, str) else spec)
    if isinstance(parsed, NoGrader):
        return None
    if isinstance(parsed, AutoGrader):
        made_by = spec_world(parse_spec(generator, "generator") if isinstance(generator, str) else generator)
        if made_by is None or made_by.variant:  # a world's other generators carry no ground truth beside them
            return None
        return world_named(made_by.world).grader()
    return world_named(parsed.world).grader(variant=parsed.variant)


def refiner_from_spec(spec: str | BackendSpec, *, model: str | None = None) -> PromptRefiner:
    """`critic` (the critique's refined request, as in the paper), or an LLM rewriter: `llm:<URL>` for an
    OpenAI-compatible server (with `model`), or `llm:<DIR>` for a local text model."""
    parsed = cast(RefinerSpec, parse_spec(spec, "refiner") if isinstance(spec, str) else spec)
    if isinstance(parsed, CritiqueRefiner):
        return CriticRefiner()
    inner = parsed.inner
    if isinstance(inner, HttpBackend):
        from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel

        client = OpenAICompatibleRewardModel(
            list(inner.urls), model, api_key=_api_key(inner), credentials=inner.credentials, max_tokens=256
        )
        return LLMRefiner(client)
    from rationalrewards.rewardmodel.backends.local_llm import TransformersChatModel

    return LLMRefiner(TransformersChatModel(str(inner.path)))


__all__ = [
    "API_KEY_ENV",
    "generator_from_spec",
    "grader_from_spec",
    "python_function",
    "refiner_from_spec",
    "reward_model_from_spec",
    "teacher_from_spec",
]
