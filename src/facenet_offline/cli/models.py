"""models and export: building, locating and exporting the ONNX models."""

from __future__ import annotations

import argparse

from ..errors import FacenetOfflineError


def cmd_models(args: argparse.Namespace) -> int:
    from ..model_cache import BuildOptions, build_facenet
    from ..weights import MODELS, resolve_weights

    if args.action == "fetch":
        from ..weights.fetch import fetch_weights

        path = fetch_weights(args.name, args.archive, show_progress=True)
        print(f"{path}  (sha256 checked)")
        print(f"next: facenet-offline models build --model {args.name}")
        return 0
    if args.action == "list":
        for spec in MODELS.values():
            try:
                where = str(resolve_weights(spec, args.weights if args.model == spec.name else None).path)
            except FacenetOfflineError:
                where = (f"not installed (facenet-offline models fetch {spec.name})" if spec.fetchable else
                         "not installed (user-supplied: " + ", ".join(
                             s.filename for s in spec.sources if s.user_supplied) + ")")
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


def cmd_export(args: argparse.Namespace) -> int:
    from ..export.targets import export_target

    try:
        width, height = (int(v) for v in args.image_size.lower().split("x"))
    except ValueError:
        raise ValueError(f"image_size={args.image_size}: give the photo size as WxH, e.g. 250x250") from None
    result = export_target(args.target, args.out, args.model, args.weights,
                           [int(b) for b in args.facenet_batches.split(",")], args.npu_shapes, (width, height))
    for name, path in result.files.items():
        print(f"{path}  (max abs difference vs generic {result.parity[name]:.1e})")
    for note in result.notes:
        print(note)
    print(f"{result.folder / 'README.md'} says what was changed")
    return 0
