"""embed --engine ray: an archive embedded by Ray Data (local, 2 CPUs) into Parquet, resumed, and used.

The Ray runs share one folder of 150 LFW photos (in person folders) and bad files; the single-process
``embed`` of the same folder is the reference every Ray result must equal row for row.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from facenet_offline import embed_archive, read_archive
from facenet_offline.cli import main
from facenet_offline.data.lfw_dataset import images_in_pairs
from facenet_offline.distributed import ArchiveError, archive
from facenet_offline.distributed.archive_table import (
    MANIFEST,
    drop_inputs,
    part_files,
    recorded_inputs,
    schema,
    write_manifest,
    write_part,
)
from facenet_offline.embedding_set import EmbeddingSet
from facenet_offline.recognition import Gallery

PHOTOS = 150


@pytest.fixture(scope="module")
def photos(tmp_path_factory, lfw_dir, lfw_pairs):
    """150 LFW photos as <person>/<photo>, and a folder of bad files: text named .jpg, a truncated JPEG,
    an empty file, a photo without a face and one too small to hold one."""
    root = tmp_path_factory.mktemp("archive") / "people"
    for path in images_in_pairs(lfw_dir, lfw_pairs)[:PHOTOS]:
        (root / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / path.parent.name / path.name)
    bad = root / "bad"
    bad.mkdir()
    (bad / "notes.jpg").write_text("not a photo")
    first = next(iter(sorted(root.glob("*/*.jpg"))))
    (bad / "truncated.jpg").write_bytes(first.read_bytes()[:2000])
    (bad / "empty.jpg").write_bytes(b"")
    from PIL import Image

    Image.new("RGB", (300, 200), (90, 140, 200)).save(bad / "sky.png")
    Image.new("RGB", (24, 24), (200, 180, 160)).save(bad / "tiny.png")
    return root


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory, built_default, built_mtcnn):
    """The single-process embed of every face of the folder."""
    out = tmp_path_factory.mktemp("reference") / "faces.npz"
    assert main(["embed", str(photos), "--out", str(out), "--select", "all"]) == 0
    return EmbeddingSet.load(out)


@pytest.fixture(scope="module")
def embedded(photos, tmp_path_factory, built_default, built_mtcnn):
    """The same folder embedded by the Ray engine through the Python API."""
    out = tmp_path_factory.mktemp("ray") / "faces"
    summary = embed_archive(photos, out, faces="all", batch_size=16)
    return out, summary


def _rows(s: EmbeddingSet) -> list[tuple]:
    order = sorted(range(len(s.paths)), key=lambda i: (s.paths[i], int(s.faces[i])))
    return [(s.paths[i], int(s.faces[i]), str(s.status[i])) for i in order], order


def assert_same_rows(archive_set: EmbeddingSet, reference: EmbeddingSet) -> None:
    """Row for row: the same inputs, faces and statuses; embeddings within 1e-6, boxes within 1e-3 px."""
    got, got_order = _rows(archive_set)
    want, want_order = _rows(reference)
    assert got == want
    a, b = archive_set.embeddings[got_order], reference.embeddings[want_order]
    ok = archive_set.ok[got_order]
    assert np.isnan(a[~ok]).all() and np.isnan(b[~ok]).all()
    assert np.abs(a[ok] - b[ok]).max() < 1e-6
    assert np.allclose(archive_set.boxes[got_order][ok], reference.boxes[want_order][ok], atol=1e-3)


def test_ray_engine_equals_the_single_process_embed_row_for_row(embedded, reference, photos):
    out, summary = embedded
    assert summary.inputs == PHOTOS + 5 and summary.computed == PHOTOS + 5 and summary.already_done == 0
    assert summary.workers == 1 and summary.cpus == 2  # one detect and one embed actor on this machine's 2 cores
    assert {os.path.basename(p) for p, _ in summary.failures} == {"notes.jpg", "truncated.jpg", "empty.jpg",
                                                                     "sky.png", "tiny.png"}
    result = read_archive(out)
    assert len(set(result.paths)) == PHOTOS + 5
    assert any(f > 0 for f in result.faces)  # some photos give several faces: every face is a row
    assert_same_rows(result.to_embedding_set(), reference)
    statuses = {os.path.basename(p): str(s) for p, s in zip(result.paths, result.status)}
    assert statuses["sky.png"] == "no face" and statuses["tiny.png"] == "too small"
    assert statuses["notes.jpg"].startswith("error") and statuses["empty.jpg"].startswith("error")


def test_the_parquet_dataset_is_plain_parquet_with_its_settings_beside(embedded):
    out, _ = embedded
    table = pq.ParquetDataset(out).read()  # any Parquet reader sees the rows only (the manifest is _-prefixed)
    assert table.schema.equals(schema(512))
    assert set(table.column("model").to_pylist()) == {"casia-webface"}
    assert set(table.column("precision").to_pylist()) == {"fp32"}
    ok = np.array(table.column("face").to_pylist()) >= 0
    vectors = np.array(table.column("embedding").to_pylist(), np.float32)[ok]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    landmarks = np.array(table.column("landmarks").to_pylist(), np.float32)[ok].reshape(-1, 5, 2)
    boxes = np.array(table.column("box").to_pylist(), np.float32)[ok]
    inside = (landmarks[..., 0] >= boxes[:, None, 0]) & (landmarks[..., 0] <= boxes[:, None, 2])
    assert inside.mean() > 0.99  # landmarks are in the photo's pixels, like the boxes
    assert not list(out.glob(".*")) and not list(out.glob("*.tmp"))


def test_rerun_computes_nothing_and_a_changed_photo_is_redone(embedded, photos, reference, monkeypatch):
    out, _ = embedded
    seen = []
    real = archive.run_pipeline
    monkeypatch.setattr(archive, "run_pipeline", lambda todo, *a: seen.extend(todo) or real(todo, *a))
    again = embed_archive(photos, out, faces="all", batch_size=16)
    assert again.computed == 0 and again.already_done == PHOTOS + 5 and not seen

    changed = sorted(photos.glob("*/*.jpg"))[3]
    os.utime(changed, ns=(time.time_ns(), time.time_ns()))  # the same path, another file as far as we know
    again = embed_archive(photos, out, faces="all", batch_size=16)
    assert again.computed == 1 and again.redone == 1 and seen == [str(changed)]
    assert_same_rows(read_archive(out).to_embedding_set(), reference)


def test_other_settings_are_refused_before_ray_starts(embedded, photos, tmp_path):
    out, _ = embedded
    with pytest.raises(ArchiveError, match=r"select: all -> largest"):
        embed_archive(photos, out)
    with pytest.raises(ArchiveError, match=r"precision"):
        embed_archive(photos, out, faces="all", precision="fp16")
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("x")
    with pytest.raises(ArchiveError, match="not an archive's"):
        embed_archive(photos, stranger)
    with pytest.raises(ValueError, match="Parquet dataset folder"):
        embed_archive(photos, tmp_path / "faces.npz")


def _kill_group(child: subprocess.Popen) -> None:
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def test_killed_ray_run_resumes_to_the_uninterrupted_result(photos, reference, tmp_path, built_default, built_mtcnn):
    out = tmp_path / "killed"
    args = ["embed", str(photos), "--engine", "ray", "--out", str(out), "--select", "all", "--batch-size", "8"]
    child = subprocess.Popen([sys.executable, "-m", "facenet_offline.cli", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not part_files(out) and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert child.poll() is None, "the run finished before it could be killed; use more photos"
    finally:
        _kill_group(child)
    kept = recorded_inputs(out)
    assert 0 < len(kept) < PHOTOS + 5  # some work was kept, not all of it

    assert main(args) == 0
    result = read_archive(out)
    assert len(result.paths) == len(reference.paths)  # nothing twice, nothing lost
    assert_same_rows(result.to_embedding_set(), reference)


def test_partial_inputs_of_a_killed_run_are_dropped_before_they_are_redone(tmp_path):
    """An input's rows split over two part files, one of them lost: the input is incomplete, so its rows go."""
    out = tmp_path / "a"
    write_manifest(out, {"embedding_dim": 4})

    def rows(path, faces, expected):
        n = len(faces)
        return pa.Table.from_pydict({
            "path": [path] * n, "face": faces, "status": ["ok"] * n, "box": [[0, 0, 1, 1]] * n, "score": [1.0] * n,
            "landmarks": [[0.0] * 10] * n, "embedding": [[1.0, 0, 0, 0]] * n, "model": ["m"] * n,
            "precision": ["fp32"] * n, "input_rows": [expected] * n, "file_size": [1] * n, "file_mtime_ns": [1] * n,
            "sha256": ["d"] * n}, schema=schema(4))

    write_part(out, pa.concat_tables([rows("/x/one.jpg", [0], 1), rows("/x/two.jpg", [0, 1], 3)]))
    recorded = recorded_inputs(out)
    assert recorded["/x/one.jpg"].complete and not recorded["/x/two.jpg"].complete
    todo, done, stale = archive.plan(out, ["/x/one.jpg", "/x/two.jpg"])
    assert todo == ["/x/one.jpg", "/x/two.jpg"] and done == 0  # one.jpg's file is not there: (1, 1) is stale too
    assert set(stale) == {"/x/one.jpg", "/x/two.jpg"}
    assert drop_inputs(out, ["/x/two.jpg"]) == 2
    assert set(recorded_inputs(out)) == {"/x/one.jpg"}
    assert (out / MANIFEST).is_file()


def test_archive_into_gallery_build_and_cluster(embedded, photos, tmp_path, capsys):
    out, _ = embedded
    gallery_dir = tmp_path / "gallery"
    assert main(["gallery", "build", str(out), "--gallery", str(gallery_dir)]) == 0
    result = read_archive(out)
    people = {p.split(os.sep)[-2] for p, ok in zip(result.paths, result.ok) if ok}
    with Gallery.open(gallery_dir) as gallery:
        assert {name for name, _ in gallery.people()} == people
        photos_with_faces = len({p for p, ok in zip(result.paths, result.ok) if ok})
        assert len(gallery) == photos_with_faces  # one face (the largest) per photo, as gallery build takes
        assert gallery.model["model"] == "casia-webface"
        # a person's photo finds that person: the nearest other face of the first photo of someone with two
        name, faces = next((n, f) for n, f in gallery.people() if f >= 2)
        probe = next(i for i, p in enumerate(result.paths) if p.split(os.sep)[-2] == name and result.ok[i])
        assert gallery.search(result.embeddings[probe:probe + 1], k=1)[0][0].name == name
    assert main(["gallery", "build", str(out), "--gallery", str(gallery_dir)]) == 0
    assert "already there" in capsys.readouterr().out  # building again adds nothing

    clusters_dir = tmp_path / "clusters"
    assert main(["cluster", str(out), "--out", str(clusters_dir)]) == 0
    import json

    clusters = json.loads((clusters_dir / "clusters.json").read_text())
    assert clusters["faces"] == int(result.ok.sum()) and clusters["images"] == len(set(result.paths))
    assert len(clusters["images_without_faces"]) == 5
    assert (clusters_dir / "cluster-000.png").is_file()


def test_embed_ray_flags_are_checked(photos, tmp_path, capsys):
    assert main(["embed", str(photos), "--out", str(tmp_path / "x.npz"), "--num-workers", "2"]) == 2
    assert "--num-workers is an option of --engine ray" in capsys.readouterr().err
    assert main(["embed", str(photos), "--engine", "ray", "--out", str(tmp_path / "x"), "--aligned"]) == 2
    assert "--aligned: not an option of --engine ray" in capsys.readouterr().err


@pytest.mark.parametrize("options", [{}, {"backend": "openvino"}, {"precision": "fp16"}])
def test_the_driver_describes_the_workers_embedder_without_opening_one(options, built_default):
    from facenet_offline.engines import embedder_description, open_embedder

    description, dim = embedder_description(**options)
    embedder = open_embedder(threads=1, **options)
    assert description == embedder.description and dim == embedder.spec.embedding_dim


def test_the_archive_report_fits_fixed_cost_and_marginal_rate_from_two_sizes():
    from facenet_offline.bench.archive_report import archive_section, summary

    def row(kind, engine, images, wall, cores=2, workers=1, round_=0):
        return {"set": kind, "round": round_, "engine": engine, "cores": cores, "workers": workers if engine == "ray" else 0,
                "images": images, "wall_s": wall, "images_per_s": images / wall, "startup_s": 2.0, "faces": images,
                "rows": images, "output_bytes": 3000 * images,
                "memory_mib": {"driver": 500.0, "detect_actor": 0.0, "embed_actor": 0.0, "ray_services": 0.0,
                               "all_processes": 500.0}}

    # single: 5 s fixed + 100 images/s; ray: 12 s fixed + 80 images/s; two rounds each of 5,000, one of 1,000
    section = {"images": 5000, "scaling_images": 1000, "rows": [
        row("main", "single", 5000, 55.0), row("main", "ray", 5000, 74.5), row("main", "single", 5000, 55.0),
        row("main", "ray", 5000, 74.5), row("scaling", "single", 1000, 15.0), row("scaling", "ray", 1000, 24.5)]}
    s = summary(section)
    assert s["single"]["marginal_images_per_s"] == pytest.approx(100) and s["single"]["fixed_s"] == pytest.approx(5)
    assert s["ray"]["marginal_images_per_s"] == pytest.approx(80) and s["ray"]["fixed_s"] == pytest.approx(12)
    assert s["ratio"] == pytest.approx(55 / 74.5) and s["marginal_ratio"] == pytest.approx(0.8)
    assert s["bytes_per_row"] == 3000 and s["rows_per_photo"] == 1
    text = "\n".join(archive_section(section, "a CPU"))
    assert "**0.74, NOT met**" in text and "after start-up (marginal rates) 0.80" in text
    assert "**6,400 images/s, 0.4 hours**" in text and "**30.0 GB**" in text  # 80 / 2 x 160 cores; 10^7 x 3 kB

    # a long archive: the stages' CPU a photo (10 and 20 ms) set its pace, 50 images/s; the cluster figure follows it
    for r in section["rows"]:
        r["cpu_s"] = {"detect": 0.010 * r["images"], "embed": 0.020 * r["images"], "all": 0.04 * r["images"]}
    s = summary(section)
    assert s["long"]["images_per_s"] == pytest.approx(50) and s["long"]["of_single"] == pytest.approx(50 / (5000 / 55))
    text = "\n".join(archive_section(section, "a CPU"))
    assert "detection 10 ms and embedding 20 ms a photo, so with a core each, embedding sets the pace: at most " \
           "50.0 images/s on 2 cores, **0.55** of the single process (90.9)" in text
    assert "**4,000 images/s, 0.7 hours**" in text and "at a long archive's pace" in text  # 50 / 2 x 160 cores
    assert "| single | 2 | - | 66.7 | 15 | 1 |" in text  # the scaling table: one row per layout, its runs' median


def test_joining_a_running_cluster_with_ray_address(photos, reference, tmp_path, built_default, built_mtcnn):
    """`ray start --head` (on loopback), then the command with --ray-address joins it and leaves it running."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_cli = str(Path(sys.executable).parent / "ray")
    started = subprocess.run([ray_cli, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                              "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                             capture_output=True, text=True, timeout=120)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        few = sorted(photos.glob("*/*.jpg"))[:12]
        out = tmp_path / "joined"
        assert main(["embed", *map(str, few), "--engine", "ray", "--ray-address", f"127.0.0.1:{port}",
                     "--select", "all", "--out", str(out)]) == 0
        status = subprocess.run([ray_cli, "status", f"--address=127.0.0.1:{port}"], capture_output=True, text=True,
                                timeout=60)
        assert status.returncode == 0  # the cluster is still up: the command joined it and did not stop it
        # Without --ray-address the command starts a Ray of its own, even with this one running beside it.
        alone = tmp_path / "alone"
        assert main(["embed", *map(str, few[:4]), "--engine", "ray", "--out", str(alone)]) == 0
        assert len(read_archive(alone).to_embedding_set().paths) == 4
        got = read_archive(out).to_embedding_set()
        wanted = {str(p) for p in few}
        keep = [i for i, p in enumerate(reference.paths) if p in wanted]
        assert_same_rows(got, EmbeddingSet([reference.paths[i] for i in keep], reference.embeddings[keep],
                                           [reference.status[i] for i in keep], {}, reference.inputs[keep],
                                           reference.faces[keep], reference.boxes[keep]))
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120)
