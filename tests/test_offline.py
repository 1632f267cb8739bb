"""The .bin workflow: byte layout, and preprocess -> infer -> postprocess equal to the direct paths."""

import json
from pathlib import Path

import numpy as np
import pytest

from facenet_offline.cli import main
from facenet_offline.data.lfw_dataset import image_path
from facenet_offline.data.tensors import InputNorm, face_batch, read_bin, to_nchw, write_bin
from facenet_offline.embedding_set import EmbeddingSet


def test_bin_layout_is_raw_little_endian_float32_in_c_order(tmp_path):
    tensor = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5) - 7.5
    write_bin(tmp_path / "t.bin", tensor)
    raw = (tmp_path / "t.bin").read_bytes()
    assert len(raw) == tensor.size * 4  # no header
    assert raw[:4] == np.float32(-7.5).tobytes() if np.little_endian else True
    assert np.array_equal(np.frombuffer(raw, "<f4"), tensor.ravel(order="C"))
    n, c, y, x = 1, 2, 3, 4
    assert np.frombuffer(raw, "<f4")[((n * 3 + c) * 4 + y) * 5 + x] == tensor[n, c, y, x]
    assert np.array_equal(read_bin(tmp_path / "t.bin", (3, 4, 5)), tensor)
    with pytest.raises(ValueError, match="not a whole number"):
        read_bin(tmp_path / "t.bin", (7, 11))


def test_to_nchw_standardises_into_a_given_slice():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    batch = np.full((4, 3, 4, 5), 7.0, np.float32)
    got = to_nchw(faces, 127.5, 128.0, out=batch[1:3])
    want = (faces.astype(np.float64) - 127.5) / 128.0
    assert np.shares_memory(got, batch) and np.allclose(batch[1:3], want.transpose(0, 3, 1, 2), atol=1e-6)
    assert (batch[0] == 7).all() and (batch[3] == 7).all()  # rows outside the slice untouched
    with pytest.raises(ValueError, match="out must be"):
        to_nchw(faces, 127.5, 128.0, out=batch)


def test_preprocess_infer_postprocess_of_photos(tmp_path, lfw_dir, built_default, built_mtcnn):
    from PIL import Image

    faces = [image_path(lfw_dir, "Tony_Blair", k) for k in (1, 2, 3)]
    wall = tmp_path / "wall.png"
    Image.new("RGB", (200, 150), (90, 90, 90)).save(wall)
    inputs = [*map(str, faces), str(wall)]
    pre = tmp_path / "pre"
    assert main(["preprocess", *inputs, "--format", "bin", "--batch-size", "3", "--out", str(pre)]) == 0
    info = json.loads((pre / "info.json").read_text())
    assert [b["rows"] for b in info["batches"]] == [3, 3] and [b["valid_rows"] for b in info["batches"]] == [3, 1]
    assert [img["status"] for img in info["images"]] == ["ok", "ok", "ok", "no face"]
    assert info["images"][3]["row"] is None and info["images"][1]["row"] == 1
    second = read_bin(pre / info["batches"][1]["file"], (3, 160, 160))
    assert not second.any()  # the no-face row and the padding are zeros
    # The preprocessed rows are exactly the model input the embedder builds from the same crops.
    from facenet_offline.data.images import load_rgb
    from facenet_offline.detect.align import AlignConfig, align_face
    from facenet_offline.engines import open_detector

    img = load_rgb(faces[0])
    face = open_detector().detect([img])[0].select("largest")
    crop = align_face(img, face.boxes[0], face.landmarks[0], AlignConfig())
    first = read_bin(pre / info["batches"][0]["file"], (3, 160, 160))
    assert np.array_equal(first[0], face_batch([crop], 160, InputNorm())[0])

    out = tmp_path / "out"
    assert main(["infer", "--model", "casia-webface", "--input", str(pre / "input"), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.bin")) == ["batch-000000_0.bin", "batch-000001_0.bin"]
    assert (out / "batch-000000_0.bin").stat().st_size == 3 * 512 * 4
    assert main(["postprocess", "--outputs", str(out), "--info", str(pre / "info.json"),
                 "--out", str(tmp_path / "e.npz")]) == 0
    via_bin = EmbeddingSet.load(tmp_path / "e.npz")
    assert main(["embed", *inputs, "--out", str(tmp_path / "direct.npz"), "--batch-size", "3"]) == 0
    direct = EmbeddingSet.load(tmp_path / "direct.npz")
    assert via_bin.status == direct.status
    assert np.allclose(via_bin.embeddings[:3], direct.embeddings[:3], atol=1e-5) and np.isnan(via_bin.embeddings[3]).all()


def test_lfw_fold_1_round_trip_equals_the_direct_lfw_job(tmp_path, built_default, built_mtcnn):
    direct = tmp_path / "direct"
    assert main(["lfw", "--folds", "1", "--out", str(direct)]) == 0
    pre, out, report = tmp_path / "pre", tmp_path / "out", tmp_path / "report"
    assert main(["preprocess", "--lfw", "--folds", "1", "--batch-size", "32", "--out", str(pre)]) == 0
    assert main(["infer", "--input", str(pre / "input"), "--output", str(out)]) == 0
    assert main(["postprocess", "--outputs", str(out), "--info", str(pre / "info.json"), "--report", str(report),
                 "--out", str(tmp_path / "e.npz")]) == 0
    a, b = json.loads((direct / "report.json").read_text()), json.loads((report / "report.json").read_text())
    assert a["result"] == b["result"] and a["misclassified"] == b["misclassified"]
    assert a["detection_failures"] == b["detection_failures"] and a["pairs"] == b["pairs"] == 600

    # The embeddings themselves: exactly those of the direct job (its cache holds them).
    from facenet_offline.engines import open_detector, open_embedder
    from facenet_offline.evaluate.lfw_job import LfwOptions, lfw_embeddings, lfw_inputs

    root, _, rel = lfw_inputs(folds=[0])
    _, emb, emb_flip = lfw_embeddings(root, rel, open_embedder(), open_detector(),
                                      {"backend": "openvino", "config": "default"}, LfwOptions())
    via_bin = EmbeddingSet.load(tmp_path / "e.npz")
    assert via_bin.paths == rel and np.array_equal(via_bin.embeddings, emb)
    info = json.loads((pre / "info.json").read_text())
    flips = np.concatenate([np.fromfile(out / f"{b['file'].split('/')[-1][:-4]}_0.bin", "<f4").reshape(b["rows"], -1)
                            [b["valid_rows"] // 2:b["valid_rows"]] for b in info["batches"]])
    assert np.array_equal(flips, emb_flip)


def test_preprocess_resumes_and_refuses_other_settings(tmp_path, lfw_dir, built_mtcnn, monkeypatch, capsys):
    from facenet_offline import bin_workflow as offline

    faces = [str(image_path(lfw_dir, "Tony_Blair", k)) for k in range(1, 8)]
    base = ["preprocess", *faces, "--batch-size", "2", "--out", str(tmp_path / "p")]
    real, calls = offline._prepare_batch, [0]

    def flaky(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(offline, "_prepare_batch", flaky)
        assert main(base) == 130
    assert not (tmp_path / "p" / "info.json").exists()
    assert main([*base, "--resume", "--flip"]) == 2 and "other settings" in capsys.readouterr().err
    seen = []
    monkeypatch.setattr(offline, "_prepare_batch", lambda paths, *a: seen.append(len(paths)) or real(paths, *a))
    assert main([*base, "--resume"]) == 0
    assert seen == [2, 1]  # batches 0 and 1 were kept
    resumed = (tmp_path / "p" / "info.json").read_text()
    assert main([*base[:-1], str(tmp_path / "q")]) == 0
    assert json.loads(resumed)["images"] == json.loads((tmp_path / "q" / "info.json").read_text())["images"]
    for b in range(4):
        name = f"input/batch-{b:06d}.bin"
        assert (tmp_path / "p" / name).read_bytes() == (tmp_path / "q" / name).read_bytes()


def test_preprocess_batch_of_photos_larger_than_one_decoded_batch(tmp_path, lfw_dir, built_default, built_mtcnn):
    """Three 12 MP photos exceed one decoded batch's pixels: the .bin batch still gets every row, in order."""
    from PIL import Image

    from facenet_offline.face_loop import decoded_batches

    photos = []
    for k in (1, 2, 3):
        path = tmp_path / f"big{k}.jpg"
        with Image.open(image_path(lfw_dir, "Tony_Blair", k)) as img:
            img.resize((4096, 3000), Image.Resampling.BILINEAR).save(path, quality=85)
        photos.append(str(path))
    assert [len(b) for b in decoded_batches(photos, batch_size=3)] == [2, 1]
    pre = tmp_path / "pre"
    assert main(["preprocess", *photos, "--format", "bin", "--batch-size", "3", "--out", str(pre)]) == 0
    info = json.loads((pre / "info.json").read_text())
    assert [b["valid_rows"] for b in info["batches"]] == [3]
    assert [(Path(i["path"]).name, i["status"], i["row"]) for i in info["images"]] == [
        ("big1.jpg", "ok", 0), ("big2.jpg", "ok", 1), ("big3.jpg", "ok", 2)]
