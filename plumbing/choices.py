"""Choices as `Literal` types: one check for every knob that takes one of a few names.

`choice(value, Kind, "what")` returns `value` typed as the Literal or raises a ValueError that lists the choices;
`check_choices(config)` applies it to every `Literal` field of a dataclass (call it from `__post_init__`). The CLI
shows the same choices in `--help`, read from the same annotations.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, get_args, get_origin


def literal_values(annotation: object) -> tuple[Any, ...] | None:
    """The values of a `Literal[...]` (also inside `X | None`), or None when the annotation is no Literal."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    if get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in get_args(annotation):
            values = literal_values(arg)
            if values is not None:
                return values
    return None


def choice(value: object, kind: Any, what: str) -> Any:
    """`value` if it is one of the Literal `kind`'s values; else a ValueError naming `what` and the choices. (Typed
    `Any`: a Literal alias is no type a checker can bind here; callers annotate what they keep.)"""
    values = literal_values(kind)
    if values is None:
        raise TypeError(f"{kind!r} is not a Literal type")
    if value not in values:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, values))}")
    return value


def check_choices(config: Any) -> None:
    """Every `Literal` field of the dataclass `config` holds one of its values (None passes where allowed)."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        values = literal_values(hints[field.name])
        value = getattr(config, field.name)
        if values is not None and value is not None and value not in values:
            what = field.name.replace("_", " ")
            raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, values))}")


__all__ = ["check_choices", "choice", "literal_values"]
