"""What the commands whose flags come from a config dataclass (`distill`, `rl`) share: help lines from the fields'
metadata, and stdout kept to one JSON object under `--json`."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from typing import Any


def fields_help(
    config_class: type, *, hidden: frozenset[str] = frozenset(), later: frozenset[str] = frozenset()
) -> str:
    """One line per field with help text: flag, help, default (a list field shows what its factory makes). Fields
    named in `later` come after the others (a subclass's own knobs first, then the inherited ones it re-defaults)."""
    own = set(getattr(config_class, "__annotations__", {}))
    fields = [f for f in dataclasses.fields(config_class) if f.name not in hidden and f.metadata.get("help")]
    fields.sort(key=lambda f: (f.name in later, f.name not in own))
    lines = []
    for item in fields:
        flag = "--" + item.name.replace("_", "-")
        default = item.default
        if default is dataclasses.MISSING:
            factory = item.default_factory
            default = " ".join(map(str, factory())) if factory is not dataclasses.MISSING else ""
            default = default or "none"
        lines.append(f"  {flag:<28} {item.metadata['help']} (default: {default})")
    return "\n".join(lines)


def stdout_for_json(as_json: bool) -> Any:
    """Under --json, what trainers print goes to stderr so stdout stays one JSON object."""
    return contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
