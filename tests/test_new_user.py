"""What a new user tripped over, each fixed and checked here: the command line as people type it."""

import errno
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facenet_offline import cache
from facenet_offline.cli import main
from facenet_offline.data.lfw_dataset import image_path, read_pairs
from facenet_offline.embedding_set import EmbeddingSet
from facenet_offline.errors import DiskFullError
from facenet_offline.recognition import Gallery, GalleryError
from facenet_offline.samples import FACES_DIR, PEOPLE, PROBES


@pytest.fixture(scope="module")
def models(built_default, built_mtcnn):
    return built_default, built_mtcnn


def _faces_in(gallery: str) -> int:
    with Gallery.open(gallery) as g:
        return len(g)


# --- gallery commands ---------------------------------------------------------------------------------
def test_gallery_commands_as_the_readme_writes_them_and_options_anywhere(tmp_path, models, capsys):
    g = str(tmp_path / "g")
    tony = sorted(map(str, (PEOPLE / "Tony_Blair").iterdir()))
    assert main(["gallery", "build", "--gallery", g, str(PEOPLE)]) == 0
    assert _faces_in(g) == 6
    g2, g3, g4 = (str(tmp_path / n) for n in ("g2", "g3", "g4"))
    assert main(["gallery", "add", "--gallery", g2, "--name", "Tony Blair", *tony]) == 0
    assert main(["gallery", "--gallery", g3, "add", "--name", "Tony Blair", *tony]) == 0
    assert main(["gallery", "add", tony[0], "--name", "Tony Blair", tony[1], "--gallery", g4]) == 0
    assert _faces_in(g2) == _faces_in(g3) == _faces_in(g4) == 2
    assert main(["gallery", "list", "--gallery", g2]) == 0 and "Tony Blair: 2" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["gallery", "build", "--help"])
    assert exit_.value.code == 0
    assert "one sub-folder of photos per person" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["gallery", "add", "--name", "X", tony[0]])
    assert exit_.value.code == 2 and "--gallery G is required" in capsys.readouterr().err


def test_enrolment_is_idempotent_and_says_what_it_skipped(tmp_path, models, capsys):
    g = str(tmp_path / "g")
    assert main(["gallery", "build", "--gallery", g, str(PEOPLE)]) == 0
    capsys.readouterr()
    assert main(["gallery", "build", "--gallery", g, str(PEOPLE)]) == 0
    out = capsys.readouterr().out
    assert "added 0 faces" in out and "6 already there, skipped" in out and _faces_in(g) == 6
    # The same photo under another name, and a copy of it elsewhere, are the same face.
    copy = tmp_path / "copy.jpg"
    shutil.copy(PEOPLE / "Tony_Blair" / "Tony_Blair_0001.jpg", copy)
    assert main(["gallery", "add", "--gallery", g, "--name", "Someone", str(copy)]) == 0
    assert "face 0 is already enrolled as Tony_Blair; skipped" in capsys.readouterr().out and _faces_in(g) == 6


def test_a_corrupt_gallery_index_is_rebuilt_from_the_database(tmp_path, models, capsys):
    g = tmp_path / "g"
    assert main(["gallery", "build", "--gallery", str(g), str(PEOPLE)]) == 0
    probe = str(PROBES / "Colin_Powell_0003.jpg")
    for damage in (b"garbage", None):
        (index,) = g.glob("index-*.faiss")
        if damage:
            index.write_bytes(damage)
        else:  # one flipped byte in the vectors: FAISS would read it without complaint
            data = bytearray(index.read_bytes())
            data[-100] ^= 0xFF
            index.write_bytes(bytes(data))
        capsys.readouterr()
        assert main(["identify", probe, "--gallery", str(g)]) == 0
        assert "face 0: Colin_Powell" in capsys.readouterr().out


# --- faces: select all, tiny images, no face, messages ------------------------------------------------
def test_embed_select_all_writes_a_row_per_face_and_verify_refuses_it(tmp_path, lfw_dir, models, capsys):
    group = str(PROBES / "Gene_Robinson_0003.jpg")  # two faces
    out = tmp_path / "all.npz"
    assert main(["embed", group, str(PROBES / "Tony_Blair_0003.jpg"), "--select", "all", "--out", str(out)]) == 0
    rows = EmbeddingSet.load(out)
    assert rows.paths[:2] == [group, group] and rows.faces.tolist()[:3] == [0, 1, 0]
    assert rows.inputs.tolist() == [0, 0, 1] and not np.isnan(rows.boxes).any()
    assert not np.allclose(rows.boxes[0], rows.boxes[1]) and "embedded 3 faces of 2/2 images" in capsys.readouterr().out
    largest = tmp_path / "largest.npz"
    assert main(["embed", group, "--out", str(largest)]) == 0
    one = EmbeddingSet.load(largest)
    assert len(one.paths) == 1 and one.boxes[0].tolist() in rows.boxes[:2].tolist()  # the box it used
    assert main(["verify", group, group, "--select", "all"]) == 2
    assert "--select all cannot be used" in capsys.readouterr().err


@pytest.mark.parametrize("side, resample", [(30, Image.Resampling.LANCZOS), (30, Image.Resampling.BICUBIC),
                                            (15, Image.Resampling.BOX), (40, Image.Resampling.LANCZOS)])
def test_a_photo_too_small_for_a_face_says_so(tmp_path, models, side, resample):
    tiny = tmp_path / "tiny.jpg"
    Image.open(PROBES / "Tony_Blair_0003.jpg").resize((side, side), resample).save(tiny)
    assert main(["embed", str(tiny), "--out", str(tmp_path / "t.npz")]) == 1
    assert str(EmbeddingSet.load(tmp_path / "t.npz").status[0]) == "too small"
    assert main(["detect", str(tiny), "--out", str(tmp_path / "t.jsonl")]) == 0
    line = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[1])
    assert line["status"] == "too small" and line["faces"] == []


def test_a_standard_output_or_folder_out_is_refused_clearly(tmp_path, models, capsys):
    for out in ("-", str(tmp_path)):
        assert main(["detect", str(PROBES), "--out", out]) == 2
        assert f"--out {out}: give a file to write" in capsys.readouterr().err
    assert not (tmp_path / "-").exists() and not os.path.exists("-")


def test_results_print_shapes_not_numbers(models):
    from facenet_offline import FaceNet

    result = FaceNet().verify(PEOPLE / "Tony_Blair" / "Tony_Blair_0001.jpg", PROBES / "Tony_Blair_0003.jpg")
    text = repr(result)
    assert len(text) < 600 and "embedding=(512,)" in text and "model=" not in text


def test_detect_and_embed_share_one_vocabulary(tmp_path, models):
    wall = tmp_path / "wall.png"
    Image.new("RGB", (200, 200), (90, 90, 90)).save(wall)
    assert main(["detect", str(wall), "--out", str(tmp_path / "w.jsonl")]) == 0
    assert main(["embed", str(wall), "--out", str(tmp_path / "w.npz")]) == 1
    detected = json.loads((tmp_path / "w.jsonl").read_text().splitlines()[1])["status"]
    assert detected == str(EmbeddingSet.load(tmp_path / "w.npz").status[0]) == "no face"


def test_error_messages_name_the_input_once(tmp_path, models, capsys):
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    assert main(["verify", str(notes), str(PROBES / "Tony_Blair_0003.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.count(str(notes)) == 1 and err.count("error:") == 1 and "not an image facenet-offline can read" in err
    assert main(["embed", str(notes), "--out", str(tmp_path / "e.npz")]) == 1
    err = capsys.readouterr().err
    assert err.count(str(notes)) == 1 and err.startswith(f"{notes}: error: not an image")


# --- runs: resume, interrupts, a full disk ---------------------------------------------------------------
def test_a_small_run_keeps_finished_work_when_interrupted(tmp_path, models, monkeypatch, capsys):
    from facenet_offline import folder_runs as jobs

    real = jobs.analyse

    def stopped(*args, **kwargs):
        for k, result in enumerate(real(*args, **kwargs)):
            if k == 5:
                raise KeyboardInterrupt
            yield result

    out = tmp_path / "e.npz"
    monkeypatch.setattr(jobs, "analyse", stopped)
    assert main(["embed", str(FACES_DIR), "--aligned", "--out", str(out)]) == 130  # 8 inputs: less than 256
    assert "interrupted: 5 of 8 inputs are done" in capsys.readouterr().err
    assert len(list((tmp_path / "e.npz.parts").glob("chunk-*"))) == 5
    monkeypatch.setattr(jobs, "analyse", real)
    assert main(["embed", str(FACES_DIR), "--aligned", "--out", str(out), "--resume"]) == 0
    assert len(EmbeddingSet.load(out).paths) == 8


def _full_disk_after(monkeypatch, writes: int, under) -> None:
    """The disk fills after ``writes`` more files land under ``under``: every later rename fails as Linux's would."""
    real, count = os.replace, [0]

    def replace(src, dst, *args, **kwargs):
        if str(dst).startswith(str(under)):
            count[0] += 1
            if count[0] > writes:
                raise OSError(errno.ENOSPC, "No space left on device", str(src))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(cache.os, "replace", replace)


def test_embed_on_a_full_disk_names_the_place_and_how_to_continue(tmp_path, models, monkeypatch, capsys):
    out = tmp_path / "e.npz"
    args = ["embed", str(FACES_DIR), "--aligned", "--out", str(out), "--chunk-size", "2"]
    with monkeypatch.context() as m:
        _full_disk_after(m, 3, tmp_path)  # the manifest and two chunks
        assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'e.npz.parts'}: no space left on the device (writing chunk-000002.npz)")
    assert "free space there, then run it again with --resume" in err and "Traceback" not in err
    assert len(list((tmp_path / "e.npz.parts").glob("chunk-*"))) == 2 and not list(tmp_path.glob("**/.*.tmp"))
    assert main([*args, "--resume"]) == 0 and len(EmbeddingSet.load(out).paths) == 8


def test_every_writer_says_where_the_disk_is_full(tmp_path, lfw_dir, models, monkeypatch):
    from facenet_offline.engines import open_detector, open_embedder
    from facenet_offline.evaluate import lfw_job as lfw
    from facenet_offline.export.targets import export_target
    from facenet_offline.model_cache import BuildOptions, build_facenet

    home = tmp_path / "home"
    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(home))
    with monkeypatch.context() as m:  # the model cache
        _full_disk_after(m, 0, home)
        with pytest.raises(DiskFullError, match="FACENET_OFFLINE_HOME=DIR to keep it on another disk"):
            build_facenet(BuildOptions())
    embedder, detector = open_embedder(), open_detector()
    rel = [image_path(lfw_dir, "Tony_Blair", k).relative_to(lfw_dir).as_posix() for k in (1, 2)]
    with monkeypatch.context() as m:  # the LFW cache
        _full_disk_after(m, 2, home / "lfw")  # two manifests, then a chunk
        with pytest.raises(DiskFullError, match=r"lfw/.*no space left.*finished chunks are kept in the cache"):
            lfw.lfw_embeddings(lfw_dir, rel, embedder, detector, {"backend": "openvino"}, lfw.LfwOptions())
    with monkeypatch.context() as m:  # exports
        _full_disk_after(m, 0, tmp_path / "export")
        with pytest.raises(DiskFullError, match=f"{tmp_path / 'export'}: no space left"):
            export_target("generic", tmp_path / "export")
    with Gallery.open(tmp_path / "g", embedder.description, create=True) as gallery:  # the gallery (SQLite)
        vectors = np.eye(3, 512, dtype=np.float32)
        gallery.add("ann", vectors[:1], ["a.jpg"])
        pages = gallery.db.execute("PRAGMA page_count").fetchone()[0]
        gallery.db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(GalleryError, match="the disk is full .*the gallery is unchanged"):
            gallery.add("bob", np.repeat(vectors[1:2], 500, 0), [f"b{k}.jpg" for k in range(500)])
        assert gallery.people() == [("ann", 1)]


# --- start-up -----------------------------------------------------------------------------------------
def test_version_and_a_quick_help_that_imports_no_engine(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == "facenet-offline 0.1.0"
    code = ("import sys\nfrom facenet_offline.cli import main\n"
            "for argv in (['--help'], ['embed', '--help'], ['gallery', 'build', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'openvino', 'faiss', 'sklearn') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "HEAVY []" in done.stdout, done.stdout[-500:] + done.stderr


def test_preprocess_batches_match_the_static_npu_batches():
    from facenet_offline.cli.parser import parse
    from facenet_offline.export.targets import NPU_FACENET_BATCHES

    assert parse(["preprocess", "a.jpg", "--out", "x"]).batch_size in NPU_FACENET_BATCHES


# --- LFW as people have it -------------------------------------------------------------------------------
def _small_pairs(lfw_dir, path, per_class: int = 10) -> list:
    """The first ``per_class`` same and different pairs of fold 1, as a one-fold pairs file."""
    pairs = [p for p in read_pairs(lfw_dir / "pairs.txt") if p.fold == 0]
    chosen = [p for p in pairs if p.same][:per_class] + [p for p in pairs if not p.same][:per_class]
    lines = [f"1 {per_class}"] + [f"{p.name1}\t{p.num1}\t{p.num2}" if p.same else
                                  f"{p.name1}\t{p.num1}\t{p.name2}\t{p.num2}" for p in chosen]
    path.write_text("\n".join(lines) + "\n")
    return chosen


def _copy_images(lfw_dir, pairs, folder, suffix: str = ".jpg", pick=lambda name, num: (name, num)) -> None:
    for p in pairs:
        for name, num in ((p.name1, p.num1), (p.name2, p.num2)):
            source = image_path(lfw_dir, *pick(name, num))
            target = folder / name / f"{name}_{num:04d}{suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if suffix == ".jpg":
                shutil.copy(source, target)
            else:
                Image.open(source).save(target)


def _lfw_report(args: list[str], out) -> dict:
    assert main(["lfw", *args, "--out", str(out), "--flip", "none"]) == 0
    return json.loads((out / "report.json").read_text())


def test_lfw_in_every_layout_people_have_it(tmp_path, lfw_dir, models, monkeypatch, capsys):
    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(tmp_path / "home"))
    tgz = tmp_path / "download"  # lfw.tgz unpacks to lfw/<Name>/<Name>_NNNN.jpg; pairs.txt fetched beside it
    pairs = _small_pairs(lfw_dir, tmp_path / "pairs.txt")
    _copy_images(lfw_dir, pairs, tgz / "lfw")
    shutil.copy(tmp_path / "pairs.txt", tgz / "pairs.txt")
    funneled = tmp_path / "funneled"
    _copy_images(lfw_dir, pairs, funneled / "lfw-funneled")
    shutil.copy(tmp_path / "pairs.txt", funneled / "pairs.txt")
    anywhere = tmp_path / "my photos"  # person folders, PNG, pairs.txt elsewhere
    _copy_images(lfw_dir, pairs, anywhere, suffix=".png")
    (tgz / "lfw" / pairs[-1].name2).rename(tmp_path / "aside")  # a person's folder missing: a clear error, no traceback
    assert main(["lfw", "--lfw-dir", str(tgz), "--out", str(tmp_path / "r0")]) == 2
    err = capsys.readouterr().err
    assert "image(s) the pairs use are not in" in err and pairs[-1].name2 in err and "Traceback" not in err
    (tmp_path / "aside").rename(tgz / "lfw" / pairs[-1].name2)
    runs = {"tgz": _lfw_report(["--lfw-dir", str(tgz)], tmp_path / "r1"),
            "tgz-images": _lfw_report(["--lfw-dir", str(tgz / "lfw"), "--pairs", str(tmp_path / "pairs.txt")],
                                      tmp_path / "r2"),
            "funneled": _lfw_report(["--lfw-dir", str(funneled)], tmp_path / "r3"),
            "anywhere": _lfw_report(["--lfw-dir", str(anywhere), "--pairs", str(tmp_path / "pairs.txt")],
                                    tmp_path / "r4")}
    accuracy = {k: r["result"]["accuracy_mean"] for k, r in runs.items()}
    assert all(r["pairs"] == 20 for r in runs.values()) and len(set(accuracy.values())) == 1, accuracy
    # The same pixels as PNG give the same distances as the JPEGs' decoded pixels.
    assert runs["anywhere"]["result"]["fold_accuracy"] == runs["tgz"]["result"]["fold_accuracy"]


def test_lfw_aligned_crops_as_the_gpu_reference_scores_them(tmp_path, lfw_dir, models, monkeypatch):
    from facenet_offline import FaceNet

    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(tmp_path / "home"))
    pairs = _small_pairs(lfw_dir, tmp_path / "pairs.txt", per_class=11)
    fn = FaceNet()
    crops = tmp_path / "lfw_mtcnnpy_160"  # align_dataset_mtcnn.py's layout: <Name>/<Name>_NNNN.png, 160 x 160
    skipped = pairs[-1]  # as that script skips photos where it finds no face
    for p in pairs:
        for name, num in ((p.name1, p.num1), (p.name2, p.num2)):
            if (name, num) == (skipped.name2, skipped.num2):
                continue
            target = crops / name / f"{name}_{num:04d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(fn.detect(image_path(lfw_dir, name, num), crops=True)[0].crop).save(target)
    report = _lfw_report(["--lfw-dir", str(crops), "--pairs", str(tmp_path / "pairs.txt"), "--aligned"],
                         tmp_path / "r")
    assert report["skipped_pairs"] >= 1 and report["pairs"] == 22 - report["skipped_pairs"]
    assert report["options"]["aligned"] and report["detection_failures"]["count"] == 0
    assert report["result"]["accuracy_mean"] >= 0.9


def test_the_lfw_cache_tells_two_copies_with_the_same_names_apart(tmp_path, lfw_dir, models, monkeypatch):
    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(tmp_path / "home"))
    pairs = _small_pairs(lfw_dir, tmp_path / "pairs.txt")
    first, second = tmp_path / "first", tmp_path / "second"
    _copy_images(lfw_dir, pairs, first / "lfw")
    # The second copy holds other pictures under the same names: every image is Tony Blair's.
    _copy_images(lfw_dir, pairs, second / "lfw", pick=lambda name, num: ("Tony_Blair", 1 + num % 100))
    a = _lfw_report(["--lfw-dir", str(first), "--pairs", str(tmp_path / "pairs.txt")], tmp_path / "a")
    b = _lfw_report(["--lfw-dir", str(second), "--pairs", str(tmp_path / "pairs.txt")], tmp_path / "b")
    assert b["timings_s"]["from_cache"] == [] and a["result"]["fold_accuracy"] != b["result"]["fold_accuracy"]
    again = _lfw_report(["--lfw-dir", str(first), "--pairs", str(tmp_path / "pairs.txt")], tmp_path / "c")
    assert set(again["timings_s"]["from_cache"]) == {"detections", "embeddings"}
    assert again["result"]["fold_accuracy"] == a["result"]["fold_accuracy"]


def test_some_folds_of_a_cached_run_need_no_work(tmp_path, lfw_dir, models, monkeypatch):
    from facenet_offline.evaluate import lfw_job

    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(tmp_path / "home"))
    two = tmp_path / "pairs.txt"  # two folds of 10 + 10 pairs
    pairs = [p for p in read_pairs(lfw_dir / "pairs.txt") if p.fold < 2]
    chosen = [p for f in (0, 1) for same in (True, False) for p in [q for q in pairs if q.fold == f and q.same == same][:10]]
    two.write_text("2 10\n" + "\n".join(f"{p.name1}\t{p.num1}\t{p.num2}" if p.same else
                                         f"{p.name1}\t{p.num1}\t{p.name2}\t{p.num2}" for p in chosen) + "\n")
    whole = _lfw_report(["--pairs", str(two)], tmp_path / "whole")
    calls = []
    real = lfw_job._process
    monkeypatch.setattr(lfw_job, "_process", lambda *a, **k: calls.append(1) or real(*a, **k))
    one = _lfw_report(["--pairs", str(two), "--folds", "2"], tmp_path / "one")
    assert calls == [] and one["pairs"] == 20 and whole["pairs"] == 40
    assert one["misclassified"] == [m for m in whole["misclassified"] if m["fold"] == 2]
