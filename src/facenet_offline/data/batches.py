"""How a stream of inputs is cut into batches: consecutive runs bounded by a count and by pixels.

A batch's memory grows with its pixels, not its count: 32 LFW photos hold 2 M pixels, 32 phone
photos 384 M. Bounding both keeps batches of small images large and batches of big photos small.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def bounded_runs(sizes: Iterable[int], budget: int, max_count: int | None = None) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive runs holding at most ``budget`` in all and ``max_count`` items.

    Lazy, one item ahead of the run it yields; an item over the budget runs alone. Nothing is
    dropped or reordered: the runs tile ``range(len(sizes))``.
    """
    if budget < 1 or (max_count is not None and max_count < 1):
        raise ValueError(f"budget and max_count must be at least 1, got {budget} and {max_count}")
    start, total, i = 0, 0, -1
    for i, size in enumerate(sizes):
        if i > start and (total + size > budget or (max_count is not None and i - start == max_count)):
            yield start, i
            start, total = i, 0
        total += size
    if i >= start:
        yield start, i + 1
