"""bench: throughput and memory against peers and the machine's ceiling."""

from __future__ import annotations

import argparse


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
                             workers_seconds=args.workers_seconds, serve_seconds=args.serve_seconds,
                             serve_soak_requests=args.serve_soak_requests, facenet_model=args.model,
                             archive_images=args.archive_images)
    json_path, md_path = write_report(results, args.out)
    print(render_markdown(results))
    print(f"wrote {md_path} and {json_path}")
    return 0
