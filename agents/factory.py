"""One place that turns a CLI/config spec into a reward-model backend (and the only one that picks real libraries).

Specs: `sketch` (the sketch world's oracle: judges sketch images from their scene-graph sidecars), `fake`
(deterministic, for trying the tools), an `http(s)://` URL of an OpenAI-compatible server (vLLM, SGLang,
`transformers serve`, a hosted API; the key comes from $RATIONALREWARDS_API_KEY), or a local model directory
(in-process transformers), or `py:package.module:function` (a Python function of the request, wrapped as a
`FunctionRewardModel`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rationalrewards.rewardmodel.backends.base import RewardModel, Teacher

API_KEY_ENV = "RATIONALREWARDS_API_KEY"


def reward_model_from_spec(
    spec: str, *, model: str | None = None, prompts: str = "auto", max_tokens: int | None = None, **options: Any
) -> RewardModel:
    """`prompts` (house, release or auto) and `max_tokens` (default: the release's 20480) reach the backends that
    write prompts and generate text (HTTP and local models); the sketch oracle, `fake` and Python critics read typed
    requests, so for them both only need to be valid."""
    check_prompts_choice(prompts)
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    text_options = {"prompts": prompts} | ({} if max_tokens is None else {"max_tokens": max_tokens})
    if spec == "sketch":
        from rationalrewards.agents.sketch.oracle import (
            SketchOracle,  # the embedded world's privileged critic (needs sidecars)
        )

        return SketchOracle(**options)
    if spec == "sketch-pixels":
        from rationalrewards.agents.sketch.pixels import PixelCritic  # reads pixels: any image, no sidecar

        return PixelCritic(**options)
    if spec.startswith("ray:"):
        from rationalrewards.agents.ray_pool import RayRewardModel

        replicas, device = int(options.pop("replicas", 1)), str(options.pop("device", "cpu"))
        inner = {"model": model, "prompts": prompts, "max_tokens": max_tokens} | options
        return RayRewardModel(spec[4:], replicas=replicas, device=device, **inner)  # type: ignore[return-value]  # a RewardModel by duck typing
    if spec == "fake":
        from rationalrewards.rewardmodel.testing import FakeRewardModel

        return FakeRewardModel()
    if spec.startswith(("http://", "https://")):
        from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel

        return OpenAICompatibleRewardModel(spec, model, api_key=os.environ.get(API_KEY_ENV), **(text_options | options))
    if spec.startswith("py:"):
        from rationalrewards.rewardmodel.testing import FunctionRewardModel

        return FunctionRewardModel(_python_function(spec), name=spec)
    if Path(spec).is_dir():
        from rationalrewards.agents.sketch.transcript import declared_perception
        from rationalrewards.rewardmodel.backends.local import TransformersRewardModel

        local: dict[str, Any] = {"prompts": prompts} | ({} if max_tokens is None else {"max_new_tokens": max_tokens})
        perception = declared_perception(spec)  # a text student reads sketch images as transcripts, as it was trained
        if perception is not None:
            local["describe_image"] = perception
        return TransformersRewardModel(spec, **(local | options))
    raise ValueError(
        f"unknown critic {spec!r}: use 'sketch', 'sketch-pixels', 'fake', an http(s):// URL of an OpenAI-compatible server, "
        "a local model directory, or py:package.module:function"
    )


def check_prompts_choice(prompts: str) -> str:
    """`auto`, or one of the prompt profiles (a ValueError naming them otherwise)."""
    from rationalrewards.rewardmodel.prompts import check_profile

    return prompts if prompts == "auto" else check_profile(prompts)


def _python_function(spec: str) -> Any:
    """`py:package.module:function`: a function of a `CritiqueRequest` returning aspect scores, a critique text, a
    `Critique` or an `Abstention` (the way to plug in a scalar reward or a rule of one's own)."""
    import importlib

    target = spec.removeprefix("py:")
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"a Python critic is written py:package.module:function, got {spec!r}")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load the critic function {target!r}: {e}") from e
    if not callable(function):
        raise ValueError(f"{target!r} is not a function")
    return function


def teacher_from_spec(spec: str, *, model: str | None = None, **options: Any) -> Teacher:
    """A PARROT teacher from the same specs as a critic (every backend that generates text can teach)."""
    backend = reward_model_from_spec(spec, model=model, **options)
    if not isinstance(backend, Teacher):
        raise ValueError(
            f"{spec!r} cannot act as PARROT's teacher (it answers no anchored / re-predict / project requests)"
        )
    return backend


def generator_from_spec(
    spec: str,
    out_dir: str | Path,
    *,
    device: str = "cpu",
    size: int = 256,
    lora: str | None = None,
    replicas: int = 1,
) -> Any:
    """`sketch` (the embedded world), a local diffusers pipeline directory (text-to-image or image editing) with an
    optional LoRA, the http(s):// URL of an OpenAI Images API server (several joined by commas: one per GPU), or
    `ray:<sketch|DIR>` with `replicas` Ray actors (one per GPU on CUDA)."""
    if lora is not None and spec == "sketch":
        raise ValueError("--lora needs a diffusers pipeline as --generator; the sketch generator has no weights")
    if spec == "sketch":
        from rationalrewards.agents.sketch.generator import SketchGenerator

        return SketchGenerator(out_dir, size=size)
    if spec.startswith("ray:"):
        if lora is not None:
            raise ValueError("--lora with ray: load the LoRA into the pipeline directory the replicas load")
        from rationalrewards.agents.ray_pool import RayGeneratorPool

        return RayGeneratorPool(spec[4:], out_dir, replicas=replicas, device=device)
    if replicas != 1:
        raise ValueError("--replicas applies to ray: generators and critics")
    if spec.startswith(("http://", "https://")):
        if lora is not None:
            raise ValueError("--lora applies to a local diffusers pipeline; load it into the served pipeline instead")
        from rationalrewards.agents.served_generator import ServedGenerator

        return ServedGenerator(spec, out_dir, api_key=os.environ.get(API_KEY_ENV))
    if Path(spec).is_dir():
        from rationalrewards.agents.diffusers_generator import DiffusersGenerator

        return DiffusersGenerator(spec, out_dir, device=device, lora=lora)
    raise ValueError(
        f"unknown generator {spec!r}: use 'sketch', a local diffusers pipeline directory, or an http(s):// URL of an "
        "OpenAI Images API server"
    )


def grader_from_spec(spec: str, *, generator: str = "sketch") -> Any:
    """`sketch` (scene graphs against GenEval specs), `sketch-pixels` (the scene a pixel reader perceives, for
    32-pixel sketch images from a trained generator), `none`, or `auto`: the sketch grader when the generator is the
    sketch world (its images carry scene graphs), none otherwise."""
    if spec == "auto":
        spec = "sketch" if generator in ("sketch", "ray:sketch") else "none"
    if spec == "none":
        return None
    if spec == "sketch":
        from rationalrewards.agents.sketch.grader import SketchGrader

        return SketchGrader()
    if spec == "sketch-pixels":
        from rationalrewards.agents.sketch.pixels import PixelGrader

        return PixelGrader()
    raise ValueError(f"unknown grader {spec!r}: use 'auto', 'sketch', 'sketch-pixels' or 'none'")


def refiner_from_spec(spec: str, *, model: str | None = None) -> Any:
    """`critic` (the critique's refined request, as in the paper), or an LLM rewriter: `llm:<URL>` for an
    OpenAI-compatible server (with `model`), or `llm:<DIR>` for a local text model."""
    from rationalrewards.agents.refiner import CriticRefiner, LLMRefiner

    if spec == "critic":
        return CriticRefiner()
    if spec.startswith("llm:"):
        target = spec[4:]
        if target.startswith(("http://", "https://")):
            from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel

            return LLMRefiner(
                OpenAICompatibleRewardModel(target, model, api_key=os.environ.get(API_KEY_ENV), max_tokens=256)
            )
        from rationalrewards.rewardmodel.backends.local_llm import TransformersChatModel

        return LLMRefiner(TransformersChatModel(target))
    raise ValueError(f"unknown refiner {spec!r}: use 'critic', 'llm:<http(s) URL>' or 'llm:<local model dir>'")
