"""The GenEval metadata schema: the ground truth a suite row can carry, whatever world draws its images.

A spec is `{tag, include: [{class, count, color?, position?: [relation, index]}], exclude?, text?}` (GenEval's own
fields, plus `text` for text rendering). `SceneSpec.model_dump()` is that dict; `SceneSpec.from_geneval` reads it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer


class ObjectSpec(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    cls: str = Field(alias="class")
    count: int = 1
    color: str | None = None
    position: tuple[str, int] | None = None

    @model_serializer(mode="wrap")
    def _geneval(self, handler: Any) -> dict[str, object]:
        data = {k: v for k, v in handler(self).items() if v is not None}
        if "position" in data:
            data["position"] = list(data["position"])
        return data


class SceneSpec(BaseModel):
    """The exact spec. `model_dump()` is the GenEval metadata dict (empty `exclude` and `text` left out)."""

    model_config = ConfigDict(frozen=True)

    tag: str
    include: tuple[ObjectSpec, ...]
    exclude: tuple[ObjectSpec, ...] = ()
    text: tuple[str, ...] = ()

    @model_serializer(mode="wrap")
    def _geneval(self, handler: Any) -> dict[str, object]:
        data = handler(self)
        for key in ("exclude", "text"):
            if not data.get(key):
                data.pop(key, None)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    def relation(self) -> tuple[ObjectSpec, str, ObjectSpec] | None:
        """(subject, relation, reference) when the spec places one object relative to another."""
        for obj in self.include:
            if obj.position is not None:
                relation, index = obj.position
                return obj, relation, self.include[index]
        return None

    @classmethod
    def from_geneval(cls, record: dict[str, Any]) -> SceneSpec:
        return cls(
            tag=record["tag"],
            include=tuple(ObjectSpec.model_validate(o) for o in record["include"]),
            exclude=tuple(ObjectSpec.model_validate(o) for o in record.get("exclude", [])),
            text=tuple(record.get("text", [])),
        )


__all__ = ["ObjectSpec", "SceneSpec"]
