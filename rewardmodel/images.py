"""Image inputs at the reward-model boundary: refs, loading, validation, PNG data URLs for the wire.

The one image intake every reader goes through (critics, generators' answers, uploads, distillation rows):
- files: regular files only (a FIFO, a device such as /dev/zero, a directory or a link to one is refused before a byte
  is read), and never more than `max_image_bytes()` read;
- `data:` URLs: the decoded size checked from the text's length before decoding;
- formats: an allow-list (`ALLOWED_FORMATS`) handed to Pillow, so no other plugin (EPS, which runs Ghostscript, among
  them) ever sees the bytes;
- size: the pixel count checked from the header, before anything is decoded (`max_image_pixels()`).

Pillow is imported lazily so that schema-only users (graphs, most tests) do not pay for it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from rationalrewards.rewardmodel.errors import ImageTooLargeError, InvalidImageError
from rationalrewards.rewardmodel.schemas import ImageRef

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

CacheKey = tuple[str, int, int, int]  # (uri, size in bytes, modification time in ns, the pixel limit)

try:  # SIMD base64, ~50x the standard library's speed on a 500 KB PNG; the wire format is identical
    from pybase64 import b64encode as _b64encode
except ImportError:  # optional speed-up
    from base64 import b64encode as _b64encode  # type: ignore[assignment]  # same call, stricter stub


DEFAULT_MAX_IMAGE_PIXELS = 64_000_000  # 8000 x 8000; $RATIONALREWARDS_MAX_IMAGE_PIXELS or set_max_image_pixels()
_max_pixels: int | None = None


def max_image_pixels() -> int:
    """The largest image (in pixels) read anywhere: checked from the header, before any decoding, so a small file that
    unpacks to gigabytes (a decompression bomb) is refused with a clear error."""
    if _max_pixels is not None:
        return _max_pixels
    value = os.environ.get("RATIONALREWARDS_MAX_IMAGE_PIXELS", "")
    try:
        return int(value) if value else DEFAULT_MAX_IMAGE_PIXELS
    except ValueError as e:
        raise InvalidImageError(
            f"RATIONALREWARDS_MAX_IMAGE_PIXELS must be a whole number of pixels, got {value!r}"
        ) from e


def set_max_image_pixels(pixels: int | None) -> None:
    """Set the image size limit for this process (None: back to the environment or the default)."""
    global _max_pixels
    if pixels is not None and pixels < 1:
        raise ValueError("the image size limit must be at least 1 pixel")
    _max_pixels = pixels


def check_image_size(width: int, height: int, where: str) -> None:
    limit = max_image_pixels()
    if width * height > limit:
        raise ImageTooLargeError(
            f"{where} is too large: {width}x{height} = {width * height / 1e6:.1f} megapixels, over the limit of "
            f"{limit / 1e6:.1f} (raise it with --max-image-pixels or $RATIONALREWARDS_MAX_IMAGE_PIXELS)"
        )


# Raster formats a generator or a dataset produces; every other Pillow plugin stays out of reach (EPS runs
# Ghostscript, and the rarer plugins are where decoder bugs live).
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
_BYTES_PER_PIXEL = 8  # the most an encoded image needs per pixel (16-bit RGBA stored raw), so no real image is refused


def max_image_bytes() -> int:
    """The most bytes read for one image: what the largest allowed image could take encoded, plus 1 MiB of headers."""
    return max_image_pixels() * _BYTES_PER_PIXEL + (1 << 20)


def read_file_bytes(path: str | Path, what: str = "image file") -> bytes:
    """A regular file's bytes, at most `max_image_bytes()`. Anything else (a FIFO that would block, a device that never
    ends, a directory) is refused by name, checked on the open descriptor so it cannot be swapped in between."""
    path = Path(path)
    limit = max_image_bytes()
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open itself
    except FileNotFoundError as e:
        raise InvalidImageError(f"{what} not found: {path}") from e
    except (IsADirectoryError, PermissionError, OSError) as e:
        raise InvalidImageError(f"cannot read {what} {path}: {e.strerror or e}") from e
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            kind = _file_kind(info.st_mode)
            raise InvalidImageError(f"{path} is not a regular file (a {kind}); images are read from files only")
        if info.st_size > limit:
            size = info.st_size / 2**20
            raise ImageTooLargeError(f"{path} is {size:.0f} MiB, over the {limit / 2**20:.0f} MiB an image may take")
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(descriptor)
    if len(data) > limit:  # it grew while being read
        raise ImageTooLargeError(f"{path} is over the {limit / 2**20:.0f} MiB an image may take")
    return data


def _file_kind(mode: int) -> str:
    kinds = {stat.S_ISFIFO: "FIFO", stat.S_ISCHR: "character device", stat.S_ISBLK: "block device",
             stat.S_ISDIR: "directory", stat.S_ISSOCK: "socket"}  # fmt: skip
    return next((name for test, name in kinds.items() if test(mode)), "special file")


def image_dimensions(data: bytes, where: str) -> tuple[int, int]:
    """(width, height) from the header alone, under the intake's rules (allowed formats, the pixel limit): nothing is
    decoded, so checking every image of a large dataset costs a header read each."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > max_image_bytes():
        raise ImageTooLargeError(f"{where} is over the {max_image_bytes() / 2**20:.0f} MiB an image may take")
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            check_image_size(image.width, image.height, where)
            return image.width, image.height
    except UnidentifiedImageError as e:
        raise InvalidImageError(
            f"{where} is not a readable image (not an image, or not one of {', '.join(ALLOWED_FORMATS)})"
        ) from e
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(f"{where} is too large to decode safely ({e})") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise InvalidImageError(f"{where} is not a readable image (truncated or corrupt: {e})") from e


def decode_image(data: bytes, where: str) -> PILImage:
    """Decode image bytes under the intake's rules: allowed formats only, the pixel count from the header first."""
    return _open(data, where)


def _open(data: bytes, where: str) -> PILImage:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, max_image_pixels())  # our limit decides, checked below
    if len(data) > max_image_bytes():
        raise ImageTooLargeError(
            f"{where} is {len(data) / 2**20:.0f} MiB, over the {max_image_bytes() / 2**20:.0f} MiB an image may take"
        )
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        check_image_size(image.width, image.height, where)  # from the header, before decoding
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(
            f"{where} is too large to decode safely ({e}); raise the limit with --max-image-pixels or "
            "$RATIONALREWARDS_MAX_IMAGE_PIXELS if it is really meant to be read"
        ) from e
    except UnidentifiedImageError as e:  # its message names a BytesIO object, not the file
        raise InvalidImageError(
            f"{where} is not a readable image (not an image, or not one of {', '.join(ALLOWED_FORMATS)})"
        ) from e
    except (OSError, ValueError, SyntaxError) as e:
        raise InvalidImageError(f"{where} is not a readable image (truncated or corrupt: {e})") from e
    return image


def _path_of(uri: str) -> Path:
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    return Path(uri)


def read_image_bytes(ref: ImageRef | str | Path) -> bytes:
    """The raw bytes behind a ref, path or `data:` URL."""
    uri = ref.uri if isinstance(ref, ImageRef) else str(ref)
    if uri.startswith("data:"):
        payload = uri.partition(",")[2]
        if len(payload) * 3 // 4 > max_image_bytes():  # the decoded size, known before decoding
            raise ImageTooLargeError(f"a data URL of {len(payload) / 2**20:.0f} MiB is over the size an image may take")
        if not payload:
            raise InvalidImageError("malformed data URL (no data after the comma)")
        try:
            return base64.b64decode(payload, validate=True)
        except ValueError as e:
            raise InvalidImageError(f"malformed data URL ({e})") from e
    if "://" in uri and not uri.startswith("file://"):
        raise InvalidImageError(f"only local files and data: URLs are read here, not {uri.split('://')[0]}:// URIs")
    return read_file_bytes(_path_of(uri))


def load_pil(ref: ImageRef | str | Path) -> PILImage:
    """A decoded RGB PIL image. A ref whose bytes no longer match its sha256 is rejected."""
    data = read_image_bytes(ref)
    if isinstance(ref, ImageRef) and hashlib.sha256(data).hexdigest() != ref.sha256:
        raise InvalidImageError(f"{ref.uri} changed since it was referenced (sha256 mismatch)")
    return _open(data, ref.uri if isinstance(ref, ImageRef) else str(ref)).convert("RGB")


def image_ref_from_path(path: str | Path) -> ImageRef:
    """A ref to a local image: a path, or a `file://` URI (percent-decoded)."""
    path = _path_of(path) if isinstance(path, str) else path
    data = read_image_bytes(path)
    image = _open(data, str(path))
    return ImageRef(
        uri=str(path.resolve()), sha256=hashlib.sha256(data).hexdigest(), width=image.width, height=image.height
    )


def image_ref_from_data_url(url: str) -> ImageRef:
    """A ref to an image sent inline (a `data:` URL), as a server sees it: hashed, sized from the PNG header."""
    data = read_image_bytes(url)
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        check_image_size(width, height, "an inline image")
    else:
        image = _open(data, "a data: URL")
        width, height = image.width, image.height
    return ImageRef(uri=url, sha256=hashlib.sha256(data).hexdigest(), width=width, height=height)


def png_bytes(image: PILImage) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def content_path(directory: str | Path, digest: str, suffix: str = ".png") -> Path:
    """Where content-addressed files live: `<directory>/<hex 1-2>/<hex 3-4>/<digest><suffix>`. Two levels, 65,536
    folders: a `deep` run of 100,000 prompts (about a million images) keeps every folder to a few dozen files, where
    one level (git's layout for loose objects) would put about 4,000 in each."""
    return Path(directory) / digest[:2] / digest[2:4] / f"{digest}{suffix}"


def content_candidates(directory: str | Path, digest: str, suffix: str = ".png") -> tuple[Path, ...]:
    """Where a content-addressed file may be, newest layout first: two levels, then the one-level and flat layouts of
    run directories written by earlier versions (they still resolve)."""
    directory = Path(directory)
    name = f"{digest}{suffix}"
    return content_path(directory, digest, suffix), directory / digest[:2] / name, directory / name


def image_ref_from_pil(image: PILImage, directory: str | Path | None = None) -> ImageRef:
    """Content-addressed: saved at `content_path(directory, sha256)`, or inlined as a data URL when no directory is
    given."""
    data = png_bytes(image)
    digest = hashlib.sha256(data).hexdigest()
    if directory is None:
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    else:
        path = content_path(directory, digest)
        if not path.exists():
            from rationalrewards.plumbing.files import atomic_write_bytes

            atomic_write_bytes(path, data)
        uri = str(path.resolve())
    return ImageRef(uri=uri, sha256=digest, width=image.width, height=image.height)


def as_image_ref(image: object, what: str = "image") -> ImageRef:
    """The one reader of image arguments, for every surface an agent or a user reaches us through (the Python API,
    tools for LangChain, the OpenAI Agents SDK, pydantic-ai and MCP): an `ImageRef` or its JSON; a path; a `file://`
    URI (percent-decoded); a `data:` URL; encoded image bytes; a `{"bytes", "path"}` record as datasets store images;
    an OpenAI content part (`{"image_url": {"url": ...}}`); a PIL image. Every one goes through the image intake. An
    `http(s)://` URL is refused by name: nothing here fetches from the network."""
    if isinstance(image, ImageRef):
        return image
    if isinstance(image, Path):
        return image_ref_from_path(image)
    if isinstance(image, str):
        text = image.strip()
        if text.startswith("data:"):
            return image_ref_from_data_url(text)
        if text.lower().startswith(("http://", "https://")):
            raise InvalidImageError(
                f"{what}: {text.split('?')[0][:80]} is a web address; images are read from files and data: URLs "
                "only (nothing here downloads): save it to a file, or pass it as a data: URL"
            )
        if "://" in text and not text.startswith("file://"):
            raise InvalidImageError(
                f"{what}: {text.split('://')[0]}:// addresses are not read; give a file or a data: URL"
            )
        if not text:
            raise InvalidImageError(f"{what} is empty: give a file path, a file:// URI or a data: URL")
        return image_ref_from_path(text)
    if isinstance(image, bytes | bytearray):
        return _ref_from_bytes(bytes(image), what)
    if isinstance(image, dict):
        return _ref_from_record(image, what)
    from PIL import Image

    if isinstance(image, Image.Image):
        return image_ref_from_pil(image)
    raise InvalidImageError(
        f"cannot use a {type(image).__name__} as {what}: pass a path, a file:// or data: URL, image bytes, a PIL image "
        "or an ImageRef"
    )


def _ref_from_bytes(data: bytes, what: str) -> ImageRef:
    from PIL import Image

    image = decode_image(data, what)
    mime = Image.MIME.get(str(image.format), "image/png")
    return ImageRef(
        uri=f"data:{mime};base64," + base64.b64encode(data).decode("ascii"),
        sha256=hashlib.sha256(data).hexdigest(),
        width=image.width,
        height=image.height,
    )


def _ref_from_record(record: dict[object, object], what: str) -> ImageRef:
    if record.get("kind") == "image_ref" or {"uri", "sha256"} <= record.keys():
        return ImageRef.model_validate(record)
    data, path = record.get("bytes"), record.get("path")
    if data:
        return as_image_ref(data, what) if isinstance(data, bytes | bytearray) else _refuse(what, "bytes", data)
    if path:
        return as_image_ref(path, what) if isinstance(path, str) else _refuse(what, "path", path)
    inner = record.get("image_url", record.get("url"))
    if isinstance(inner, dict):
        inner = inner.get("url")
    if isinstance(inner, str):
        return as_image_ref(inner, what)
    raise InvalidImageError(f"{what}: a record with none of uri, bytes, path or image_url ({sorted(map(str, record))})")


def _refuse(what: str, field: str, value: object) -> ImageRef:
    raise InvalidImageError(f"{what}: its {field!r} is a {type(value).__name__}")


class _DataUrlCache:
    """Recently sent data URLs, bounded in bytes. One image is sent several times (PARROT asks the teacher about a
    pair four times; a GCR critic sees each candidate once per pairwise and pointwise request), and reading and
    encoding it each time showed as 5% of PARROT's event-loop time. Keyed by the file's path, size, modification time
    and the image size limit, so a rewritten file or a lowered limit is read afresh."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes, self.size = max_bytes, 0
        self._entries: OrderedDict[CacheKey, str] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(ref: ImageRef | str | Path) -> CacheKey | None:
        uri = ref.uri if isinstance(ref, ImageRef) else str(ref)
        if uri.startswith("data:") or ("://" in uri and not uri.startswith("file://")):
            return None
        try:
            stat = os.stat(_path_of(uri) if uri.startswith("file://") else uri)  # os.stat: no Path object per call
        except OSError:
            return None  # read_image_bytes raises the error users should see
        return (uri, stat.st_size, stat.st_mtime_ns, max_image_pixels())

    def get(self, key: CacheKey) -> str | None:
        with self._lock:
            url = self._entries.get(key)
            if url is not None:
                self._entries.move_to_end(key)
            return url

    def put(self, key: CacheKey, url: str) -> None:
        if len(url) > self.max_bytes // 4:
            return  # a huge image would evict everything else for one reuse
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = url
            self.size += len(url)
            while self.size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.size -= len(evicted)


_data_urls = _DataUrlCache()


def png_data_url(ref: ImageRef | str | Path) -> str:
    """A PNG base64 data URL for an `image_url` content part. PNG inputs are passed through without re-encoding."""
    key = _data_urls.key(ref)
    cached = _data_urls.get(key) if key is not None else None
    if cached is not None:
        return cached
    url = _encode_data_url(ref)
    if key is not None:
        _data_urls.put(key, url)
    return url


def _encode_data_url(ref: ImageRef | str | Path) -> str:
    data = read_image_bytes(ref)
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        data = png_bytes(_open(data, str(ref)).convert("RGB"))
    else:
        _check_png_header(data, ref)
    # One bytes join and one decode: an image URL is hundreds of KB, and each extra copy shows in client throughput.
    return (b"data:image/png;base64," + _b64encode(data)).decode("ascii")


def _check_png_header(data: bytes, ref: object) -> None:
    # A full decode costs milliseconds per 512x512 image; the IHDR chunk is enough to reject a broken file cheaply.
    where = str(getattr(ref, "uri", ref))
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise InvalidImageError(f"{where} is not a valid PNG (no IHDR chunk)")
    check_image_size(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), where)
