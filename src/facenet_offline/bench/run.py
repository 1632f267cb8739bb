"""Run the benchmark suites and collect their raw figures."""

from __future__ import annotations

import datetime
import logging
import tempfile
import time
from collections.abc import Sequence

import torch

from ..engines import open_detector, open_embedder
from ..evaluate.lfw_job import Flip, run_lfw
from ..evaluate.report import write_report
from ..runtime.base import usable_cpus
from ..runtime.openvino import has_bf16
from ..versions import library_versions
from ..weights import DEFAULT_MODEL
from .archive import bench_archive
from .ceiling import gemm_gflops
from .detection import bench_detection
from .flops import facenet_flops
from .harness import MachineInfo, lfw_images
from .memory import bench_memory
from .models import BACKENDS, FACENET_EXTRA, SHAPES, bench_models
from .precision import VARIANTS, bench_precision
from .search import bench_search
from .serve import bench_serve
from .workers import bench_workers, default_layouts, workers_section

log = logging.getLogger(__name__)

SUITES = ("models", "detection", "e2e", "precision", "memory", "search", "workers", "serve", "archive")


def run_benchmarks(suites: Sequence[str] = SUITES, images: int = 256, repeats: int = 3,
                   batch_sizes: Sequence[int] = (1, 16, 64), backends: Sequence[str] = ("openvino", "onnxruntime"),
                   peer_images: int | None = None, models: Sequence[str] | None = None,
                   model_backends: Sequence[str] | None = None, model_batch_sizes: dict | None = None,
                   precisions: Sequence[str] = ("fp32", "fp16", "int8", "bf16"),
                   memory_sizes: Sequence[int] = (500, 2000, 5000, 13233),
                   memory_mixed_sizes: Sequence[int] = (500, 2000, 5000),
                   memory_largest_sizes: Sequence[int] = (500, 2000),
                   memory_camera_sizes: Sequence[int] = (100, 400),
                   search_sizes: Sequence[int] = (10_000, 100_000, 1_000_000),
                   workers_seconds: float = 4.0, serve_seconds: float = 8.0,
                   serve_soak_requests: int = 20_000, facenet_model: str = DEFAULT_MODEL,
                   archive_images: int = 5000) -> dict:
    """Every figure of the requested suites, with the machine and its ceiling measured in the same run.

    ``facenet_model`` is the registry model of the FaceNet figures of the models, e2e and precision suites.
    """
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise ValueError(f"Unknown benchmark suite(s) {', '.join(unknown)}. Valid: {', '.join(SUITES)}.")
    results: dict = {"date": datetime.date.today().isoformat(),
                     "machine": MachineInfo(versions=library_versions()).to_dict()}
    gflops, timing = gemm_gflops()
    results["ceiling"] = {"n": 2048, "threads": torch.get_num_threads(), "gflops": gflops, "timing": timing.summary()}
    if "models" in suites:
        rows = bench_models(models or tuple(SHAPES), model_backends or BACKENDS + FACENET_EXTRA, model_batch_sizes,
                            repeats=repeats, facenet_model=facenet_model)
        for row in rows:
            row.setdefault("ceiling_gflops", gflops)
            row["date"] = results["date"]
        results["models"] = {"rows": rows, "facenet_gflop_per_image": facenet_flops() / 1e9,
                             "ceiling_gflops": gflops, "date": results["date"]}
    if "e2e" in suites:
        # Each row with the ceiling of its own run: a kept e2e section is set against its run's.
        results["e2e"] = {p: {**_end_to_end(p, facenet_model), "ceiling_gflops": gflops, "gflop_per_image": facenet_flops() / 1e9}
                          for p in ("fp32", "int8")}
    if "precision" in suites:
        variants = [v for v in VARIANTS if v.label in precisions]
        if "bf16" in precisions and not has_bf16():
            log.warning("precision suite: this CPU has no native bfloat16 arithmetic; the bf16 row is left out")
            variants = [v for v in variants if v.label != "bf16"]
        results["precision"] = bench_precision(variants, model=facenet_model)
        gflop_per_image = facenet_flops() / 1e9
        for row in results["precision"]:
            row.update(ceiling_gflops=gflops, gflop_per_image=gflop_per_image)
    if "memory" in suites:
        section = bench_memory(memory_sizes, mixed_sizes=memory_mixed_sizes, largest_sizes=memory_largest_sizes,
                               camera_sizes=memory_camera_sizes)
        results["memory"] = {**section, "date": results["date"]}
    if "search" in suites:
        results["search"] = {**bench_search(search_sizes), "date": results["date"], "ceiling_gflops": gflops}
    if "workers" in suites:
        cores = usable_cpus()
        rows = bench_workers(default_layouts(cores), workers_seconds, repeats=repeats, images=images)
        results["workers"] = {**workers_section(rows, workers_seconds, cores, images, results["date"]),
                              "ceiling_gflops": gflops, "gflop_per_image": facenet_flops() / 1e9}
    if "serve" in suites:
        results["serve"] = {**bench_serve(seconds=serve_seconds, rounds=repeats, soak_requests=serve_soak_requests,
                                          soak_checkpoint=min(2_000, serve_soak_requests // 10)),
                            "date": results["date"]}
    if "archive" in suites:
        results["archive"] = {**bench_archive(archive_images, rounds=max(1, min(repeats, 2))), "date": results["date"]}
    if "detection" in suites:
        imgs = lfw_images(images)
        rows = bench_detection(imgs, backends, batch_sizes, peer_images=peer_images, repeats=repeats)
        results["detection"] = {"images": len(imgs), "ceiling_gflops": gflops, "rows": [
            {"engine": r.engine, "batch_size": r.batch_size, "faces": r.faces, "timing": r.timing.summary(),
             "peer_rate": None if r.peer_rate is None else round(r.peer_rate, 2),
             "peer_ratios": [round(x, 4) for x in r.ratios],
             "net_seconds": [round(x, 6) for x in r.net_seconds], "net_peer_ratios": [round(x, 4) for x in r.net_ratios],
             "net_gflop": round(r.net_flops / 1e9, 4)}
            for r in rows]}
    # Which machine measured each section: a later run of other suites, maybe elsewhere, keeps it.
    results["measured_on"] = {s: {"cpu": results["machine"]["cpu"], "date": results["date"]} for s in SUITES
                              if s in results}
    return results


def _end_to_end(precision: str, model: str = DEFAULT_MODEL) -> dict:
    """The whole LFW job from raw JPEG to report, without caches, at the default (best) settings."""
    embedder, detector = open_embedder(model, precision=precision), open_detector()
    started = time.perf_counter()
    run = run_lfw(None, embedder, detector, {"backend": "openvino", "config": "default"}, use_cache=False)
    with tempfile.TemporaryDirectory() as tmp:
        write_report(run, tmp)
    wall = time.perf_counter() - started
    t = run.timings
    passes = run.images * (1 if run.options.flip is Flip.NONE else 2)  # a flipped crop is a pass of its own
    return {"images": run.images, "pairs": len(run.pairs), "wall_s": wall, "images_per_s": run.images / wall,
            "facenet_passes": passes,
            "accuracy": run.result.accuracy_mean, "model": run.model, "options": run.options.to_dict(),
            "stages_s": {"decode_wait": t.decode, "detect": t.detect, "align": t.align, "embed": t.embed,
                         "protocol": t.protocol}}
