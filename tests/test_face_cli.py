"""The face commands end to end: detect (JSON lines, crops), verify, embed with detection."""

import json

import numpy as np
from PIL import Image

from facenet_offline.cli import main
from facenet_offline.data.lfw_dataset import image_path
from facenet_offline.embedding_set import EmbeddingSet


def test_detect_writes_a_line_per_image_and_crops(tmp_path, lfw_dir, detector):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 90), (90, 90, 90)).save(blank)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    face = image_path(lfw_dir, "Tony_Blair", 1)
    out, crops = tmp_path / "det.jsonl", tmp_path / "crops"
    assert main(["detect", str(face), str(blank), str(broken), "--out", str(out), "--save-crops", str(crops)]) == 0
    meta, *lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert meta["meta"]["detector"] == "openvino" and meta["meta"]["run"]["inputs"]["count"] == 3
    assert [line["status"] for line in lines][:2] == ["ok", "no face"] and lines[2]["status"].startswith("error:")
    assert len(lines[0]["faces"]) >= 1 and lines[1]["faces"] == [] and lines[2]["faces"] == []
    first = lines[0]["faces"][0]
    assert len(first["box"]) == 4 and len(first["landmarks"]) == 5 and first["score"] > 0.9
    assert Image.open(first["crop"]).size == (160, 160)
    assert main(["detect", str(broken), "--out", str(tmp_path / "none.jsonl")]) == 1  # nothing could be read
    assert json.loads((tmp_path / "none.jsonl").read_text().splitlines()[1])["status"].startswith("error:")


def test_verify_same_and_different_people(lfw_dir, built_default, capsys):
    same = main(["verify", str(image_path(lfw_dir, "Tony_Blair", 1)), str(image_path(lfw_dir, "Tony_Blair", 2))])
    out_same = capsys.readouterr().out
    diff = main(["verify", str(image_path(lfw_dir, "Tony_Blair", 1)), str(image_path(lfw_dir, "Aaron_Eckhart", 1))])
    out_diff = capsys.readouterr().out
    assert (same, diff) == (0, 1)
    assert "same person" in out_same and "different people" in out_diff and "threshold" in out_same
    assert out_same.startswith("casia-webface (fp32): squared L2 distance")  # whose threshold it is


def test_verify_without_a_face_is_a_clear_error(tmp_path, lfw_dir, built_default, capsys):
    blank = tmp_path / "wall.png"
    Image.new("RGB", (200, 200), (200, 200, 200)).save(blank)
    assert main(["verify", str(blank), str(image_path(lfw_dir, "Tony_Blair", 1))]) == 2
    assert "wall.png: no face" in capsys.readouterr().err


def test_embed_detects_and_aligns_first(tmp_path, lfw_dir, built_default):
    paths = [image_path(lfw_dir, "Tony_Blair", k) for k in (1, 2)] + [image_path(lfw_dir, "Aaron_Eckhart", 1)]
    out = tmp_path / "e.npz"
    assert main(["embed", *map(str, paths), "--out", str(out), "--batch-size", "2"]) == 0
    result = EmbeddingSet.load(out)
    assert [str(s) for s in result.status] == ["ok"] * 3 and result.meta["align"] == "margin"
    d = lambda i, j: float(np.sum((result.embeddings[i] - result.embeddings[j]) ** 2))  # noqa: E731
    assert d(0, 1) < d(0, 2) and d(0, 1) < d(1, 2)
