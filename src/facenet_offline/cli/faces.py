"""embed, detect, verify: faces in photos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import FacenetOfflineError
from .common import _input_paths, _open_embedder, _align_config, _progress, _run_config, _report_failures


def cmd_embed(args: argparse.Namespace) -> int:
    from ..detect import Selection, open_detector
    from ..embeddings import EmbeddingSet, distance_matrix
    from ..jobs import embed_run

    if Path(args.out).suffix != ".npz":
        raise FacenetOfflineError(f"{args.out}: the output must be a .npz file (embeddings, paths, status).")
    paths = _input_paths(args.paths)
    embedder = _open_embedder(args)
    detector = None if args.aligned else open_detector(args.detector_backend, args.threads)
    summary = embed_run(paths, embedder, _run_config(args), detector, args.detector_backend, _align_config(args),
                        Selection.parse(args.select), args.batch_size, progress_factory=_progress)
    failed = _report_failures(summary.failures, args.out)
    n_ok = summary.ok
    print(f"embedded {n_ok}/{len(paths)} images with {embedder.description['model']} "
          f"({embedder.backend.name}) -> {args.out}")
    if n_ok == 0:
        print(f"error: none of {len(paths)} inputs could be embedded (statuses in {args.out}).", file=sys.stderr)
        return 1
    if args.print_distances:
        result = EmbeddingSet.load(args.out)
        _print_distances(result.paths, result.embeddings, result.ok, distance_matrix)
    return 1 if args.strict and failed else 0


def _print_distances(paths, embeddings, ok, distance_matrix) -> None:
    names = [Path(p).stem for p, good in zip(paths, ok) if good]
    d = distance_matrix(embeddings[ok])
    width = max(len(n) for n in names)
    print("\nsquared L2 distance between embeddings (same person: small; different: large)")
    print(" " * width + "".join(f"{i:>7d}" for i in range(len(names))))
    for i, name in enumerate(names):
        print(f"{name:<{width}s}" + "".join(f"{v:7.3f}" for v in d[i]) + f"   [{i}]")


def cmd_detect(args: argparse.Namespace) -> int:
    from ..detect import open_detector
    from ..jobs import detect_run

    paths = _input_paths(args.paths)
    detector = open_detector(args.detector_backend, args.threads)
    summary = detect_run(paths, detector, _run_config(args), args.detector_backend, _align_config(args), args.select,
                         args.batch_size, Path(args.save_crops) if args.save_crops else None, _progress)
    print(f"{summary.faces} faces in {summary.images} images ({summary.no_face} without a face, "
          f"{summary.errors} unreadable) -> {args.out}")
    if summary.errors == summary.images:
        print(f"error: none of {summary.images} inputs could be read (statuses in {args.out}).", file=sys.stderr)
        return 1
    return 1 if args.strict and summary.errors else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..detect import Selection, open_detector
    from ..pipeline import embed_images

    paths = [Path(args.image1), Path(args.image2)]
    for p in paths:
        if not p.is_file():
            raise FacenetOfflineError(f"{p}: not found; check the path.")
    embedder = _open_embedder(args)
    result = embed_images(paths, open_detector(args.detector_backend, args.threads), embedder, _align_config(args),
                          Selection.parse(args.select), batch_size=2)
    for path, status in zip(result.paths, result.status):
        if status != "ok":
            raise FacenetOfflineError(f"{path}: {status}; cannot verify.")
    distance = float(np.sum((result.embeddings[0] - result.embeddings[1]) ** 2))
    threshold = args.threshold if args.threshold is not None else embedder.spec.threshold
    if threshold is None:
        raise FacenetOfflineError(f"no verification threshold is known for {embedder.spec.name}; pass --threshold T "
                                  f"(run `facenet-offline lfw --model {embedder.spec.name} --distance euclidean "
                                  "--flip none --no-subtract-mean` to measure one).")
    source = "given" if args.threshold is not None else embedder.spec.threshold_source
    same = distance < threshold
    print(f"squared L2 distance {distance:.4f} (threshold {threshold:.2f} for {embedder.spec.name}: {source})")
    print("same person" if same else "different people")
    return 0 if same else 1
