"""lfw: the main job, the LFW benchmark from raw images to report."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import align_config, open_embedder, progress


def lfw_options(args: argparse.Namespace):
    """The LFW job's options as the command line gives them."""
    from ..evaluate.lfw_job import LfwOptions
    from ..evaluate.verification import ProtocolOptions
    from ..weights import get_spec

    distance, flip, subtract_mean = get_spec(args.model).lfw_protocol  # what View 1 chose for this model
    return LfwOptions(align=align_config(args), select=args.select, flip=args.flip or flip,
                      batch_size=args.batch_size, aligned=args.aligned,
                      protocol=ProtocolOptions(distance=args.distance or distance,
                                               subtract_mean=subtract_mean if args.subtract_mean is None
                                               else args.subtract_mean))


def cmd_lfw(args: argparse.Namespace) -> int:
    from ..engines import open_detector
    from ..evaluate.lfw_job import run_lfw
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
    folds_n = len(r["fold_accuracy"])
    v = report["val"]
    val = (f"VAL {r['val_mean']:.5f} +- {r['val_std']:.5f} @ FAR {r['far_mean']:.5f}" if v["measured"]
           else f"VAL not measured (FAR {v['far_target']:g} needs {int(1 / v['far_target']):,} different-person "
                f"pairs to train on; a fold has {v['different_pairs_trained_on']:,})")
    print(f"accuracy {r['accuracy_mean']:.5f} +- {r['accuracy_std']:.5f}   AUC {r['auc']:.4f}   EER {r['eer']:.4f}   "
          + val)
    if len(run.pairs) < 20 * folds_n:
        print(f"note: {len(run.pairs)} pairs in {folds_n} folds: each fold's accuracy moves in steps of "
              f"1/{len(run.pairs) // folds_n}")
    if args.aligned:
        print(f"aligned crops, no detection; pairs left out for a missing image: {report['skipped_pairs']}")
    else:
        print(f"no face found: {report['detection_failures']['count']} (centre-crop fallback); ", end="")
    print(f"misclassified pairs: {len(report['misclassified'])}")
    t = report["timings_s"]
    print("time (s; the stages overlap): " + ", ".join(f"{k} {v}" for k, v in t.items() if k != "from_cache")
          + (f"; from cache: {', '.join(t['from_cache'])}" if t["from_cache"] else ""))
    print(f"report: {Path(args.out) / 'report.md'} (+ report.json, roc.png)")
    return 0
