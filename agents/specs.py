"""Backend specs: what `--critic`, `--teacher`, `--generator`, `--refiner` and `--grader` take, parsed once.

A spec string becomes one typed value here, and everything after reads the value: the factory builds backends from
it, run manifests and reports record `spec.text`, telemetry tags spans with it. `text` never holds a credential: a
password in a URL (`http://user:pw@host/v1`) is taken out into a `Secret` on parsing, so it cannot reach a manifest,
a log line or a span by way of the spec.

Forms (the role decides which are allowed):
- a world's backend: `sketch`, `sketch-pixels`, `sketch-flow` (`agents/world.py`);
- `http(s)://HOST[:PORT][/PATH]`, or several joined by commas (one server per GPU);
- `ray:<world spec|DIR>`: Ray actor replicas of an in-process backend;
- a local directory (a model or a diffusers pipeline);
- `py:package.module:function` (critics and generators): a Python function (of the request; of the prompt and seed);
- `fake` (critics): deterministic, for trying the tools;
- refiners: `critic` (the critique's refined request) or `llm:<URL|DIR>`; graders: `auto` or `none`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rationalrewards.agents.world import WorldRole, split_world_spec, world_named, world_specs
from rationalrewards.plumbing.http import base_urls
from rationalrewards.plumbing.redact import Secret

Role = Literal["critic", "teacher", "generator", "refiner", "grader"]


@dataclass(frozen=True)
class WorldBackend:
    world: str
    variant: str = ""

    @property
    def text(self) -> str:
        return self.world if not self.variant else f"{self.world}-{self.variant}"


@dataclass(frozen=True)
class HttpBackend:
    """One or several equivalent servers. `urls` are normalised API roots without credentials; `credentials` is the
    `user:password` a URL carried (sent as HTTP Basic auth), if any."""

    urls: tuple[str, ...]
    credentials: Secret | None = field(default=None, compare=False)

    @property
    def text(self) -> str:
        return ",".join(self.urls)


@dataclass(frozen=True)
class LocalBackend:
    path: Path

    @property
    def text(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class PythonBackend:
    module: str
    function: str

    @property
    def text(self) -> str:
        return f"py:{self.module}:{self.function}"


@dataclass(frozen=True)
class FakeBackend:
    text: str = "fake"


@dataclass(frozen=True)
class RayBackend:
    """Ray actor replicas of an in-process backend (never of a server or of another pool)."""

    inner: WorldBackend | LocalBackend | FakeBackend | PythonBackend

    @property
    def text(self) -> str:
        return f"ray:{self.inner.text}"


@dataclass(frozen=True)
class CritiqueRefiner:
    """The critique's own refined request (the paper's refiner)."""

    text: str = "critic"


@dataclass(frozen=True)
class LLMRefinerBackend:
    inner: HttpBackend | LocalBackend

    @property
    def text(self) -> str:
        return f"llm:{self.inner.text}"


@dataclass(frozen=True)
class AutoGrader:
    """The generator's world's grader when the generator is a world's, none otherwise."""

    text: str = "auto"


@dataclass(frozen=True)
class NoGrader:
    text: str = "none"


CriticSpec = WorldBackend | HttpBackend | LocalBackend | RayBackend | PythonBackend | FakeBackend
GeneratorSpec = WorldBackend | HttpBackend | LocalBackend | RayBackend | PythonBackend
RefinerSpec = CritiqueRefiner | LLMRefinerBackend
GraderSpec = WorldBackend | AutoGrader | NoGrader
BackendSpec = CriticSpec | GeneratorSpec | RefinerSpec | GraderSpec


def _world_role(role: Role) -> WorldRole:
    return "critic" if role == "teacher" else role  # type: ignore[return-value]  # refiner never reaches here


def _expected(role: Role) -> str:
    worlds = " or ".join(repr(name) for name in world_specs(_world_role(role))) if role != "refiner" else ""
    forms = {
        "critic": f"{worlds}, 'fake', an http(s):// URL of an OpenAI-compatible server, a local model directory, "
        "ray:<spec> or py:package.module:function",
        "teacher": f"{worlds}, an http(s):// URL of an OpenAI-compatible server, or a local model directory",
        "generator": f"{worlds}, a local diffusers pipeline directory, an http(s):// URL of an OpenAI Images API "
        "server, ray:<spec> or py:package.module:function",
        "refiner": "'critic', 'llm:<http(s) URL>' or 'llm:<local model dir>'",
        "grader": f"'auto', 'none' or {worlds}",
    }
    return forms[role]


def _http(parts: Sequence[str]) -> HttpBackend:
    urls, credentials = base_urls(parts)
    return HttpBackend(urls=tuple(urls), credentials=credentials)


def _split(text: str | Sequence[str]) -> list[str]:
    items = [text] if isinstance(text, str) else list(text)
    return [piece.strip() for item in items for piece in str(item).split(",") if piece.strip()]


def parse_spec(text: str | Sequence[str], role: Role) -> BackendSpec:
    """The typed spec of `text` for `role` (a list, or commas, name several HTTP servers). A ValueError names the
    forms the role accepts; the message never repeats a credential."""
    parts = _split(text)
    if not parts:
        raise ValueError(f"no {role} given: use {_expected(role)}")
    if all(p.startswith(("http://", "https://")) for p in parts):
        if role == "grader":
            raise ValueError(f"a grader is {_expected(role)}, not a URL")
        try:
            return _http(parts)
        except ValueError as e:
            raise ValueError(f"bad {role} URL: {e}") from None
    if len(parts) > 1:
        raise ValueError(f"only http(s):// {role}s may be joined by commas (one server per GPU)")
    single = parts[0]
    if role == "refiner":
        return _refiner(single)
    if role == "grader" and single in ("auto", "none"):
        return AutoGrader() if single == "auto" else NoGrader()
    world = split_world_spec(single)
    if world is not None:
        name, variant = world
        if variant not in world_named(name).variants(_world_role(role)):
            raise ValueError(f"unknown {role} {single!r}: use {_expected(role)}")
        return WorldBackend(name, variant)
    if role == "grader":
        raise ValueError(f"unknown grader {single!r}: use {_expected(role)}")
    if single.startswith("ray:") and role in ("critic", "generator"):
        inner = parse_spec(single[4:], role)
        if not isinstance(inner, WorldBackend | LocalBackend | FakeBackend | PythonBackend):
            raise ValueError(f"ray: runs replicas of an in-process backend, not of {single[4:]!r}")
        return RayBackend(inner)
    if single == "fake" and role == "critic":
        return FakeBackend()
    if single.startswith("py:") and role in ("critic", "generator"):
        module, _, function = single[3:].partition(":")
        if not module or not function or not all(p.isidentifier() for p in [*module.split("."), function]):
            raise ValueError(f"a Python {role} is written py:package.module:function, got {single!r}")
        return PythonBackend(module, function)
    if Path(single).is_dir():
        return LocalBackend(Path(single))
    raise ValueError(f"unknown {role} {single!r}: use {_expected(role)}")


def _refiner(single: str) -> RefinerSpec:
    if single == "critic":
        return CritiqueRefiner()
    if single.startswith("llm:"):
        target = single[4:]
        if target.startswith(("http://", "https://")):
            return LLMRefinerBackend(_http([target]))
        if Path(target).is_dir():
            return LLMRefinerBackend(LocalBackend(Path(target)))
    raise ValueError(f"unknown refiner {single!r}: use {_expected('refiner')}")


def is_http(spec: BackendSpec) -> bool:
    return isinstance(spec, HttpBackend)


def spec_world(spec: BackendSpec) -> WorldBackend | None:
    """The world backend a spec runs, Ray replicas included (None: not a world's)."""
    if isinstance(spec, RayBackend):
        spec = spec.inner
    return spec if isinstance(spec, WorldBackend) else None


__all__ = [
    "AutoGrader",
    "BackendSpec",
    "CriticSpec",
    "CritiqueRefiner",
    "FakeBackend",
    "GeneratorSpec",
    "GraderSpec",
    "HttpBackend",
    "LLMRefinerBackend",
    "LocalBackend",
    "NoGrader",
    "PythonBackend",
    "RayBackend",
    "RefinerSpec",
    "Role",
    "WorldBackend",
    "is_http",
    "parse_spec",
    "spec_world",
]
