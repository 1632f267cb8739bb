"""What a running service holds: one FaceNet, the batcher that runs every request's images together, the
gallery behind a lock, the keys and the metrics; and how requests reach them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from ..api import FaceNet
from ..data.images import ImageSource
from ..errors import ImageError
from ..face_loop import FaceTask, ImageResult
from ..recognition import BadNameError, Gallery, GalleryError, NameTakenError, UnknownPersonError
from ..status import Status
from . import keys as api_keys
from .batcher import Batcher, QueueFull
from .config import ServeConfig
from .inputs import RequestError, decode
from .metrics import Metrics


class Service:
    """What a running app holds: the models, the batcher, the gallery (behind a lock), the keys, the metrics."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.metrics = Metrics()
        self.keys = api_keys.load_keys(config.api_keys) if config.api_keys else None
        self.fn = FaceNet(config.model, config.precision, config.backend, config.detector_backend, config.threads,
                          weights=config.weights)
        self.fn.embedder.warm()  # before /readyz: the memory of the embedder's longest run is taken at start
        self.batcher = Batcher(self.fn.detector, self.fn.embedder, config.batch, self.metrics.on_batch)
        self.gallery = Gallery.open(config.gallery_path, create=True)
        self.gallery_lock = threading.Lock()
        self.model = dict(self.fn.description, detector_backend=self.fn.detector_backend)

    def close(self) -> None:
        self.batcher.close()
        with self.gallery_lock:
            self.gallery.close()
        self.metrics.close()

    async def run(self, images: list[tuple[str, bytes]], task: FaceTask, embed: bool) -> list[ImageResult]:
        """Decode the images (in a thread), run the readable ones through the batcher, keep the order.

        An unreadable image gets its error status among the others; a request of none readable is a 422.
        """
        limits = self.config.limits
        with self.batcher.coming(len(images)) as announced:
            decoded = await run_in_threadpool(lambda: [decode(label, raw, limits) for label, raw in images])
            readable = [(k, d) for k, d in enumerate(decoded) if not isinstance(d, ImageError)]
            if not readable:  # nothing to do: the request itself is refused, named by its first image
                first = decoded[0]
                raise RequestError(422, first.code, str(first), first.source)
            try:
                futures = self.batcher.submit([(ImageSource(images[k][0]), d, task, embed) for k, d in readable],
                                              announced)
            except QueueFull as exc:
                raise RequestError(503, "busy", f"the service is busy ({exc}); try again shortly.",
                                   headers={"Retry-After": "1"}) from None
        self.metrics.queue_depth.set(self.batcher.depth)
        try:
            done = await asyncio.wait_for(asyncio.gather(*(asyncio.wrap_future(f) for f in futures)),
                                          limits.timeout_s)
        except asyncio.TimeoutError:
            raise RequestError(504, "timeout", f"the images were not processed within {limits.timeout_s:g} s; "
                                               "send fewer at once or try again.") from None
        ready = iter(done)
        return [ImageResult(d.source, Status.error(d.reason, d.code)) if isinstance(d, ImageError) else next(ready)
                for d in decoded]

    async def gallery_call(self, work: Callable):
        """``work(gallery)`` in a thread, one at a time; the gallery's errors as 404 and 409 answers."""
        def locked():
            with self.gallery_lock:
                return work(self.gallery)

        try:
            return await run_in_threadpool(locked)
        except UnknownPersonError as exc:  # the library's message points at its own API; name the route instead
            said = str(exc).split(";")[0]
            raise RequestError(404, "not_found", f"{said}; GET /v1/people lists who is.") from None
        except NameTakenError as exc:
            raise RequestError(409, "name_taken", str(exc)) from None
        except BadNameError as exc:
            raise RequestError(422, "bad_field", str(exc), "name") from None
        except GalleryError as exc:
            raise RequestError(409, "gallery_refused", str(exc)) from None
