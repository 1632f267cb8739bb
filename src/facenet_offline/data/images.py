"""Image intake: any file in, an upright RGB uint8 array out, or an ImageError naming the file."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"})


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit and 32-bit integer greyscale: scale to 8 bits instead of letting PIL clip.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite transparent pixels on white, as a viewer shows them.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` to an HxWx3 uint8 RGB array, rotated upright by its EXIF orientation."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes); replace it with a valid image or remove it.")
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
            return np.asarray(rgb, dtype=np.uint8).copy()
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file; check the path.") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied; make the file readable.") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image.") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image PIL can read (JPEG, PNG, BMP, WebP, TIFF ...); "
                         "remove it or convert it.") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise ImageError(f"{path}: corrupt or truncated image ({exc}); re-export or remove it.") from None


def iter_image_paths(inputs: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Files given directly (any suffix, so a bad one is reported), then images under given folders, sorted."""
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            seen: set[tuple[int, int]] = set()
            for root, dirs, files in os.walk(p, followlinks=True):
                st = os.stat(root)
                if (st.st_dev, st.st_ino) in seen:  # a symlink loop: do not walk it again
                    dirs[:] = []
                    continue
                seen.add((st.st_dev, st.st_ino))
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                        yield Path(root) / name
        else:
            yield p
