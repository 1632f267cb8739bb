"""gallery, identify, cluster."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from .common import count, input_paths, open_facenet, progress, report_failures, take_gallery_model


def cmd_gallery(args: argparse.Namespace) -> int:
    from ..distributed import is_archive
    from ..recognition import Gallery, people_folders

    if args.action in ("list", "remove"):
        with Gallery.open(args.gallery) as gallery:
            if args.action == "remove":
                print(f"removed {args.name} ({count(gallery.remove(args.name), 'face')}) from {args.gallery}")
                return 0
            model = gallery.model
            print(f"{args.gallery}: {count(len(gallery), 'face')} of {count(len(gallery.people()), 'person', 'people')}; "
                  f"model {model.get('model')} "
                  f"({model.get('precision')})")
            for name, faces in gallery.people():
                print(f"  {name}: {faces}")
        return 0
    if args.action == "build" and is_archive(args.paths[0]):
        report = _build_from_archive(args.paths[0], args.gallery)
    else:
        todo = {args.name: input_paths(args.paths)} if args.action == "add" else people_folders(args.paths[0])
        take_gallery_model(args)
        fn = open_facenet(args)
        with Gallery.open(args.gallery, create=True) as gallery, \
                progress(sum(len(p) for p in todo.values()), f"gallery {args.action}") as bar:
            report = gallery.enrol_people(todo, fn, progress=bar.update)
    failed = report_failures(report.failures)
    for source, face, name in report.skipped[:20]:
        print(f"{source}: face {face} is already enrolled as {name}; skipped")
    people = len({name for name, _, _ in report.added})
    print(f"added {count(len(report.added), 'face')} of {count(people, 'person', 'people')} to {args.gallery}"
          + (f"; {len(report.skipped)} already there, skipped" if report.skipped else "")
          + (f" ({failed} photos without a usable face)" if failed else ""))
    return 0 if report.added or report.skipped else 1


def _build_from_archive(folder: str, gallery_dir: str):
    """Enrol an embedded archive of DIR/<person>/<photos>: each photo's largest face, named by its folder."""
    from ..distributed import read_archive
    from ..recognition import Gallery
    from ..recognition.gallery import EnrolledPhoto

    archive = read_archive(folder)
    photos = []
    for result, digest in archive.images():
        if len(result.faces) > 1:  # an archive embedded with --select all: the largest face, as build takes
            result.faces = [max(result.faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))]
        photos.append(EnrolledPhoto(Path(result.source).parent.name, result, digest))
    print(f"enrolling {count(len(photos), 'photo')} of {folder} as embedded there ({archive.model['model']}, "
          f"{archive.model['precision']}); each named by its folder")
    with Gallery.open(gallery_dir, create=True) as gallery:
        return gallery.enrol_results(photos, archive.model)


def cmd_identify(args: argparse.Namespace) -> int:
    from ..cache import atomic_write_json
    from ..recognition import IDENTIFY_FAR, Gallery, identify

    paths = input_paths(args.paths)
    take_gallery_model(args)
    fn = open_facenet(args)
    with Gallery.open(args.gallery) as gallery:
        results = identify(paths, gallery, fn, args.top_k, args.threshold, args.far)
    point = fn.operating_point(args.threshold, args.far, default_far=IDENTIFY_FAR)
    print(f"open set: {point.describe()}; farther is \"unknown\"")
    rows = []
    for image in results:
        for f in image.faces:
            top = ", ".join(f"{m.name} {m.distance:.3f}" for m in f.matches)
            print(f"{image.source} face {f.face.index}: {f.identity}   [{top}]")
            rows.append({"source": image.source, "face": f.face.index, "box": [float(v) for v in f.face.box],
                         "identity": f.identity, "distance": None if math.isnan(f.distance) else f.distance,
                         "matches": [{"name": m.name, "distance": m.distance} for m in f.matches]})
    report_failures([(image.source, image.status) for image in results if not image.faces], args.out)
    if args.out:
        atomic_write_json(args.out, {"threshold": point.threshold, "operating_point": vars(point), "faces": rows,
                                     "images": {image.source: str(image.status) for image in results}})
    return 0 if rows else 1


def cmd_cluster(args: argparse.Namespace) -> int:
    from ..distributed import is_archive, read_archive
    from ..recognition import cluster
    from ..recognition.cluster import cluster_results
    from ..weights import MODELS

    if len(args.paths) == 1 and is_archive(args.paths[0]):
        archive = read_archive(args.paths[0])
        print(f"clustering the faces of {args.paths[0]} as embedded there ({archive.model['model']}, "
              f"{archive.model['precision']}, select {archive.settings['select']})")
        result = cluster_results((r for r, _ in archive.images()), archive.model, MODELS[archive.model["model"]],
                                 args.out, args.threshold)
    else:
        paths = input_paths(args.paths)
        fn = open_facenet(args)
        with progress(len(paths), "cluster") as bar:
            result = cluster(paths, fn, args.out, args.threshold, progress=bar.update)
    multi = [c for c in result.clusters if c.size > 1]
    print(f"{count(result.faces, 'face')} in {count(result.images, 'image')} -> {count(len(result.clusters), 'cluster')} "
          f"({len(multi)} with two or more faces; cosine distance cut {result.threshold:.3f}) "
          f"-> {Path(args.out) / 'clusters.json'} and contact sheets")
    return 0 if result.faces else 1
