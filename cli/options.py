"""CLI flags generated from config dataclasses, the way trl's parser builds them: one dataclass holds each knob's
type, default and help (`field(metadata={"help": ...})`), and the command line is derived from it, so the two never
drift apart. Field metadata:

- `help`: the flag's help text;
- `flag`: the flag's name when it is not `--field-name` (e.g. `--model` for `critic_model`);
- `cli_default`: the default on the command line when the dataclass has none (e.g. an output directory); a field with
  neither is a required flag;
- `cli: False`: not a flag (set by the command itself, e.g. the rows a suite file is read into);
- `argument: True`: a positional argument instead of a flag;
- `repeat: True`: a string flag that may be given several times (`--critic URL --critic URL`); the values reach the
  job joined by commas, which is how one spec names several servers.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Optional, Union

import typer


def _typer_type(annotation: Any) -> Any:
    """`X | None` as typer reads it (`Optional[X]`); everything else as it is."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return Optional[args[0]]  # typer reads this spelling of an optional option
    return annotation


_REPEATED = "repeated: joined by commas"  # a marker in the flag's annotation (typer reads only its own metadata)


def options_from(cls: type) -> list[inspect.Parameter]:
    """One keyword parameter per CLI field of the dataclass `cls`, annotated with its `typer.Option`."""
    hints = typing.get_type_hints(cls)
    params = []
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if meta.get("cli") is False:
            continue
        if "cli_default" in meta:
            default = meta["cli_default"]
        elif field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = ...  # a required flag
        flag = meta.get("flag", "--" + field.name.replace("_", "-"))
        annotation = _typer_type(hints[field.name])
        if meta.get("argument"):
            option = typer.Argument(metavar=field.name.upper(), help=meta.get("help", ""))
        elif meta.get("repeat"):
            option = typer.Option(flag, help=meta.get("help", "") + " Repeat for several.", metavar="SPEC")
            annotation, default = list[str], [default] if isinstance(default, str) else default
        else:
            option = typer.Option(flag, help=meta.get("help", ""))
        params.append(
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[annotation, option, _REPEATED]
                if meta.get("repeat")
                else Annotated[annotation, option],
            )
        )
    return params


def command(
    app: typer.Typer,
    name: str,
    body: Callable[..., Any],
    params: Sequence[inspect.Parameter],
    doc: str,
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> None:
    """Register `body(**flags)` as command `name`, its flags given by `params` (typer reads `__signature__`)."""

    repeated = {p.name for p in params if _REPEATED in getattr(p.annotation, "__metadata__", ())}

    def run(**kwargs: Any) -> Any:
        for name in repeated & kwargs.keys():
            kwargs[name] = ",".join(kwargs[name]) if kwargs[name] else None
        return body(**kwargs)

    run.__signature__ = inspect.Signature(list(params))  # type: ignore[attr-defined]  # functions take it; typeshed says no
    run.__doc__ = doc
    run.__name__ = run.__qualname__ = name.replace("-", "_")
    app.command(name)(wrap(run))
