"""lfw (the main job) and bench."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import align_config, open_embedder, progress


def lfw_options(args: argparse.Namespace):
    """The LFW job's options as the command line gives them."""
    from ..evaluate.lfw import LfwOptions
    from ..evaluate.verification import ProtocolOptions

    return LfwOptions(align=align_config(args), select=args.select, flip=args.flip, batch_size=args.batch_size,
                      protocol=ProtocolOptions(distance=args.distance, subtract_mean=args.subtract_mean),
                      aligned=args.aligned)


def cmd_lfw(args: argparse.Namespace) -> int:
    from ..detect import open_detector
    from ..evaluate.lfw import run_lfw
    from ..evaluate.report import write_report

    embedder = open_embedder(args)
    detector = None if args.aligned else open_detector(args.detector_backend, args.threads)
    options = lfw_options(args)
    folds = [int(f) - 1 for f in args.folds.split(",")] if args.folds else None
    run = run_lfw(args.lfw_dir, embedder, detector, {"backend": args.detector_backend, "config": "default"},
                  args.pairs, options, use_cache=not args.no_cache, progress_factory=progress, folds=folds)
    report = write_report(run, args.out)
    r = report["result"]
    print(f"LFW {report['pairs']} pairs, {report['images']} images, model {run.model['model']} "
          f"({run.model['precision']}, {run.model['backend']})")
    print(f"accuracy {r['accuracy_mean']:.5f} +- {r['accuracy_std']:.5f}   AUC {r['auc']:.4f}   EER {r['eer']:.4f}   "
          f"VAL {r['val_mean']:.5f} +- {r['val_std']:.5f} @ FAR {r['far_mean']:.5f}")
    if args.aligned:
        print(f"aligned crops, no detection; pairs left out for a missing image: {report['skipped_pairs']}")
    else:
        print(f"no face found: {report['detection_failures']['count']} (centre-crop fallback); ", end="")
    print(f"misclassified pairs: {len(report['misclassified'])}")
    t = report["timings_s"]
    print("time (s): " + ", ".join(f"{k} {v}" for k, v in t.items() if k != "from_cache")
          + (f"; from cache: {', '.join(t['from_cache'])}" if t["from_cache"] else ""))
    print(f"report: {Path(args.out) / 'report.md'} (+ report.json, roc.png)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ..bench.report import render_markdown, write_report
    from ..bench.run import run_benchmarks

    model_sizes = None
    if args.model_batch_sizes:
        sizes = [int(b) for b in args.model_batch_sizes.split(",")]
        model_sizes = {m: sizes for m in ("pnet", "rnet", "onet", "facenet")}
    results = run_benchmarks(args.suites.split(","), images=args.images, repeats=args.repeats,
                             batch_sizes=[int(b) for b in args.batch_sizes.split(",")],
                             backends=args.backends.split(","), peer_images=args.peer_images,
                             models=args.models.split(",") if args.models else None,
                             model_backends=args.model_backends.split(",") if args.model_backends else None,
                             model_batch_sizes=model_sizes, precisions=args.precisions.split(","),
                             memory_sizes=[int(n) for n in args.memory_images.split(",")],
                             memory_mixed_sizes=[int(n) for n in args.memory_mixed_images.split(",") if n],
                             memory_largest_sizes=[int(n) for n in args.memory_largest_images.split(",") if n],
                             memory_camera_sizes=[int(n) for n in args.memory_camera_images.split(",") if n],
                             search_sizes=[int(n) for n in args.search_sizes.split(",")],
                             workers_seconds=args.workers_seconds)
    json_path, md_path = write_report(results, args.out)
    print(render_markdown(results))
    print(f"wrote {md_path} and {json_path}")
    return 0
