"""Command line: argument parsing and printing over library calls."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from .errors import FacenetOfflineError

log = logging.getLogger("facenet_offline")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from .weights import DEFAULT_MODEL, MODELS

    p.add_argument("--model", default=DEFAULT_MODEL, help=f"one of {', '.join(MODELS)} (default {DEFAULT_MODEL})")
    p.add_argument("--weights", help="path to the weights file (for user-supplied models such as vggface2)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--calibration", default="percentile", choices=["minmax", "entropy", "percentile"],
                   help="INT8 calibration method (default percentile, the most accurate in docs/precision.md)")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "openvino", "torch"],
                   help="embedding backend (default onnxruntime)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument("--providers", default=None,
                   help="comma-separated ONNX Runtime providers, e.g. CUDAExecutionProvider,CPUExecutionProvider")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    from .jobs import DEFAULT_CHUNK_SIZE

    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run with the same --out, settings and inputs (finished chunks kept)")
    p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                   help=f"inputs per chunk written to <out>.parts/ as the run goes (default {DEFAULT_CHUNK_SIZE})")


def cmd_models(args: argparse.Namespace) -> int:
    from .build import BuildOptions, build_facenet
    from .weights import MODELS, resolve_weights

    if args.action == "list":
        for spec in MODELS.values():
            try:
                where = str(resolve_weights(spec, args.weights if args.model == spec.name else None).path)
            except FacenetOfflineError:
                where = "not installed (user-supplied: " + ", ".join(
                    s.filename for s in spec.sources if s.user_supplied) + ")"
            acc = f"{spec.published_lfw_accuracy:.4f}" if spec.published_lfw_accuracy else "-"
            print(f"{spec.name:15s} {spec.tag}  {spec.training_set:14s} LFW {acc} ({spec.published_by})  {where}")
        return 0
    built = build_facenet(BuildOptions(model=args.model, weights_path=args.weights, opset=args.opset,
                                       precision=args.precision, calibration=args.calibration), force=args.force)
    if args.action == "path":
        print(built.path)
    else:
        print(f"{built.spec.name}: {built.path}")
        check = (f"parity vs torch {built.record['parity_max_abs_diff']:.2e}" if "parity_max_abs_diff" in built.record
                 else f"vs fp32: min cosine {built.record['vs_fp32']['min_cosine']:.5f}")
        print(f"  {built.record['precision']}, weights sha256 {built.record['weights']['sha256']}, "
              f"opset {built.record['opset']}, {check}")
    return 0


def _input_paths(inputs: list[str]) -> list[Path]:
    from .data.images import iter_image_paths

    missing = [p for p in inputs if not Path(p).exists() and not Path(p).is_symlink()]
    if missing:
        raise FacenetOfflineError(f"input not found: {', '.join(missing)}; check the path.")
    paths = list(iter_image_paths(inputs))
    if not paths:
        raise FacenetOfflineError(f"no images found in {', '.join(inputs)}.")
    return paths


def _open_embedder(args: argparse.Namespace):
    from .embedder import open_embedder

    providers = args.providers.split(",") if args.providers else None
    return open_embedder(args.model, args.backend, args.threads, providers, args.weights, args.precision,
                         args.calibration)


def _align_config(args: argparse.Namespace):
    from .detect import AlignConfig

    return AlignConfig(method=args.align, margin=args.margin)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc=desc, disable=None, dynamic_ncols=True)


def _run_config(args: argparse.Namespace):
    from .jobs import RunConfig

    return RunConfig(Path(args.out), args.chunk_size, args.resume)


def _report_failures(paths, statuses, is_failure) -> int:
    failed = 0
    for path, status in zip(paths, statuses):
        if is_failure(status):
            print(status if str(path) in status else f"{path}: {status}", file=sys.stderr)
            failed += 1
    return failed


def cmd_embed(args: argparse.Namespace) -> int:
    from .detect import Selection, open_detector
    from .embeddings import OK, distance_matrix
    from .jobs import embed_run

    if Path(args.out).suffix != ".npz":
        raise FacenetOfflineError(f"{args.out}: the output must be a .npz file (embeddings, paths, status).")
    paths = _input_paths(args.paths)
    embedder = _open_embedder(args)
    detector = None if args.aligned else open_detector(args.detector_backend, args.threads)
    result = embed_run(paths, embedder, _run_config(args), detector, args.detector_backend, _align_config(args),
                       Selection.parse(args.select), args.batch_size, progress_factory=_progress)
    failed = _report_failures(result.paths, result.status, lambda s: s != OK)
    n_ok = len(paths) - failed
    print(f"embedded {n_ok}/{len(paths)} images with {embedder.description['model']} "
          f"({embedder.backend.name}) -> {args.out}")
    if n_ok == 0:
        print(f"error: none of {len(paths)} inputs could be embedded (statuses in {args.out}).", file=sys.stderr)
        return 1
    if args.print_distances:
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
    from .detect import open_detector
    from .jobs import detect_run

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
    from .detect import Selection, open_detector
    from .pipeline import embed_images

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


def cmd_lfw(args: argparse.Namespace) -> int:
    from .detect import open_detector
    from .evaluate.lfw import LfwOptions, run_lfw
    from .evaluate.report import write_report
    from .evaluate.verification import ProtocolOptions

    embedder = _open_embedder(args)
    detector = open_detector(args.detector_backend, args.threads)
    options = LfwOptions(align=_align_config(args), select=args.select, flip=args.flip, batch_size=args.batch_size,
                         protocol=ProtocolOptions(distance=args.distance, subtract_mean=args.subtract_mean))
    folds = [int(f) - 1 for f in args.folds.split(",")] if args.folds else None
    run = run_lfw(embedder, detector, {"backend": args.detector_backend, "config": "default"}, args.lfw_dir,
                  args.pairs, options, use_cache=not args.no_cache, progress_factory=_progress, folds=folds)
    report = write_report(run, args.out)
    r = report["result"]
    print(f"LFW {report['pairs']} pairs, {report['images']} images, model {run.model['model']} "
          f"({run.model['precision']}, {run.model['backend']})")
    print(f"accuracy {r['accuracy_mean']:.5f} +- {r['accuracy_std']:.5f}   AUC {r['auc']:.4f}   EER {r['eer']:.4f}   "
          f"VAL {r['val_mean']:.5f} +- {r['val_std']:.5f} @ FAR {r['far_mean']:.5f}")
    print(f"no face found: {report['detection_failures']['count']} (centre-crop fallback); "
          f"misclassified pairs: {len(report['misclassified'])}")
    t = report["timings_s"]
    print("time (s): " + ", ".join(f"{k} {v}" for k, v in t.items() if k != "from_cache")
          + (f"; from cache: {', '.join(t['from_cache'])}" if t["from_cache"] else ""))
    print(f"report: {Path(args.out) / 'report.md'} (+ report.json, roc.png)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export.targets import export_target

    result = export_target(args.target, args.out, args.model, args.weights,
                           [int(b) for b in args.facenet_batches.split(",")])
    for name, path in result.files.items():
        print(f"{path}  (max abs difference vs generic {result.parity[name]:.1e})")
    for note in result.notes:
        print(note)
    print(f"{result.folder / 'README.md'} says what was changed")
    return 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    from .detect import Selection, open_detector
    from .offline import PreprocessConfig, preprocess
    from .weights import get_spec

    spec = get_spec(args.model)
    detector = open_detector(args.detector_backend, args.threads)
    if args.lfw:
        from .evaluate.lfw import LfwOptions, lfw_inputs

        folds = [int(f) - 1 for f in args.folds.split(",")] if args.folds else None
        root, _, rel = lfw_inputs(args.lfw_dir, args.pairs, folds)
        options = LfwOptions(batch_size=args.batch_size // 2)
        config = PreprocessConfig(args.batch_size, flip=True, select=options.select, align=options.align,
                                  fallback=True, pad_last=not args.no_pad)
        lfw = {"lfw_dir": str(root), "pairs": str(args.pairs or root / "pairs.txt"), "folds": folds,
               "options": options.to_dict()}
        paths, labels = [root / r for r in rel], rel
    else:
        if not args.paths:
            raise FacenetOfflineError("give image files or folders, or --lfw for the LFW pairs.")
        paths = _input_paths(args.paths)
        config = PreprocessConfig(args.batch_size, flip=args.flip, select=Selection.parse(args.select),
                                  align=_align_config(args), pad_last=not args.no_pad)
        lfw, labels = None, None
    info = preprocess(paths, args.out, detector, spec, config, labels, lfw, args.resume, _progress)
    ok = sum(img["status"] == "ok" for img in info["images"])
    print(f"{len(info['batches'])} batches of {config.batch_size} rows ({ok}/{len(info['images'])} images with a face"
          + (", mirror images included" if config.flip else "") + f") -> {Path(args.out) / 'input'}; "
          f"rows listed in {Path(args.out) / 'info.json'}")
    return 0 if ok else 1


def cmd_infer(args: argparse.Namespace) -> int:
    from .offline import infer

    if args.model.endswith(".onnx"):
        path, description = Path(args.model), {"model": args.model}
        if not path.is_file():
            raise FacenetOfflineError(f"{path}: not found; give an .onnx file or a model name.")
    else:
        from .build import BuildOptions, build_facenet

        built = build_facenet(BuildOptions(model=args.model, precision=args.precision))
        path = built.path
        description = {"model": built.spec.name, "backend": "onnxruntime", "precision": built.record["precision"],
                       "weights_sha256": built.record["weights"]["sha256"],
                       "onnx_sha256": built.record["files"]["facenet"]}
    n = infer(path, args.input, args.output, description, args.threads, args.resume, _progress)
    print(f"ran {n} input files through {path.name} -> {args.output}")
    return 0


def cmd_postprocess(args: argparse.Namespace) -> int:
    from .offline import postprocess

    result, report = postprocess(args.outputs, args.info, args.out, args.report)
    print(f"{int(result.ok.sum())}/{len(result.paths)} images embedded" + (f" -> {args.out}" if args.out else ""))
    if report:
        r = report["result"]
        print(f"LFW {report['pairs']} pairs: accuracy {r['accuracy_mean']:.5f} +- {r['accuracy_std']:.5f}   "
              f"AUC {r['auc']:.4f}   EER {r['eer']:.4f}" + (f"   report: {args.report}" if args.report else ""))
    return 0


def _open_gallery(args: argparse.Namespace, embedder=None, create: bool = False):
    from .recognition import Gallery

    return Gallery.open(args.gallery, embedder.description if embedder else None, create=create)


def cmd_gallery(args: argparse.Namespace) -> int:
    if args.action in ("list", "remove"):
        with _open_gallery(args) as gallery:
            if args.action == "remove":
                if not args.name:
                    raise FacenetOfflineError("gallery remove needs --name NAME")
                print(f"removed {args.name} ({gallery.remove(args.name)} faces) from {args.gallery}")
                return 0
            model = gallery.model
            print(f"{args.gallery}: {len(gallery)} faces of {len(gallery.people())} people; model {model.get('model')} "
                  f"({model.get('precision')})")
            for name, count in gallery.people():
                print(f"  {name}: {count}")
        return 0
    from .detect import open_detector
    from .recognition.enrol import enrol, people_folders

    embedder = _open_embedder(args)
    detector = open_detector(args.detector_backend, args.threads)
    if args.action == "add":
        if not args.name:
            raise FacenetOfflineError("gallery add needs --name NAME")
        todo = {args.name: _input_paths(args.paths)}
    else:
        if len(args.paths) != 1:
            raise FacenetOfflineError("gallery build takes one folder with a sub-folder per person")
        todo = people_folders(args.paths[0])
    failed = 0
    with _open_gallery(args, embedder, create=True) as gallery, \
            _progress(sum(len(p) for p in todo.values()), f"gallery {args.action}") as bar:
        added, status = enrol(gallery, todo, detector, embedder, progress=bar.update)
    for path, st in status.items():
        if st != "ok":
            failed += 1
            print(st if path in st else f"{path}: {st}", file=sys.stderr)
    print(f"added {added} faces of {len(todo)} people to {args.gallery}" + (f" ({failed} photos without a usable "
                                                                             "face)" if failed else ""))
    return 0 if added else 1


def cmd_identify(args: argparse.Namespace) -> int:
    from .detect import open_detector
    from .recognition import identify
    from .recognition.identify import default_threshold

    embedder = _open_embedder(args)
    threshold, source = (args.threshold, "given") if args.threshold is not None else default_threshold(embedder)
    with _open_gallery(args) as gallery:
        results, status = identify(_input_paths(args.paths), gallery, open_detector(args.detector_backend, args.threads),
                                   embedder, args.top_k, threshold)
    print(f"open-set threshold: squared L2 distance {threshold:.3f} ({source}); farther is \"unknown\"")
    rows = []
    for r in results:
        top = ", ".join(f"{m.name} {m.distance:.3f}" for m in r.matches)
        print(f"{r.source} face {r.face}: {r.identity}   [{top}]")
        rows.append({"source": r.source, "face": r.face, "box": r.box, "identity": r.identity,
                     "distance": r.distance, "matches": [{"name": m.name, "distance": m.distance} for m in r.matches]})
    for path, st in status.items():
        if st != "ok":
            print(st if path in st else f"{path}: {st}", file=sys.stderr)
    if args.out:
        from .cache import atomic_write_json

        atomic_write_json(args.out, {"threshold": threshold, "threshold_source": source, "faces": rows,
                                     "images": status})
    return 0 if results else 1


def cmd_cluster(args: argparse.Namespace) -> int:
    from .detect import open_detector
    from .recognition import cluster

    embedder = _open_embedder(args)
    paths = _input_paths(args.paths)
    with _progress(len(paths), "cluster") as bar:
        result = cluster(paths, open_detector(args.detector_backend, args.threads), embedder, args.out,
                         args.threshold, progress=bar.update)
    multi = [c for c in result["clusters"] if c["size"] > 1]
    print(f"{result['faces']} faces in {result['images']} images -> {len(result['clusters'])} clusters "
          f"({len(multi)} with two or more faces; cosine distance cut {result['threshold_cosine_distance']:.3f}) "
          f"-> {Path(args.out) / 'clusters.json'} and contact sheets")
    return 0 if result["faces"] else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench.report import render_markdown, write_report
    from .bench.run import run_benchmarks

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
                             search_sizes=[int(n) for n in args.search_sizes.split(",")])
    json_path, md_path = write_report(results, args.out)
    print(render_markdown(results))
    print(f"wrote {md_path} and {json_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facenet-offline", description="Offline face recognition with FaceNet.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list, build or locate the ONNX models")
    p.add_argument("action", choices=["list", "build", "path"])
    _add_model_args(p)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("embed", help="embed face images into 512-d vectors")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help="output .npz (embeddings, paths, status, meta)")
    p.add_argument("--aligned", action="store_true", help="inputs are ready face crops (resized to 160x160)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--strict", action="store_true", help="exit non-zero if any input failed")
    _add_run_args(p)
    p.add_argument("--print-distances", action="store_true", help="print the pairwise distance matrix")
    _add_model_args(p)
    _add_runtime_args(p)
    _add_face_args(p, select="largest")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("detect", help="detect faces (MTCNN) and write one JSON line per image")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help="output .jsonl")
    p.add_argument("--save-crops", metavar="DIR", help="also write each face's aligned crop as PNG")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--strict", action="store_true", help="exit non-zero if any input failed")
    _add_run_args(p)
    p.add_argument("--threads", type=int, default=None)
    _add_face_args(p, select="all")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("verify", help="are two photos of the same person?")
    p.add_argument("image1")
    p.add_argument("image2")
    p.add_argument("--threshold", type=float, default=None, help="squared L2 distance below which faces match")
    _add_model_args(p)
    _add_runtime_args(p)
    _add_face_args(p, select="largest")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("lfw", help="the LFW verification benchmark, raw images to report (the main job)")
    p.add_argument("--lfw-dir", default=None, help="LFW root (default ../shared/lfw or $FACENET_OFFLINE_LFW)")
    p.add_argument("--pairs", default=None, help="pairs file (default <lfw-dir>/pairs.txt)")
    p.add_argument("--folds", default=None, help="only these folds of the pairs file, 1-based, e.g. 1 or 1,2")
    p.add_argument("--out", default="out/lfw", help="folder for report.json, report.md, roc.png")
    p.add_argument("--batch-size", type=int, default=16)
    # Defaults: the best View 1 (development set) row of docs/lfw-variants.md.
    p.add_argument("--distance", default="angular", choices=["euclidean", "angular"])
    p.add_argument("--flip", default="concat", choices=["none", "concat", "sum"],
                   help="add the horizontally flipped crop's embedding (default concat)")
    p.add_argument("--subtract-mean", action=argparse.BooleanOptionalAction, default=True,
                   help="subtract the training folds' mean embedding (default on)")
    p.add_argument("--no-cache", action="store_true", help="recompute detections and embeddings")
    _add_model_args(p)
    _add_runtime_args(p)
    _add_face_args(p, select="centre-weighted")
    p.set_defaults(func=cmd_lfw)

    p = sub.add_parser("export", help="ONNX models for accelerator toolchains: generic, npu, tensorrt")
    p.add_argument("--target", required=True, choices=["generic", "npu", "tensorrt"])
    p.add_argument("--out", required=True, help="folder for the models and their tool files")
    p.add_argument("--model", default=None, help="FaceNet model (default casia-webface)")
    p.add_argument("--weights", default=None, help="weights file for a user-supplied model")
    p.add_argument("--facenet-batches", default="1,16", help="npu: FaceNet's static batch sizes (default 1,16)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("preprocess", help="detect and align, then write model inputs as raw .bin batches")
    p.add_argument("paths", nargs="*", help="image files or folders (or --lfw)")
    p.add_argument("--format", default="bin", choices=["bin"], help="raw float32 NCHW (docs/bin-format.md)")
    p.add_argument("--out", required=True, help="folder: input/batch-NNNNNN.bin and info.json")
    p.add_argument("--batch-size", type=int, default=32, help="rows per .bin file (default 32)")
    p.add_argument("--flip", action="store_true", help="add each face's mirror image (rows: faces, then mirrors)")
    p.add_argument("--no-pad", action="store_true", help="do not pad the last batch to --batch-size rows")
    p.add_argument("--lfw", action="store_true", help="the images of the LFW pairs, prepared as the lfw job does")
    p.add_argument("--lfw-dir", default=None)
    p.add_argument("--pairs", default=None)
    p.add_argument("--folds", default=None, help="with --lfw: only these folds, 1-based, e.g. 1")
    p.add_argument("--model", default="casia-webface", help="the model whose input to prepare")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run (finished batches kept)")
    p.add_argument("--threads", type=int, default=None)
    _add_face_args(p, select="largest")
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser("infer", help="offline runner: each input .bin through the model, one output .bin each")
    p.add_argument("--model", default="casia-webface", help="a model name or an .onnx file")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--input", required=True, help="folder of input .bin files")
    p.add_argument("--output", required=True, help="folder for <name>_0.bin outputs")
    p.add_argument("--resume", action="store_true", help="skip inputs whose outputs exist (same model only)")
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("postprocess", help="runner outputs back to embeddings, and for LFW the report")
    p.add_argument("--outputs", required=True, help="the runner's output folder")
    p.add_argument("--info", required=True, help="info.json written by preprocess")
    p.add_argument("--out", default=None, help="embeddings .npz")
    p.add_argument("--report", default=None, help="folder for the LFW report (when preprocess used --lfw)")
    p.set_defaults(func=cmd_postprocess)

    p = sub.add_parser("gallery", help="a gallery of known people: add, build, list, remove")
    p.add_argument("action", choices=["add", "build", "list", "remove"])
    p.add_argument("paths", nargs="*", help="add: photos of one person; build: a folder with a sub-folder per person")
    p.add_argument("--gallery", required=True, help="gallery folder (SQLite database and FAISS index)")
    p.add_argument("--name", help="add / remove: the person")
    _add_model_args(p)
    _add_runtime_args(p)
    p.add_argument("--detector-backend", default="openvino", choices=["openvino", "onnxruntime", "torch"])
    p.set_defaults(func=cmd_gallery)

    p = sub.add_parser("identify", help="who is in these photos, against a gallery")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--gallery", required=True)
    p.add_argument("--top-k", type=int, default=3, help="best matching people per face (default 3)")
    p.add_argument("--threshold", type=float, default=None,
                   help="squared L2 distance beyond which a face is unknown (default: the model's LFW threshold)")
    p.add_argument("--out", default=None, help="also write the results as JSON")
    _add_model_args(p)
    _add_runtime_args(p)
    p.add_argument("--detector-backend", default="openvino", choices=["openvino", "onnxruntime", "torch"])
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("cluster", help="group the faces of a folder by person, with contact sheets")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help="folder for clusters.json and cluster-NNN.png")
    p.add_argument("--threshold", type=float, default=None,
                   help="cosine distance at which groups stop merging (default: the model's measured cut, 0.475 "
                        "for casia-webface)")
    _add_model_args(p)
    _add_runtime_args(p)
    p.add_argument("--detector-backend", default="openvino", choices=["openvino", "onnxruntime", "torch"])
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("bench", help="measure throughput against peers and the machine's ceiling")
    p.add_argument("--suites", default="models,detection,e2e,precision,memory,search",
                   help="comma-separated: models, detection, e2e, precision, memory, search")
    p.add_argument("--models", default=None, help="models suite: comma-separated pnet,rnet,onet,facenet")
    p.add_argument("--model-backends", default=None,
                   help="models suite: comma-separated onnxruntime,openvino,torch,opencv-peer")
    p.add_argument("--model-batch-sizes", default=None, help="models suite: override the reference batch sizes")
    p.add_argument("--precisions", default="fp32,fp16,int8",
                   help="precision suite: comma-separated fp32,fp16,int8 (fp32 is the baseline and always needed)")
    p.add_argument("--memory-images", default="500,2000,5000",
                   help="memory suite: numbers of LFW photos to embed, each in a fresh process")
    p.add_argument("--search-sizes", default="10000,100000,1000000",
                   help="search suite: gallery sizes (synthetic vectors)")
    p.add_argument("--out", default="docs", help="folder for benchmarks.md and benchmarks.json")
    p.add_argument("--images", type=int, default=256, help="LFW images per detection run")
    p.add_argument("--peer-images", type=int, default=64, help="LFW images per peer run (the peer is slow)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-sizes", default="1,16,64")
    p.add_argument("--backends", default="openvino,onnxruntime")
    p.set_defaults(func=cmd_bench)
    return parser


def _add_face_args(p: argparse.ArgumentParser, select: str) -> None:
    from .detect import DETECTOR_BACKENDS
    from .detect.align import AlignMethod
    from .detect.mtcnn import Selection

    p.add_argument("--select", default=select, choices=[s.value for s in Selection],
                   help=f"which face(s) of an image to use (default {select})")
    p.add_argument("--align", default=AlignMethod.MARGIN.value, choices=[m.value for m in AlignMethod])
    p.add_argument("--margin", type=float, default=32.0, help="crop margin in pixels (default 32)")
    p.add_argument("--detector-backend", default="openvino", choices=DETECTOR_BACKENDS)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (FacenetOfflineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
