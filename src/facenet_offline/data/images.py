"""Image intake: any file in, an upright RGB uint8 array out, or an ImageError naming the file.

Large photos are decoded straight to a bounded size (JPEG's DCT scaling, then an area resize),
so a 12000x9000 picture costs a few tens of MB, not a third of a GB per decode thread.
"""

from __future__ import annotations

import errno
import os
import struct
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

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


def _bounded(img: Image.Image, max_side: int | None) -> Image.Image:
    """Shrink so the longer side is at most ``max_side``: DCT scaling while decoding a JPEG, then area resize."""
    target = _bounded_size(img.size, max_side)
    if target == img.size:
        return img
    img.draft(img.mode, target)  # JPEG only: decode at 1/2, 1/4 or 1/8 size, never below target
    return img.resize(target, Image.Resampling.BOX, reducing_gap=3.0)


def decoded_pixels(path: str | os.PathLike, max_side: int | None = DEFAULT_MAX_SIDE) -> int:
    """Pixels ``load_image`` will return for ``path``, from its header alone (0 if it has none to read)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = _bounded_size(img.size, max_side)
    except _DECODE_ERRORS:  # UnidentifiedImageError is an OSError
        return 0  # decoding will report what is wrong
    return width * height


def load_image(path: str | os.PathLike, max_side: int | None = DEFAULT_MAX_SIDE) -> DecodedImage:
    """Decode ``path`` upright (EXIF orientation applied), longer side at most ``max_side`` pixels.

    Raises ImageError, naming the file and what to do, for anything that is not a readable image.
    """
    path = Path(path)
    try:
        try:
            size = path.stat().st_size
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ImageError(f"{path}: a loop of symbolic links; fix or remove the link.") from None
            raise
        if size == 0:
            raise ImageError(f"{path}: empty file (0 bytes); replace it with a valid image or remove it.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # sizes are bounded below
            with Image.open(path) as img:
                width, height = img.size
                orientation = img.getexif().get(0x0112, 1)
                if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: stored width is the upright height
                    width, height = height, width
                img = _bounded(img, max_side)
                img = ImageOps.exif_transpose(img)
                rgb = np.asarray(_to_rgb(img), dtype=np.uint8).copy()
        if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
            raise ImageError(f"{path}: decoded to an unusable array {rgb.shape}; re-export the image.")
        return DecodedImage(rgb, (height, width))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file (or a broken link); check the path.") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied; make the file readable.") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image.") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image PIL can read (JPEG, PNG, BMP, WebP, TIFF ...); "
                         "remove it or convert it.") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: too large to decode safely ({exc}); downscale it first.") from None
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to decode it; downscale it first.") from None
    except _DECODE_ERRORS as exc:  # truncated or corrupt data
        raise ImageError(f"{path}: corrupt or truncated image ({type(exc).__name__}: {exc}); "
                         "re-export or remove it.") from None


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` at full size to an HxWx3 uint8 RGB array, rotated upright by its EXIF orientation."""
    return load_image(path, max_side=None).pixels


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
