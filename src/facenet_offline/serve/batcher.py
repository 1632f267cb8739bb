"""Batching across requests: the images of concurrent requests detected in one detector run and their faces
embedded in one embedder run.

Requests decode their images themselves and hand each one in with its face task. One thread takes
what is waiting, up to ``max_batch`` images, and while images of other requests are still being
decoded (``coming``) waits for them, at most ``max_wait_ms`` after the first; a lone request is
never held back. It runs them through the face loop's two halves (``face_loop.detect_decoded`` and
``finish``), the code every other caller uses, so a batched image gives exactly what it gives
alone (detection and embedding do not depend on what runs beside them: tests/test_serve.py). The
queue is bounded: a full one refuses new work at once rather than holding it in memory.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from ..data.images import DecodedImage, ImageSource
from ..detect.mtcnn import MTCNNDetector
from ..embedder import Embedder
from ..face_loop import FaceTask, ImageResult, detect_decoded, finish

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The batcher holds as many images as it may: the caller should answer 503 and try again later."""


@dataclass
class _Job:
    source: ImageSource
    decoded: DecodedImage
    task: FaceTask
    embed: bool
    future: Future


@dataclass(frozen=True)
class BatchLimits:
    """How much is batched: at most ``max_batch`` images per run, waiting at most ``max_wait_ms`` after the first
    for images still being decoded; at most ``max_queue`` images waiting. ``max_batch`` 1 switches batching off."""

    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 256

    def __post_init__(self):
        if self.max_batch < 1 or self.max_queue < 1 or self.max_wait_ms < 0:
            raise ValueError(f"max_batch and max_queue must be at least 1 and max_wait_ms at least 0: {self}")


class Batcher:
    """One thread running the detector and embedder over the images of every request, batched."""

    def __init__(self, detector: MTCNNDetector, embedder: Embedder, limits: BatchLimits = BatchLimits(),
                 on_batch: Callable[[int, int], None] | None = None):
        self.detector, self.embedder, self.limits = detector, embedder, limits
        self._on_batch = on_batch  # (images, faces) of every run: the service's metrics
        self._jobs: collections.deque[_Job] = collections.deque()
        self._waiting = 0  # images queued or running
        self._coming = 0  # images of requests still being decoded: worth a batch's wait
        self._closing = False
        self._changed = threading.Condition()  # guards the four above
        self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Images waiting or running."""
        return self._waiting

    @contextlib.contextmanager
    def coming(self, images: int) -> Iterator[list[int]]:
        """Announce a request's ``images`` while they are decoded: a batch may wait for them. Pass what the
        block yields to ``submit``, which takes them off; the rest (unreadable images) go at the end."""
        announced = [images]
        with self._changed:
            self._coming += images
        try:
            yield announced
        finally:
            with self._changed:
                self._coming -= announced[0]
                self._changed.notify_all()

    def submit(self, items: Sequence[tuple[ImageSource, DecodedImage, FaceTask, bool]],
               announced: list[int] | None = None) -> list[Future]:
        """Queue (source, decoded image, face task, embed?) items; one future of an ``ImageResult`` each.

        All of a request's images are taken or none: QueueFull when they would pass ``max_queue``.
        """
        jobs = [_Job(source, decoded, task, embed, Future()) for source, decoded, task, embed in items]
        with self._changed:
            if self._waiting + len(jobs) > self.limits.max_queue:
                raise QueueFull(f"{self._waiting} images are waiting (at most {self.limits.max_queue})")
            self._waiting += len(jobs)
            self._jobs.extend(jobs)
            if announced:  # they are here now: no longer coming
                taken = min(announced[0], len(jobs))
                announced[0] -= taken
                self._coming -= taken
            self._changed.notify_all()
        return [job.future for job in jobs]

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop the thread."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def _take(self) -> list[_Job] | None:
        """The next batch: the first job waited for, then what is queued, and while images are on their way,
        what comes within ``max_wait_ms`` of the first; at most ``max_batch``. None once closed and empty."""
        with self._changed:
            self._changed.wait_for(lambda: self._jobs or self._closing)
            if not self._jobs:
                return None
            batch = [self._jobs.popleft()]
            deadline = time.monotonic() + self.limits.max_wait_ms / 1000
            while len(batch) < self.limits.max_batch:
                if self._jobs:
                    batch.append(self._jobs.popleft())
                    continue
                left = deadline - time.monotonic()
                if self._coming <= 0 or self._closing or left <= 0:
                    break
                self._changed.wait(left)
            return batch

    def _loop(self) -> None:
        while (jobs := self._take()) is not None:
            try:
                results = self._run(jobs)
            except Exception as exc:  # noqa: BLE001 - every waiting request is told, the thread goes on
                log.exception("batch of %d images failed", len(jobs))
                for job in jobs:
                    job.future.set_exception(exc)
            else:
                for job, result in zip(jobs, results):
                    job.future.set_result(result)
            finally:
                with self._changed:
                    self._waiting -= len(jobs)

    def _run(self, jobs: list[_Job]) -> list[ImageResult]:
        """One detector run over every image, one embedder run over every face to embed."""
        detected = detect_decoded([(j.source, j.decoded) for j in jobs], self.detector, [j.task.ready for j in jobs])
        results: list[ImageResult | None] = [None] * len(jobs)
        for embed in (True, False):
            picked = [k for k, j in enumerate(jobs) if j.embed is embed]
            if picked:
                done = finish([detected[k] for k in picked], [jobs[k].task for k in picked],
                              self.embedder if embed else None)
                for k, result in zip(picked, done):
                    results[k] = result
        if self._on_batch:
            self._on_batch(len(jobs), sum(len(r.faces) for r in results))
        return results
