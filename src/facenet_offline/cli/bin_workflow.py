"""preprocess, infer, postprocess: the .bin workflow of offline accelerator runners."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import FacenetOfflineError
from .common import align_config, count, input_paths, progress


def cmd_preprocess(args: argparse.Namespace) -> int:
    from ..bin_workflow import PreprocessConfig, preprocess
    from ..detect import Selection
    from ..engines import open_detector
    from ..weights import get_spec

    spec = get_spec(args.model)
    detector = open_detector(args.detector_backend, args.threads)
    if args.lfw:
        from ..data.lfw_dataset import pairs_path
        from ..evaluate.lfw_job import LfwOptions, lfw_inputs

        folds = [int(f) - 1 for f in args.folds.split(",")] if args.folds else None
        root, _, rel = lfw_inputs(args.lfw_dir, args.pairs, folds)
        options = LfwOptions(batch_size=args.batch_size // 2)
        config = PreprocessConfig(args.batch_size, flip=True, select=options.select, align=options.align,
                                  fallback=True, pad_last=not args.no_pad)
        lfw = {"lfw_dir": str(root), "pairs": str(pairs_path(root, args.pairs)), "folds": folds,
               "options": options.to_dict()}
        paths, labels = [root / r for r in rel], rel
    else:
        if not args.paths:
            raise FacenetOfflineError("give image files or folders, or --lfw for the LFW pairs.")
        paths = input_paths(args.paths)
        config = PreprocessConfig(args.batch_size, flip=args.flip, select=Selection.parse(args.select),
                                  align=align_config(args), pad_last=not args.no_pad)
        lfw, labels = None, None
    info = preprocess(paths, args.out, detector, spec, config, labels, lfw, args.resume, progress)
    ok = sum(img["row"] is not None for img in info["images"])
    print(f"{count(len(info['batches']), 'batch', 'batches')} of {config.batch_size} rows "
          f"({ok}/{count(len(info['images']), 'image')} with a face"
          + (", mirror images included" if config.flip else "") + f") -> {Path(args.out) / 'input'}; "
          f"rows listed in {Path(args.out) / 'info.json'}")
    return 0 if ok else 1


def cmd_infer(args: argparse.Namespace) -> int:
    from ..bin_workflow import infer

    if args.model.endswith(".onnx"):
        path, description = Path(args.model), {"model": args.model}
        if not path.is_file():
            raise FacenetOfflineError(f"{path}: not found; give an .onnx file or a model name.")
    else:
        from ..model_cache import BuildOptions, build_facenet

        built = build_facenet(BuildOptions(model=args.model, precision=args.precision))
        path = built.path
        description = {"model": built.spec.name, "backend": "onnxruntime", "precision": built.record["precision"],
                       "weights_sha256": built.record["weights"]["sha256"],
                       "onnx_sha256": built.record["files"]["facenet"]}
    n = infer(args.input, args.output, path, description, args.threads, args.resume, progress)
    print(f"ran {count(n, 'input file')} through {path.name} -> {args.output}")
    return 0


def cmd_postprocess(args: argparse.Namespace) -> int:
    from ..bin_workflow import postprocess

    result, report = postprocess(args.outputs, args.info, args.out, args.report)
    print(f"{int(result.ok.sum())}/{len(result.paths)} images embedded" + (f" -> {args.out}" if args.out else ""))
    if report:
        r = report["result"]
        print(f"LFW {report['pairs']} pairs: accuracy {r['accuracy_mean']:.5f} +- {r['accuracy_std']:.5f}   "
              f"AUC {r['auc']:.4f}   EER {r['eer']:.4f}" + (f"   report: {args.report}" if args.report else ""))
    return 0
