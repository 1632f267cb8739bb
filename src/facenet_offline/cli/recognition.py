"""gallery, identify, cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import FacenetOfflineError
from .common import _input_paths, _open_embedder, _progress, _report_failures


def _open_gallery(args: argparse.Namespace, embedder=None, create: bool = False):
    from ..recognition import Gallery

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
    from ..detect import open_detector
    from ..recognition.enrol import enrol, people_folders

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
    with _open_gallery(args, embedder, create=True) as gallery, \
            _progress(sum(len(p) for p in todo.values()), f"gallery {args.action}") as bar:
        added, status = enrol(gallery, todo, detector, embedder, progress=bar.update)
    failed = _report_failures([(path, st) for path, st in status.items() if st != "ok"])
    print(f"added {added} faces of {len(todo)} people to {args.gallery}" + (f" ({failed} photos without a usable "
                                                                             "face)" if failed else ""))
    return 0 if added else 1


def cmd_identify(args: argparse.Namespace) -> int:
    from ..detect import open_detector
    from ..recognition import identify
    from ..recognition.identify import default_threshold

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
    _report_failures([(path, st) for path, st in status.items() if st != "ok"], args.out)
    if args.out:
        from ..cache import atomic_write_json

        atomic_write_json(args.out, {"threshold": threshold, "threshold_source": source, "faces": rows,
                                     "images": status})
    return 0 if results else 1


def cmd_cluster(args: argparse.Namespace) -> int:
    from ..detect import open_detector
    from ..recognition import cluster

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
