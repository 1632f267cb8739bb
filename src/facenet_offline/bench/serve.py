"""The service under load: `facenet-offline serve` in a child process, driven over loopback.

A bounded, closed-loop client (``clients`` threads, each with one request in flight) sends LFW
photos, one per request, to detect+embed (``/v1/embed``, every face) and to identify
(``/v1/identify``) against galleries of synthetic faces. Each load runs for a warm-up, then a
timed window: images/s counts the requests finished in the window, latency is theirs. The same
loads run against a server with cross-request batching switched off (``--max-batch 1``), and the
library's offline batch rate (``FaceNet.embed_many``, the same photos and faces) is measured in
the same run, before and after the loads. A soak of 20,000 requests on a fresh server reads its
peak resident memory after 2,000 and after 20,000.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import logging
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
from tqdm import tqdm

from ..api import FaceNet
from ..data.lfw_dataset import check_lfw_dir, images_in_pairs, pairs_path, read_pairs
from ..recognition import Gallery
from ..runtime.base import usable_cpus
from ..serve.batcher import BatchLimits
from ..serve.child import ServerProcess
from .harness import RssSampler, peak_rss_mb
from .search import synthetic_gallery

log = logging.getLogger(__name__)

CLIENTS = (1, 4, 16, 64)
GALLERIES = (1_000, 100_000)
TARGET_CLIENTS = 16  # the load the service is held to: a share of the library's offline batch rate
ROUTES = {"embed": ("/v1/embed", {"faces": "all"}), "identify": ("/v1/identify", {"top_k": "3"})}


@dataclass(frozen=True)
class LoadResult:
    route: str  # embed (detect+embed) or identify
    gallery: int | None  # faces in the gallery (identify)
    clients: int
    batching: bool
    requests: int  # finished in the window, one image each
    seconds: float
    images_per_s: float
    p50_ms: float
    p99_ms: float
    errors: dict  # HTTP status -> count, in the window
    mean_batch: float | None  # images per detector run in the window (the server's /metrics, every worker)
    round: int = 0
    workers: int = 1  # server processes, the cores shared among them (``serve --workers``)


@dataclass
class _Request:
    started: float
    finished: float
    status: int


def lfw_photos(count: int) -> list[tuple[str, bytes]]:
    """(file name, JPEG bytes) of the first ``count`` distinct LFW photos of pairs.txt."""
    root = check_lfw_dir()
    return [(p.name, p.read_bytes()) for p in images_in_pairs(root, read_pairs(pairs_path(root)))[:count]]


def _batch_totals(url: str) -> tuple[float, float]:
    """(images, detector runs) the server has batched so far, from its Prometheus metrics."""
    total = runs = 0.0
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith("facenet_batch_images_sum "):
            total = float(line.split()[1])
        elif line.startswith("facenet_batch_images_count "):
            runs = float(line.split()[1])
    return total, runs


def encoded_requests(photos: list[tuple[str, bytes]], route: str) -> list[tuple[str, bytes, dict]]:
    """(path, body, headers) of a multipart request per photo to ``route``, encoded once: the clients only send."""
    path, fields = ROUTES[route]
    out = []
    for name, data in photos:
        request = httpx.Request("POST", "http://127.0.0.1" + path, files=[("images", (name, data, "image/jpeg"))],
                                data=fields)
        out.append((path, request.read(), {k: v for k, v in request.headers.items() if k.lower() != "host"}))
    return out


def _client_loop(port: int, requests: Sequence[tuple[str, bytes, dict]], turns: itertools.count,
                 keep_going: Callable[[], bool], record: Callable[[_Request], None]) -> None:
    """One client: a request, its whole answer read, the next request, while ``keep_going()``.

    The standard library's client over one kept-alive connection, sending ready bodies: the client shares
    the machine's cores with the server, so it does as little as it can.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        while keep_going():
            path, body, headers = requests[next(turns) % len(requests)]
            started = time.perf_counter()
            try:
                connection.request("POST", path, body, headers)
                answer = connection.getresponse()
                answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException):
                connection.close()  # reconnects on the next request
                status = 0  # no answer at all
            record(_Request(started, time.perf_counter(), status))
    finally:
        connection.close()


def drive(url: str, port: int, requests: Sequence[tuple[str, bytes, dict]], clients: int, seconds: float,
          warmup_s: float) -> tuple[list[_Request], float, tuple[float, float]]:
    """``clients`` clients sending ``requests`` in turn for ``warmup_s`` + ``seconds``: (requests finished in the timed window,
    the window's length, the images and detector runs batched in it)."""
    done: list[_Request] = []
    begin = time.perf_counter() + warmup_s
    end = begin + seconds
    turns = itertools.count()
    threads = [threading.Thread(target=_client_loop, args=(port, requests, turns, lambda: time.perf_counter() < end,
                                                           done.append))
               for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, begin - time.perf_counter()))
    before = _batch_totals(url)
    time.sleep(max(0.0, end - time.perf_counter()))
    after = _batch_totals(url)
    for t in threads:
        t.join()
    in_window = [r for r in done if begin <= r.finished <= end]
    return in_window, seconds, (after[0] - before[0], after[1] - before[1])


def measure_load(server: ServerProcess, route: str, gallery: int | None, batching: bool,
                 photos: list[tuple[str, bytes]], clients: int, seconds: float, warmup_s: float,
                 round: int = 0, workers: int = 1) -> LoadResult:
    requests, window, (images, runs) = drive(server.url, server.port, encoded_requests(photos, route), clients,
                                             seconds, warmup_s)
    ok = [r.finished - r.started for r in requests if r.status == 200]
    latency = np.array(ok) * 1000 if ok else np.array([np.nan])
    return LoadResult(route, gallery, clients, batching, len(ok), window, len(ok) / window,
                      float(np.percentile(latency, 50)), float(np.percentile(latency, 99)),
                      dict(Counter(str(r.status) for r in requests if r.status != 200)),
                      images / runs if runs else None, round, workers)


def offline_rate(fn: FaceNet, photos: list[tuple[str, bytes]], repeats: int = 3) -> list[float]:
    """Images/s of the library's batch call over ``photos`` (bytes, every face), ``repeats`` times."""
    data = [raw for _, raw in photos]
    list(fn.embed_many(data[:fn.batch_size], faces="all"))  # warm-up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in fn.embed_many(data, faces="all"):
            pass
        rates.append(len(data) / (time.perf_counter() - started))
    return rates


def fill_gallery(folder: Path, faces: int, model: dict) -> None:
    """Grow the gallery at ``folder`` to ``faces`` synthetic faces (five per person) made for ``model``."""
    with Gallery.open(folder, model=model, create=True) as gallery:
        have = len(gallery)
        if have >= faces:
            return
        vectors, _ = synthetic_gallery(faces)
        names = [f"person-{i // 5:06d}" for i in range(have, faces)]
        gallery.add_faces(names, vectors[have:], ["synthetic"] * len(names))


def soak(server: ServerProcess, photos: list[tuple[str, bytes]], requests: int, checkpoint: int,
         clients: int) -> dict:
    """``requests`` requests (detect+embed and identify in turn) from ``clients`` clients: the server's peak RSS
    after ``checkpoint`` and after all of them, and its resident memory over the run."""
    mixed = [r for pair in zip(encoded_requests(photos, "embed"), encoded_requests(photos, "identify")) for r in pair]
    turns, lock, peaks, counted = itertools.count(), threading.Lock(), {}, Counter()
    issued = itertools.count()
    bar = tqdm(total=requests, desc="serve soak", unit="req", dynamic_ncols=True)

    def record(r: _Request) -> None:
        with lock:
            counted[r.status] += 1
            n = sum(counted.values())
            bar.update(1)
            if n in (checkpoint, requests):
                peaks[n] = peak_rss_mb(server.pid)

    with RssSampler(server.pid, every_s=1.0) as rss:
        threads = [threading.Thread(target=_client_loop, args=(server.port, mixed, turns, lambda: next(issued) < requests,
                                                               record))
                   for _ in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    bar.close()
    first, last = peaks.get(checkpoint), peaks.get(requests)
    return {"requests": requests, "checkpoint": checkpoint, "clients": clients, "wall_s": round(wall, 1),
            "statuses": {str(k): v for k, v in counted.items()},
            "peak_mib_at_checkpoint": first, "peak_mib_at_end": last,
            "growth": None if not first or not last else round(last / first - 1, 4),
            "settled_mib": rss.settled_mib(), "drift_mib": rss.drift_mib(), "trace": rss.trace()}


def bench_serve(clients: Sequence[int] = CLIENTS, galleries: Sequence[int] = GALLERIES, seconds: float = 8.0,
                warmup_s: float = 2.0, rounds: int = 3, photos: int = 256, soak_requests: int = 20_000,
                soak_checkpoint: int = 2_000, soak_clients: int = TARGET_CLIENTS,
                target_clients: int = TARGET_CLIENTS, workers: int | None = None) -> dict:
    """Every load against the batching and the unbatching server, round by round (each round's windows close
    together in time, so their ratios see the same machine load), the offline rate in the rounds of the
    target load, then the soak on a fresh server. Detect+embed also runs against servers of ``workers``
    processes (default: one per usable core, one thread each), batched and unbatched."""
    workers = workers or usable_cpus()
    shots = lfw_photos(photos)
    fn = FaceNet()
    loads = [("embed", None)] + [("identify", size) for size in galleries]
    layouts = [(1, batching) for batching in (True, False)]
    layouts += [(workers, batching) for batching in (True, False)] if workers > 1 else []
    rows: list[LoadResult] = []
    offline: list[float] = []
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp, contextlib.ExitStack() as running, \
            tqdm(total=len(loads) * len(clients) * rounds, desc="serve loads", unit="round",
                 dynamic_ncols=True) as bar:
        gallery = Path(tmp) / "gallery"
        fill_gallery(gallery, galleries[0], fn.description)
        servers = {(n, batching): running.enter_context(ServerProcess(
            Path(tmp) / f"serve-{n}-{'batched' if batching else 'unbatched'}.log", "--gallery", str(gallery),
            "--quiet", "--workers", str(n), *([] if batching else ["--max-batch", "1"])))
            for n, batching in layouts}
        for route, size in loads:
            if size:
                fill_gallery(gallery, size, fn.description)  # the servers load the new index at their next search
            for n in clients:
                for r in range(rounds):
                    if route == "embed" and n == target_clients:
                        offline.append(offline_rate(fn, shots, repeats=1)[0])
                    for (procs, batching), server in servers.items():
                        if procs == 1 or route == "embed":
                            rows.append(measure_load(server, route, size, batching, shots, n, seconds, warmup_s, r,
                                                     procs))
                    bar.update(1)
        running.close()
        with ServerProcess(Path(tmp) / "soak.log", "--gallery", str(gallery), "--quiet") as server:
            soaked = soak(server, shots, soak_requests, soak_checkpoint, soak_clients)
    return {"photos": len(shots), "seconds": seconds, "warmup_s": warmup_s, "rounds": rounds,
            "batch_size": fn.batch_size, "max_batch": BatchLimits().max_batch,
            "max_wait_ms": BatchLimits().max_wait_ms, "target_clients": target_clients, "workers": workers,
            "cores": usable_cpus(),
            "offline_rates": [round(r, 2) for r in offline], "rows": [asdict(r) for r in rows], "soak": soaked}
