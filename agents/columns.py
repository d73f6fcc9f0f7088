"""Which column of a dataset holds which field of a preference pair: `--columns prompt=caption,image_a=jpg_0,...`.

Fields: `prompt`, `image_a`, `image_b` (or `images`: one column holding the pair as a list of two images),
`label`, `source_image` (edits), `pair_id`, `category` (for per-category accuracy). A field not named reads the column
of its own name, so a file already in our layout needs no map.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FIELDS = ("prompt", "image_a", "image_b", "images", "label", "source_image", "pair_id", "category")


@dataclass(frozen=True)
class ColumnMap:
    names: Mapping[str, str] = field(default_factory=dict)  # field -> the dataset's column

    def __post_init__(self) -> None:
        unknown = sorted(set(self.names) - set(FIELDS))
        if unknown:
            raise ValueError(f"--columns: unknown field {', '.join(unknown)}; fields are {', '.join(FIELDS)}")

    @classmethod
    def parse(cls, text: str | None) -> ColumnMap:
        """`prompt=caption,image_a=jpg_0,image_b=jpg_1,label=label_0` (spaces around items ignored)."""
        names: dict[str, str] = {}
        for item in (text or "").split(","):
            if not item.strip():
                continue
            key, sep, column = (part.strip() for part in item.partition("="))
            if not sep or not key or not column:
                raise ValueError(f"--columns takes FIELD=COLUMN items, e.g. prompt=caption,image_a=jpg_0; got {item!r}")
            if key in names:
                raise ValueError(f"--columns names {key} twice")
            names[key] = column
        return cls(names)

    def __getitem__(self, field_name: str) -> str:
        return self.names.get(field_name, field_name)

    def uses_list(self, row: Mapping[str, object]) -> bool:
        """Whether the pair's images come from one list column: `images` named, or no `image_a` column but an
        `images` one."""
        return "images" in self.names or (self["image_a"] not in row and self["images"] in row)

    def wanted(self) -> list[str]:
        """The columns to read (columnar formats skip the rest on disk)."""
        return [self[f] for f in FIELDS]

    def describe(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.names.items()) or "(the fields' own names)"


__all__ = ["FIELDS", "ColumnMap"]
