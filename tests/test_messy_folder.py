"""A real, messy photo folder through `detect` and `embed`: a status per image, the run goes on, exit codes."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from facenet_offline.cli import main
from facenet_offline.data.images import load_rgb
from facenet_offline.data.lfw_dataset import image_path
from facenet_offline.embedding_set import EmbeddingSet

HUGE_FACE = (5000, 3000, 6500, 4500)  # where the face photo is pasted in the 12000 x 9000 image


def _huge(path, face: np.ndarray) -> None:
    big = Image.new("RGB", (12000, 9000), (120, 110, 100))
    big.paste(Image.fromarray(face).resize((1500, 1500)), HUGE_FACE[:2])
    big.save(path, quality=85)


@pytest.fixture(scope="module")
def messy(tmp_path_factory, lfw_dir):
    root = tmp_path_factory.mktemp("messy") / "my photos"
    (root / "Zoë Ñandú").mkdir(parents=True)
    src = image_path(lfw_dir, "Tony_Blair", 1)
    face = load_rgb(src)
    data = src.read_bytes()
    (root / "face.jpg").write_bytes(data)
    (root / "Zoë Ñandú" / "фото 1.jpg").write_bytes(data)
    others = [load_rgb(image_path(lfw_dir, name, 1)) for name in
              ("Aaron_Eckhart", "Colin_Powell", "George_W_Bush", "Gloria_Macapagal_Arroyo", "Serena_Williams")]
    grid = np.concatenate([np.concatenate([face, *others[:2]], 1), np.concatenate(others[2:], 1)], 0)
    Image.fromarray(grid).save(root / "group.jpg", quality=95)
    Image.fromarray(np.tile(np.linspace(40, 220, 300, dtype=np.uint8), (200, 1))).convert("RGB").save(root / "wall.png")
    Image.new("RGB", (12, 10), (128, 100, 90)).save(root / "tiny.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(face).rotate(90, expand=True).save(root / "phone.jpg", exif=exif, quality=95)
    _huge(root / "huge.jpg", face)
    Image.fromarray(face).convert("CMYK").save(root / "cmyk.jpg", quality=95)
    Image.fromarray(face).convert("L").save(root / "grey.jpg", quality=95)
    Image.fromarray(np.dstack([face, np.full((250, 250), 255, np.uint8)])).save(root / "alpha.png")
    cv2.imwrite(str(root / "deep.png"), face[..., ::-1].astype(np.uint16) * 257)
    (root / "cut.jpg").write_bytes(data[:len(data) // 2])
    corrupt = bytearray(data)
    corrupt[len(data) // 2:len(data) // 2 + 200] = b"\xff" * 200
    (root / "corrupt.jpg").write_bytes(bytes(corrupt))
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("not a picture")
    os.symlink(root, root / "Zoë Ñandú" / "loop")
    return root


GOOD_FACES = ["face.jpg", "фото 1.jpg", "phone.jpg", "huge.jpg", "cmyk.jpg", "grey.jpg", "alpha.png", "deep.png"]
UNREADABLE = {"cut.jpg": "truncated", "corrupt.jpg": "corrupt", "empty.jpg": "empty file", "notes.png": "not an image"}


def test_detect_gives_every_image_a_status_and_goes_on(tmp_path, messy, built_mtcnn, capsys):
    out = tmp_path / "faces.jsonl"
    assert main(["detect", str(messy), "--out", str(out)]) == 0
    meta, *lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    records = {os.path.basename(r["path"]): r for r in lines}
    assert len(lines) == len(records) == 15  # every file once: the link loop is not walked twice
    for name in GOOD_FACES:
        assert records[name]["status"] == "ok" and len(records[name]["faces"]) >= 1, name
    for name, words in UNREADABLE.items():
        assert records[name]["status"].startswith("error:") and words in records[name]["status"], records[name]
    assert records["wall.png"]["status"] == "no face" and records["wall.png"]["faces"] == []
    assert records["tiny.png"]["status"] == "too small" and records["tiny.png"]["faces"] == []
    assert len(records["group.jpg"]["faces"]) >= 6
    huge = records["huge.jpg"]
    assert (huge["width"], huge["height"]) == (12000, 9000) and huge["detected_at"]["width"] == 4096
    x1, y1, x2, y2 = max(huge["faces"], key=lambda f: f["score"])["box"]  # in the original's pixels
    assert HUGE_FACE[0] < x1 < x2 < HUGE_FACE[2] and HUGE_FACE[1] < y1 < y2 < HUGE_FACE[3]
    assert x2 - x1 > 300
    phone = records["phone.jpg"]
    assert (phone["width"], phone["height"]) == (250, 250)
    upright = records["face.jpg"]["faces"][0]["box"]
    assert np.abs(np.array(phone["faces"][0]["box"]) - upright).max() < 3  # found as in the upright original
    assert "4 unreadable" in capsys.readouterr().out
    assert main(["detect", str(messy), "--out", str(tmp_path / "strict.jsonl"), "--strict"]) == 1


def test_embed_gives_every_image_a_status_and_the_same_face_the_same_embedding(tmp_path, messy, built_default,
                                                                                 built_mtcnn, capsys):
    out = tmp_path / "emb.npz"
    assert main(["embed", str(messy), "--out", str(out)]) == 0
    result = EmbeddingSet.load(out)
    status = {os.path.basename(p): str(s) for p, s in zip(result.paths, result.status)}
    assert len(status) == len(result.paths) == 15
    for name in GOOD_FACES + ["group.jpg"]:
        assert status[name] == "ok", (name, status[name])
    assert status["wall.png"] == "no face" and status["tiny.png"] == "too small"
    for name, words in UNREADABLE.items():
        assert status[name].startswith("error:") and words in status[name]
    err = capsys.readouterr().err
    assert all(name in err for name in UNREADABLE) and "wall.png: no face" in err
    emb = {os.path.basename(p): e for p, e in zip(result.paths, result.embeddings)}
    for name in GOOD_FACES:  # the same photo, stored in other ways, is the same face
        assert np.sum((emb[name] - emb["face.jpg"]) ** 2) < 0.25, name
    assert result.meta["model"] == "casia-webface" and result.meta["run"]["command"] == "embed"
    assert main(["embed", str(messy), "--out", str(tmp_path / "strict.npz"), "--strict"]) == 1


def _peak_rss_mib(args: list[str]) -> float:
    """Peak resident memory (VmHWM) of a fresh `facenet-offline` process running ``args``."""
    code = ("import sys; from facenet_offline.cli import main; rc = main(sys.argv[1:]); "
            "print('PEAK', open('/proc/self/status').read().split('VmHWM:')[1].split()[0]); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split("PEAK")[-1]) / 1024


def test_a_huge_photo_costs_no_more_memory_than_one_at_the_decode_bound(tmp_path, lfw_dir, built_mtcnn):
    face = load_rgb(image_path(lfw_dir, "Tony_Blair", 1))
    _huge(tmp_path / "huge.jpg", face)
    with Image.open(tmp_path / "huge.jpg") as img:  # the same picture, stored at the decode bound
        img.resize((4096, 3072), Image.Resampling.BOX).save(tmp_path / "bound.jpg", quality=85)
    bound = _peak_rss_mib(["detect", str(tmp_path / "bound.jpg"), "--out", str(tmp_path / "a.jsonl")])
    huge = _peak_rss_mib(["detect", str(tmp_path / "huge.jpg"), "--out", str(tmp_path / "b.jsonl")])
    # Decoded whole, the 12000 x 9000 photo is 309 MiB as uint8 and MTCNN's pyramid of it several
    # times that; decoded at the bound it costs about what a 4096 x 3072 photo costs.
    print(f"peak RSS: 4096 x 3072 photo {bound:.0f} MiB, 12000 x 9000 photo {huge:.0f} MiB")
    assert huge - bound < 150, (bound, huge)
