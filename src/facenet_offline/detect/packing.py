"""Where an image's pyramid levels sit in one PNet input, so that they run together (``PackedPNet``).

Pure geometry: a layout depends only on the level sizes, so every image of one size shares one
layout, and a batch of them is one PNet run of identical inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


def pnet_map_size(side: int) -> int:
    """PNet's output cells along an input side of ``side`` pixels (3x3 conv, ceil-mode 2x2 pool, two 3x3 convs)."""
    return -(-(side - 2) // 2) - 4


def _even(n: int) -> int:
    return n + (n & 1)


@dataclass(frozen=True)
class Layout:
    """Levels placed in one (height, width) input: each level's (y, x, height, width).

    Offsets are even, so PNet's stride-2 cells of a level start on a cell of the input; levels
    of an odd side are followed by at least one gap pixel.
    """

    shape: tuple[int, int]
    places: tuple[tuple[int, int, int, int], ...]

    @property
    def packed(self) -> bool:
        """More than one level: the input is for ``PackedPNet``, not PNet."""
        return len(self.places) > 1

    def cells(self, k: int) -> tuple[slice, slice]:
        """The rows and columns of PNet's output that are level ``k``'s own map."""
        y, x, h, w = self.places[k]
        return slice(y // 2, y // 2 + pnet_map_size(h)), slice(x // 2, x // 2 + pnet_map_size(w))

    def gaps(self) -> np.ndarray:
        """(height, width) float32: 1 on pixels of no level, 0 on the levels (``PackedPNet``'s fourth channel)."""
        return _gaps(self)


@lru_cache(maxsize=64)
def _gaps(layout: Layout) -> np.ndarray:
    out = np.ones(layout.shape, np.float32)
    for y, x, h, w in layout.places:
        out[y:y + h, x:x + w] = 0
    out.flags.writeable = False
    return out


def pack(sizes: Sequence[tuple[int, int]]) -> Layout:
    """A layout of levels given largest first as (height, width): the first at the left, full height,
    the others in columns to its right, each column filled top down.

    On one LFW photo's 8 levels (45,410 pixels) the input is 150 x 372 (55,800), against 8 runs alone.
    """
    if not sizes:
        raise ValueError("no levels to pack")
    if any(h < 1 or w < 1 for h, w in sizes):
        raise ValueError(f"level sizes must be positive, got {list(sizes)}")
    height = max(h for h, _ in sizes)
    places, x, y, column = [], 0, 0, 0  # column: the current column's width
    for h, w in sizes:
        if y and y + h > height:  # start a new column
            x, y, column = _even(x + column), 0, 0
        places.append((y, x, h, w))
        y, column = _even(y + h), max(column, w)
    return Layout((height, max(px + w for _, px, _, w in places)), tuple(places))
