"""The one flag system: every command's flags are generated from typed config dataclasses.

A dataclass holds each knob's type, default and help (`field(metadata={"help": ...})`), the way trl's configs do, and
the command line is derived from it, so a flag and its field never drift apart. `Literal` fields become choices that
`--help` lists and the parser enforces; `X | None` is an optional flag; `tuple[X, ...]` and `list[X]` are repeated
flags. Field metadata:

- `help`: the flag's help text;
- `flag`: the flag's name(s) when not `--field-name` (e.g. `--model` for `critic_model`, `--a/--b` for a switch);
- `cli_default`: the default on the command line when the dataclass has none; a field with neither is required;
- `cli: False`: not a flag (set by the command itself);
- `argument: True`: a positional argument instead of a flag;
- `repeat: True`: a string flag given several times (`--critic URL --critic URL`), joined by commas (one spec naming
  several servers).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import typer

_REPEATED = "repeated: joined by commas"  # markers in a flag's annotation (typer reads only its own metadata)
_TUPLE = "a tuple field: the repeated values become a tuple"
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout (logs go to stderr).")]


def _typer_type(annotation: object) -> object:
    """Annotations as typer reads them: `X | None` -> `Optional[X]`, `tuple[X, ...]` -> `list[X]`."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return Optional[_typer_type(args[0])]  # typer reads this spelling of an optional option
    if origin is tuple:
        item, *rest = typing.get_args(annotation)
        if rest == [Ellipsis]:
            return list[item]  # type: ignore[valid-type]  # a runtime-built annotation
    return annotation


def _default(field: dataclasses.Field[Any]) -> object:
    meta = field.metadata
    if "cli_default" in meta:
        return meta["cli_default"]
    if field.default is not dataclasses.MISSING:
        default = field.default
        return list(default) if isinstance(default, tuple) else default
    if field.default_factory is not dataclasses.MISSING:
        made = field.default_factory()
        return list(made) if isinstance(made, tuple) else made
    return ...  # a required flag


def params_from(
    cls: type, *, skip: Sequence[str] = (), defaults: dict[str, object] | None = None
) -> list[inspect.Parameter]:
    """One keyword parameter per CLI field of the dataclass `cls`, annotated with its typer option. `defaults`
    replaces a field's default on the command line (e.g. None: "the algorithm's own")."""
    hints = typing.get_type_hints(cls)
    params = []
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if meta.get("cli") is False or field.name in skip:
            continue
        default = (defaults or {}).get(field.name, _default(field))
        annotation = _typer_type(hints[field.name])
        if default is None and typing.get_origin(annotation) not in (Union, types.UnionType):
            annotation = Optional[annotation]
        named = meta.get("flag", "--" + field.name.replace("_", "-"))
        flags = [named] if isinstance(named, str) else list(named)
        help_text = meta.get("help", "")
        if meta.get("argument"):
            option: Any = typer.Argument(metavar=field.name.upper(), help=help_text, show_default=False)
        elif meta.get("repeat"):
            option = typer.Option(*flags, help=help_text + " Repeat for several.", metavar="SPEC")
            annotation, default = list[str], [default] if isinstance(default, str) else default
        else:
            option = typer.Option(*flags, help=help_text)
        markers = [_REPEATED] if meta.get("repeat") else []
        if typing.get_origin(hints[field.name]) is tuple:
            markers.append(_TUPLE)
        params.append(
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[(annotation, option, *markers)],
            )
        )
    return params


def flag(name: str, annotation: object, default: Any) -> inspect.Parameter:
    """A parameter that is no config field (inputs, output switches)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def json_flag() -> inspect.Parameter:
    return flag("as_json", JsonFlag, False)


def _joined(params: Sequence[inspect.Parameter], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Repeated spec flags joined by commas; the values of a tuple field as a tuple."""
    for param in params:
        if param.name not in kwargs:
            continue
        value = kwargs[param.name]
        markers = getattr(param.annotation, "__metadata__", ())
        if _REPEATED in markers:
            kwargs[param.name] = ",".join(value) if value else None
        elif _TUPLE in markers and isinstance(value, list):
            kwargs[param.name] = tuple(value)
    return kwargs


def command(
    app: typer.Typer,
    name: str,
    body: Callable[..., Any],
    params: Sequence[inspect.Parameter],
    doc: str,
    **settings: Any,
) -> None:
    """Register `body(**flags)` as command `name`, its flags given by `params` (typer reads `__signature__`)."""

    def run(**kwargs: Any) -> object:
        return body(**_joined(params, kwargs))

    run.__signature__ = inspect.Signature(list(params))  # type: ignore[attr-defined]  # functions take it
    run.__doc__ = doc
    run.__name__ = run.__qualname__ = name.replace("-", "_")
    app.command(name, **settings)(run)


def config_command(
    app: typer.Typer,
    name: str,
    configs: Sequence[type],
    handler: Callable[..., None],
    doc: str,
    extra: Sequence[inspect.Parameter] = (),
    *,
    json: bool = True,
) -> None:
    """Register command `name` whose flags are the fields of the config dataclasses `configs` plus `extra` (and
    `--json`): each config is built from its flags (its `__post_init__` checks them) and `handler(*configs, **extra
    flags)` runs."""
    params = [param for config in configs for param in params_from(config)]

    def body(**flags: Any) -> None:
        built = []
        for config in configs:
            names = {f.name for f in dataclasses.fields(config)}
            built.append(config(**{k: flags.pop(k) for k in list(flags) if k in names}))
        handler(*built, **flags)

    command(app, name, body, [*params, *extra, *([json_flag()] if json else [])], doc)


def callback(app: typer.Typer, body: Callable[..., Any], params: Sequence[inspect.Parameter], doc: str) -> None:
    """Register `body(ctx, **flags)` as the callback of a command group (a command that also has subcommands)."""

    def run(ctx: typer.Context, **kwargs: object) -> object:
        return body(ctx, **_joined(params, kwargs))

    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    run.__signature__ = inspect.Signature([context, *params])  # type: ignore[attr-defined]  # functions take it
    run.__doc__ = doc
    app.callback(invoke_without_command=True)(run)


def split(kwargs: dict[str, Any], cls: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the flags that are `cls`'s fields, the rest)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in kwargs.items() if k in names}, {k: v for k, v in kwargs.items() if k not in names}


def existing_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ValueError(f"{what} not found: {path}")
    return path


__all__ = [
    "JsonFlag",
    "callback",
    "command",
    "config_command",
    "existing_file",
    "flag",
    "json_flag",
    "params_from",
    "split",
]
