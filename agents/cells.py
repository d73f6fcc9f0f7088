"""Images as data files hold them, read into `ImageRef`s through the project's one image intake
(`rewardmodel.images.as_image_ref`: format allow-list, pixel limit read from the header before decoding, regular
files only).

A cell may be: a path (absolute, relative to the data file's folder, or `file://`), a `data:` URL, encoded bytes, a
`{"bytes", "path"}` struct as `datasets` stores an `Image()` feature (either field may be null: bytes win; a path
alone is a file beside the data), a decoded PIL image, or (`images_from_cell`) a list of any of these. Web addresses
are refused by name: nothing here downloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rationalrewards.agents.rows import resolve_path
from rationalrewards.rewardmodel.errors import InvalidImageError
from rationalrewards.rewardmodel.images import as_image_ref, content_path, read_image_bytes
from rationalrewards.rewardmodel.schemas import ImageRef

_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif", "image/bmp": ".bmp"}


def _local(text: str, base: Path) -> object:
    """A path written in a cell, made absolute against the data file's folder; other strings unchanged."""
    stripped = text.strip()
    if not stripped or stripped.startswith("data:") or ("://" in stripped and not stripped.startswith("file://")):
        return stripped
    return resolve_path(stripped, base)


def image_from_cell(value: object, base: Path, what: str = "image") -> ImageRef:
    """One image from one cell (module docstring). Raises `InvalidImageError` (a `ValueError`) naming `what`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidImageError(f"missing {what}")
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise InvalidImageError(f"{what}: a list of {len(value)} images where one is expected")
        return image_from_cell(value[0], base, what)
    if isinstance(value, str):
        return as_image_ref(_local(value, base), what)
    if isinstance(value, Mapping) and not value.get("bytes") and isinstance(value.get("path"), str):
        return as_image_ref(_local(str(value["path"]), base), what)
    return as_image_ref(dict(value) if isinstance(value, Mapping) else value, what)


def images_from_cell(value: object, base: Path, what: str = "images") -> list[ImageRef]:
    """Every image of a cell that holds a list of images (one image alone reads as a list of one; None or an empty
    list as none)."""
    if value is None:
        return []
    items = list(value) if isinstance(value, list | tuple) else [value]
    return [image_from_cell(item, base, f"{what}[{i}]") for i, item in enumerate(items)]


def spill(ref: ImageRef, directory: Path) -> ImageRef:
    """An inline image (`data:` URL) written once to a content-addressed file under `directory`, its bytes unchanged;
    a file ref as it is. Long runs keep refs to files in their state and checkpoints, never megabytes of base64."""
    if not ref.uri.startswith("data:"):
        return ref
    mime = ref.uri[5:].split(";", 1)[0].lower()
    path = content_path(directory, ref.sha256, _SUFFIXES.get(mime, ".img"))
    if not path.exists():
        from rationalrewards.plumbing.files import atomic_write_bytes

        atomic_write_bytes(path, read_image_bytes(ref))
    return ref.model_copy(update={"uri": str(path.resolve())})


__all__ = ["image_from_cell", "images_from_cell", "spill"]
