"""Interrupted runs: killed or stopped part way, resumed without recomputing, duplicating or losing rows."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from facenet_offline import folder_runs as jobs
from facenet_offline.chunk_store import ChunkStore, ResumeError, run_manifest
from facenet_offline.cli import main
from facenet_offline.data.lfw_dataset import images_in_pairs
from facenet_offline.embedding_set import EmbeddingSet
from facenet_offline.samples import sample_face_paths


@pytest.fixture(scope="module")
def folder(tmp_path_factory, lfw_dir, lfw_pairs):
    """300 LFW photos in a folder of their own."""
    root = tmp_path_factory.mktemp("photos")
    for path in images_in_pairs(lfw_dir, lfw_pairs)[:300]:
        shutil.copy(path, root / path.name)
    return root


def _chunks(out):
    return sorted((out.parent / (out.name + ".parts")).glob("chunk-*"))


def test_killed_embed_resumes_to_exactly_the_uninterrupted_result(tmp_path, folder, built_default, built_mtcnn,
                                                                   monkeypatch):
    out = tmp_path / "killed.npz"
    args = ["embed", str(folder), "--out", str(out), "--chunk-size", "40", "--batch-size", "20"]
    child = subprocess.Popen([sys.executable, "-m", "facenet_offline.cli", *args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(_chunks(out)) < 3 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child.poll() is None, "the run finished before it could be killed; use more images"
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = len(_chunks(out))
    assert 3 <= done < 8 and not out.exists()  # 300 images = 8 chunks; no output that looks complete

    seen = []
    real = jobs.analyse
    monkeypatch.setattr(jobs, "analyse", lambda sources, *a, **k: seen.extend(sources) or real(sources, *a, **k))
    assert main([*args, "--resume"]) == 0
    assert len(seen) == 300 - 40 * done and len(set(seen)) == len(seen)  # finished chunks were not recomputed
    assert not (tmp_path / "killed.npz.parts").exists()

    assert main(["embed", str(folder), "--out", str(tmp_path / "whole.npz"), "--chunk-size", "40",
                 "--batch-size", "20"]) == 0
    resumed, whole = EmbeddingSet.load(out), EmbeddingSet.load(tmp_path / "whole.npz")
    assert len(resumed.paths) == 300 and len(set(resumed.paths)) == 300
    assert resumed.paths == whole.paths and resumed.status == whole.status
    assert resumed.inputs.tolist() == whole.inputs.tolist() == list(range(300))
    assert np.array_equal(resumed.embeddings, whole.embeddings, equal_nan=True)
    assert resumed.meta == whole.meta


def _interrupt_after(monkeypatch, module, name, calls):
    """Make ``module.name`` raise KeyboardInterrupt on call number ``calls + 1``."""
    real, count = getattr(module, name), [0]

    def flaky(*args, **kwargs):
        count[0] += 1
        if count[0] > calls:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)


def _interrupt_stream_after(monkeypatch, results):
    """Ctrl-C once the face loop of a run has given ``results`` results (as a person would press it)."""
    real = jobs.analyse

    def stream(*args, **kwargs):
        for k, result in enumerate(real(*args, **kwargs)):
            if k == results:
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(jobs, "analyse", stream)


def test_resume_is_refused_with_other_settings_or_inputs(tmp_path, built_default, monkeypatch, capsys):
    faces = str(sample_face_paths()[0].parent)
    out = tmp_path / "e.npz"
    base = ["embed", faces, "--aligned", "--out", str(out), "--chunk-size", "3"]
    with monkeypatch.context() as m:
        _interrupt_stream_after(m, 4)
        assert main(base) == 130
    assert len(_chunks(out)) == 1 and not out.exists()
    err = capsys.readouterr().err
    assert "interrupted: 3 of 8 inputs are done and kept in" in err and "run it again with --resume" in err

    assert main(base) == 2  # not without --resume
    assert "unfinished run (1/3 chunks done)" in capsys.readouterr().err
    assert main([*base, "--resume", "--backend", "openvino"]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "settings.embedder.backend: onnxruntime -> openvino" in err
    assert main(["embed", faces, str(sample_face_paths()[0]), "--aligned", "--out", str(out), "--chunk-size", "3",
                 "--resume"]) == 2
    assert "inputs.count: 8 -> 9" in capsys.readouterr().err
    assert len(_chunks(out)) == 1  # refusals leave the unfinished run as it was

    assert main(base[:-2] + ["--resume"]) == 0  # without --chunk-size: the interrupted run's, not the default
    resumed = EmbeddingSet.load(out)
    assert main(["embed", faces, "--aligned", "--out", str(tmp_path / "w.npz")]) == 0
    assert np.array_equal(resumed.embeddings, EmbeddingSet.load(tmp_path / "w.npz").embeddings)
    # Resuming a finished output is a no-op with the same settings and refused with others.
    assert main([*base, "--resume"]) == 0
    assert main([*base, "--resume", "--backend", "openvino"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_detect_resumes_to_the_same_lines(tmp_path, folder, built_mtcnn, monkeypatch):
    paths = sorted(folder.iterdir())[:50]
    out = tmp_path / "d.jsonl"
    common = ["--chunk-size", "16", "--save-crops", str(tmp_path / "c")]
    base = ["detect", *map(str, paths), "--out", str(out), *common]
    with monkeypatch.context() as m:
        _interrupt_stream_after(m, 33)
        assert main(base) == 130
    assert len(_chunks(out)) == 2
    assert main([*base, "--resume"]) == 0
    assert main(["detect", *map(str, paths), "--out", str(tmp_path / "w.jsonl"), *common]) == 0
    resumed, whole = out.read_text().splitlines(), (tmp_path / "w.jsonl").read_text().splitlines()
    assert len(resumed) == 51 and resumed[1:] == whole[1:]
    assert json.loads(resumed[0])["meta"]["run"]["inputs"]["count"] == 50
    assert len(list((tmp_path / "c").glob("*.png"))) == sum(len(json.loads(line)["faces"]) for line in resumed[1:])


def test_lfw_cache_resumes_by_itself(tmp_path, lfw_dir, lfw_pairs, built_default, built_mtcnn, monkeypatch):
    from facenet_offline.engines import open_detector, open_embedder
    from facenet_offline.evaluate import lfw_job as lfw

    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(tmp_path))
    monkeypatch.setattr(lfw, "CACHE_CHUNK", 16)
    rel = [p.relative_to(lfw_dir).as_posix() for p in images_in_pairs(lfw_dir, lfw_pairs)[:40]]
    embedder, detector, options = open_embedder(), open_detector(), lfw.LfwOptions()
    with monkeypatch.context() as m:
        _interrupt_after(m, lfw, "_process", 1)
        with pytest.raises(KeyboardInterrupt):
            lfw.lfw_embeddings(lfw_dir, rel, embedder, detector, {"backend": "openvino"}, options)
    calls = []
    real = lfw._process
    monkeypatch.setattr(lfw, "_process", lambda root, part, *a: calls.append(len(part)) or real(root, part, *a))
    det, emb, emb_flip = lfw.lfw_embeddings(lfw_dir, rel, embedder, detector, {"backend": "openvino"}, options)
    assert calls == [16, 8]  # the first chunk came from the cache
    det0, emb0, flip0 = lfw.lfw_embeddings(lfw_dir, rel, embedder, detector, {"backend": "openvino"}, options,
                                           use_cache=False)
    assert np.array_equal(emb, emb0) and np.array_equal(emb_flip, flip0) and np.array_equal(det.boxes, det0.boxes)


def test_one_run_is_written_by_one_process_at_a_time(tmp_path):
    manifest = run_manifest("embed", {"model": "x"}, ["a.jpg", "b.jpg"], 1)
    with ChunkStore.open(tmp_path / "out.parts", manifest, ".npz", resume=False):
        with pytest.raises(ResumeError, match="another process is writing"):
            ChunkStore.open(tmp_path / "out.parts", manifest, ".npz", resume=True)
    with ChunkStore.open(tmp_path / "out.parts", manifest, ".npz", resume=True) as store:  # released: fine now
        assert store.count == 2 and store.finished() == []
    os.remove(tmp_path / "out.parts" / "manifest.json")
    with pytest.raises(ResumeError, match="not an unfinished run"):
        ChunkStore.open(tmp_path / "out.parts", manifest, ".npz", resume=True)
