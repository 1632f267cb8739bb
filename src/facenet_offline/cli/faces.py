"""embed, detect, verify: faces in photos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import align_config, count, input_paths, open_facenet, progress, report_failures


def cmd_embed(args: argparse.Namespace) -> int:
    from ..distance import squared_l2_matrix
    from ..embedding_set import EmbeddingSet

    if args.engine == "ray":
        return _embed_on_ray(args)
    for flag in ("ray_address", "num_workers"):
        if getattr(args, flag) is not None:
            raise ValueError(f"--{flag.replace('_', '-')} is an option of --engine ray; add --engine ray.")
    if Path(args.out).suffix != ".npz":
        raise ValueError(f"out={args.out}: the output must be a .npz file (embeddings, paths, status).")
    paths = input_paths(args.paths)
    fn = open_facenet(args)
    summary = fn.embed_to_file(paths, args.out, args.select, args.aligned, args.resume, args.chunk_size,
                               args.batch_size, progress_factory=progress)
    failed = report_failures(summary.failures, args.out)
    print(f"embedded {count(summary.faces, 'face')} of {summary.ok}/{count(summary.inputs, 'image')} with "
          f"{fn.description['model']} ({fn.embedder.backend.name}) -> {args.out}")
    if summary.ok == 0:
        print(f"error: none of {summary.inputs} inputs could be embedded (statuses in {args.out}).", file=sys.stderr)
        return 1
    if args.print_distances:
        result = EmbeddingSet.load(args.out)
        ok = result.ok
        several = len(set(result.inputs[ok])) < ok.sum()
        names = [Path(p).stem + (f"#{f}" if several else "") for p, f, good in zip(result.paths, result.faces, ok)
                 if good]
        _print_distances(names, squared_l2_matrix(result.embeddings[ok]))
    return 1 if args.strict and failed else 0


def _embed_on_ray(args: argparse.Namespace) -> int:
    from ..distributed import embed_archive

    unsupported = [f for f, on in (("--aligned", args.aligned), ("--print-distances", args.print_distances),
                                   ("--chunk-size", args.chunk_size is not None), ("--providers", args.providers))
                   if on]
    if unsupported:
        raise ValueError(f"{', '.join(unsupported)}: not an option of --engine ray; drop it, or use the local engine.")
    paths = input_paths(args.paths)
    summary = embed_archive(paths, args.out, args.model, args.precision, args.backend, args.detector_backend,
                            args.weights, args.calibration, args.select, align_config(args), args.threads or 1,
                            args.batch_size, args.ray_address, args.num_workers)
    failed = report_failures(summary.failures, args.out)
    print(f"{summary.computed:,} of {count(summary.inputs, 'image')} embedded now, {summary.already_done:,} were "
          f"done already" + (f", {summary.redone:,} redone (changed or left partial)" if summary.redone else "")
          + f"; {count(summary.faces, 'face')} from {summary.ok:,} images -> {args.out} (Parquet, "
          f"{count(summary.archive_inputs, 'image')} in all)")
    if summary.computed:
        print(f"Ray: {summary.workers} detect + {summary.workers} embed actors of {args.threads or 1} thread(s) on "
              f"{summary.cpus:g} CPUs; {summary.seconds:.1f} s in all, of which starting Ray {summary.startup_seconds:.1f} s")
    if summary.ok == 0:
        print(f"error: none of {summary.inputs} inputs could be embedded (statuses in {args.out}).", file=sys.stderr)
        return 1
    return 1 if args.strict and failed else 0


def _print_distances(names: list[str], d) -> None:
    width = max(len(n) for n in names)
    print("\nsquared L2 distance between embeddings (same person: small; different: large)")
    print(" " * width + "".join(f"{i:>7d}" for i in range(len(names))))
    for i, name in enumerate(names):
        print(f"{name:<{width}s}" + "".join(f"{v:7.3f}" for v in d[i]) + f"   [{i}]")


def cmd_detect(args: argparse.Namespace) -> int:
    from ..data.images import ImageSource
    from ..engines import open_detector
    from ..face_loop import FaceOptions
    from ..folder_runs import RunConfig, detect_run

    paths = input_paths(args.paths)
    detector = open_detector(args.detector_backend, args.threads)
    summary = detect_run([ImageSource(str(p), path=p) for p in paths], detector,
                         RunConfig(Path(args.out), args.chunk_size, args.resume), args.detector_backend,
                         FaceOptions(args.select, align_config(args)), args.batch_size,
                         Path(args.save_crops) if args.save_crops else None, progress)
    print(f"{count(summary.faces, 'face')} in {count(summary.images, 'image')} ({summary.no_face} without a face, "
          f"{summary.errors} unreadable) -> {args.out}")
    if summary.errors == summary.images:
        print(f"error: none of {summary.images} inputs could be read (statuses in {args.out}).", file=sys.stderr)
        return 1
    return 1 if args.strict and summary.errors else 0


def cmd_verify(args: argparse.Namespace) -> int:
    fn = open_facenet(args)
    result = fn.verify(args.image1, args.image2, args.threshold, args.far)
    model = fn.description  # the threshold is this model's: say which it is
    print(f"{model['model']} ({model['precision']}): squared L2 distance {result.distance:.4f}; "
          f"{result.operating_point.describe()}")
    print("same person" if result.same else "different people")
    return 0 if result.same else 1
