"""Image intake: any image a person has in hand, an upright RGB uint8 array out, or an ImageError naming it.

Accepted everywhere: a path, bytes, a binary file object, a PIL image, or a numpy array (H x W x 3
uint8 RGB; grey and RGBA are converted). Files, bytes and PIL images are turned upright by their
EXIF orientation, and every kind is bounded to ``max_side``. Large photos are decoded straight to
the bounded size (JPEG's DCT scaling, then an area resize), so a 12000x9000 picture costs a few
tens of MB, not a third of a GB per decode thread.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import struct
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"})
# Longest side an image is decoded at for detection: a 20 px face in it is a 60 px face in a 12000 px photo.
DEFAULT_MAX_SIDE = 4096

# What Pillow's format plugins can raise on malformed data (OSError is by far the most common;
# tests/test_images.py feeds random and mutated files in to check nothing else escapes).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError, ZeroDivisionError,
                  struct.error, zlib.error, Image.DecompressionBombError)


@dataclass
class DecodedImage:
    """Upright RGB pixels, possibly downscaled, and the size of the image as stored (after rotation)."""

    pixels: np.ndarray  # H x W x 3 uint8
    size: tuple[int, int]  # original height, width

    @property
    def scale(self) -> tuple[float, float]:
        """(x, y) factors from original to decoded pixel coordinates (1.0 unless downscaled)."""
        return self.pixels.shape[1] / self.size[1], self.pixels.shape[0] / self.size[0]


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit and 32-bit integer greyscale: scale to 8 bits instead of letting PIL clip.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":  # float greyscale (TIFF): assume [0, 1] if it fits, else [0, 255]
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        top = 1.0 if arr.max() <= 1.0 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        # Composite transparent pixels on white, as a viewer shows them.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")  # also CMYK (PIL undoes Adobe's inverted CMYK), YCbCr, L, 1, P


def _bounded_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """(width, height) shrunk so the longer side is at most ``max_side``."""
    if max_side is None or max(size) <= max_side:
        return size
    ratio = max_side / max(size)
    return max(1, round(size[0] * ratio)), max(1, round(size[1] * ratio))


def _bounded(img: Image.Image, max_side: int | None, draft: bool = True) -> Image.Image:
    """Shrink so the longer side is at most ``max_side``: DCT scaling while decoding a JPEG, then area resize."""
    target = _bounded_size(img.size, max_side)
    if target == img.size:
        return img
    if draft:
        img.draft(img.mode, target)  # JPEG only: decode at 1/2, 1/4 or 1/8 size, never below target
    return img.resize(target, Image.Resampling.BOX, reducing_gap=3.0)


ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Image.Image, np.ndarray]
ACCEPTED = ("a path, bytes, a binary file object, a PIL image, or a numpy array (H x W x 3 uint8 RGB; "
            "H x W grey and H x W x 4 RGBA are converted)")


@dataclass(frozen=True)
class ImageSource:
    """One input, normalised once at the boundary: its label for messages and exactly one way to read it."""

    label: str
    path: Path | None = None
    data: bytes | None = None
    image: Image.Image | None = None
    array: np.ndarray | None = None

    def __str__(self) -> str:
        return self.label


def as_source(obj: ImageInput | ImageSource, index: int | None = None) -> ImageSource:
    """Normalise one input; ``index`` (its position in a batch) goes into the label of inputs without a name.

    Raises TypeError naming what is accepted for anything else. A file object is read here, once.
    """
    if isinstance(obj, ImageSource):
        return obj
    where = "" if index is None else f"input {index}: "
    if isinstance(obj, (str, os.PathLike)):
        return ImageSource(str(obj), path=Path(obj))
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        return ImageSource(f"{where}bytes ({len(data):,} bytes)", data=data)
    if isinstance(obj, Image.Image):
        return ImageSource(f"{where}PIL image ({obj.mode}, {obj.width}x{obj.height})", image=obj)
    if isinstance(obj, np.ndarray):
        return ImageSource(f"{where}array {tuple(obj.shape)} {obj.dtype}", array=obj)
    if callable(getattr(obj, "read", None)):
        data = obj.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"{where}a file object opened in text mode; open it with 'rb' (accepted: {ACCEPTED}).")
        name = getattr(obj, "name", None)
        label = f"{where}{name}" if isinstance(name, str) else f"{where}file object ({len(data):,} bytes)"
        return ImageSource(label, data=bytes(data))
    raise TypeError(f"{where}cannot read an image from {type(obj).__name__}; accepted: {ACCEPTED}.")


def decoded_pixels(source: ImageInput | ImageSource, max_side: int | None = DEFAULT_MAX_SIDE) -> int:
    """Pixels ``load_image`` will return for ``source``, from its header alone (0 if it has none to read)."""
    source = as_source(source)
    if source.array is not None:
        width, height = _bounded_size((source.array.shape[1], source.array.shape[0]) if source.array.ndim >= 2
                                      else (0, 0), max_side)
        return width * height
    if source.image is not None:
        width, height = _bounded_size(source.image.size, max_side)
        return width * height
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source.path if source.path is not None else io.BytesIO(source.data)) as img:
                width, height = _bounded_size(img.size, max_side)
    except _DECODE_ERRORS:  # UnidentifiedImageError is an OSError
        return 0  # decoding will report what is wrong
    return width * height


def load_image(source: ImageInput | ImageSource, max_side: int | None = DEFAULT_MAX_SIDE) -> DecodedImage:
    """Decode any accepted input upright (EXIF orientation applied), longer side at most ``max_side`` pixels.

    Raises ImageError, naming the input and what to do, for anything that is not a readable image,
    and TypeError for an object of a kind no image comes from.
    """
    source = as_source(source)
    if source.array is not None:
        return _from_array(source, max_side)
    if source.path is not None:
        _check_file(source)
    elif source.data is not None and not source.data:
        raise ImageError(source.label, "empty (0 bytes); send the image's bytes.", code="empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # sizes are bounded below
            if source.image is not None:
                if source.image.width * source.image.height > 2 * Image.MAX_IMAGE_PIXELS:
                    raise Image.DecompressionBombError(f"{source.image.width}x{source.image.height} pixels")
                return _upright(source.image, max_side, source.label, draft=False)  # never change the caller's image
            with Image.open(source.path if source.path is not None else io.BytesIO(source.data)) as img:
                return _upright(img, max_side, source.label)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(source.label, "no such file (or a broken link); check the path.", code="not_found") from None
    except PermissionError:
        raise ImageError(source.label, "permission denied; make the file readable.", code="unreadable") from None
    except IsADirectoryError:
        raise ImageError(source.label, "is a folder, not an image.", code="is_folder") from None
    except UnidentifiedImageError:
        raise ImageError(source.label, "not an image facenet-offline can read (JPEG, PNG, BMP, WebP, TIFF ...); "
                                       "remove it or convert it.", code="not_an_image") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(source.label, f"too large to decode safely ({exc}); downscale it first.",
                         code="too_large") from None
    except MemoryError:
        raise ImageError(source.label, "not enough memory to decode it; downscale it first.",
                         code="too_large") from None
    except _DECODE_ERRORS as exc:  # truncated or corrupt data
        raise ImageError(source.label, f"corrupt or truncated image ({type(exc).__name__}: {exc}); "
                                       "re-export or remove it.", code="corrupt") from None


def _check_file(source: ImageSource) -> None:
    """The errors a path has before any decoding: a link loop, an empty file."""
    try:
        size = source.path.stat().st_size
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageError(source.label, "a loop of symbolic links; fix or remove the link.",
                             code="link_loop") from None
        return  # open() below reports it
    if size == 0:
        raise ImageError(source.label, "empty file (0 bytes); replace it with a valid image or remove it.",
                         code="empty")


def _upright(img: Image.Image, max_side: int | None, label: str, draft: bool = True) -> DecodedImage:
    """Bounded, EXIF-rotated RGB pixels of an opened image, with its upright size as stored."""
    width, height = img.size
    orientation = img.getexif().get(0x0112, 1)
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: stored width is the upright height
        width, height = height, width
    img = _bounded(img, max_side, draft)
    img = ImageOps.exif_transpose(img)
    rgb = np.asarray(_to_rgb(img), dtype=np.uint8).copy()
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ImageError(label, f"decoded to an unusable array {rgb.shape}; re-export the image.", code="corrupt")
    return DecodedImage(rgb, (height, width))


def _from_array(source: ImageSource, max_side: int | None) -> DecodedImage:
    """An array as RGB uint8: H x W grey and H x W x 1 repeated, H x W x 4 RGBA composited on white."""
    arr = source.array
    if arr.dtype != np.uint8:
        raise ImageError(source.label, "arrays must be uint8 (0-255); convert with np.clip(x, 0, 255)"
                                       ".astype(np.uint8), scaling by 255 first if the values lie in [0, 1].",
                                           code="bad_array")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))) or min(arr.shape[:2]) < 1:
        raise ImageError(source.label, "expected H x W x 3 RGB, H x W grey or H x W x 4 RGBA.", code="bad_array")
    height, width = arr.shape[:2]
    img = Image.fromarray(np.ascontiguousarray(arr), "L" if arr.ndim == 2 else ("RGB" if arr.shape[2] == 3 else "RGBA"))
    rgb = np.array(_to_rgb(_bounded(img, max_side, draft=False)), dtype=np.uint8)  # a copy: never the caller's array
    return DecodedImage(rgb, (height, width))


def load_rgb(source: ImageInput) -> np.ndarray:
    """Decode any accepted input at full size to an HxWx3 uint8 RGB array, upright by its EXIF orientation."""
    return load_image(source, max_side=None).pixels


def source_digest(source: ImageInput | ImageSource) -> str | None:
    """sha256 of what an input is (a file's or bytes' content; an array's or PIL image's pixels and shape):
    the same photo gives the same digest wherever it lies. None for a file that cannot be read."""
    source = as_source(source)
    digest = hashlib.sha256()
    if source.path is not None:
        try:
            with open(source.path, "rb") as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
        except OSError:
            return None
    elif source.data is not None:
        digest.update(source.data)
    else:
        pixels = source.array if source.array is not None else np.asarray(source.image)
        digest.update(f"{pixels.shape} {pixels.dtype}".encode())
        digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()


def _is_one_image(obj) -> bool:
    return (isinstance(obj, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, ImageSource))
            or (isinstance(obj, np.ndarray) and obj.ndim < 4) or callable(getattr(obj, "read", None)))


def expand_inputs(inputs: ImageInput | Iterable[ImageInput]) -> Iterator[ImageSource]:
    """Every image of ``inputs``, in order: one input or an iterable of them (an N x H x W x C array is N images).

    Folders are walked (images in name order, see ``iter_image_paths``); every other input is one
    image, read when it is decoded, so a missing or broken file becomes that input's error.
    """
    if _is_one_image(inputs):
        inputs = [inputs]
    elif not isinstance(inputs, (Iterable, np.ndarray)):
        raise TypeError(f"cannot read images from {type(inputs).__name__}; give one image or a list of them "
                        f"({ACCEPTED}), or folders.")
    for index, item in enumerate(inputs):
        if isinstance(item, (str, os.PathLike)) and Path(item).is_dir():
            yield from (ImageSource(str(p), path=p) for p in iter_image_paths([item]))
        else:
            yield as_source(item, index)


def iter_image_paths(inputs: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Files given directly (any suffix, so a bad one is reported), then images under given folders, sorted.

    Symbolic links are followed, but a folder already visited (a link loop) is not entered again.
    """
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            seen: set[tuple[int, int]] = set()
            for root, dirs, files in os.walk(p, followlinks=True):
                st = os.stat(root)
                if (st.st_dev, st.st_ino) in seen:
                    dirs[:] = []
                    continue
                seen.add((st.st_dev, st.st_ino))
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                        yield Path(root) / name
        else:
            yield p
