"""The Python API (``facenet_offline.FaceNet`` and friends) as a user calls it: any image in, dataclasses out."""

import dataclasses
import inspect
import io
import re
import textwrap
import threading

import numpy as np
import pytest
from PIL import Image

import facenet_offline
from facenet_offline import FaceNet, Gallery, ImageError, Status, StatusKind, cluster, identify
from facenet_offline.api import NoFaceError
from facenet_offline.data.images import load_image
from facenet_offline.data.lfw_dataset import image_path
from facenet_offline.detect.align import AlignConfig
from facenet_offline.errors import NoThresholdError


@pytest.fixture(scope="module")
def fn(built_default, built_mtcnn):
    return FaceNet()


@pytest.fixture(scope="module")
def photos(lfw_dir):
    return {"tony1": image_path(lfw_dir, "Tony_Blair", 1), "tony2": image_path(lfw_dir, "Tony_Blair", 2),
            "tony3": image_path(lfw_dir, "Tony_Blair", 3), "colin": image_path(lfw_dir, "Colin_Powell", 1),
            "colin2": image_path(lfw_dir, "Colin_Powell", 2)}


def _rotated_jpeg(path) -> bytes:
    """The photo stored sideways with EXIF orientation 6, as a phone saves it."""
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    buf = io.BytesIO()
    Image.open(path).rotate(90, expand=True).save(buf, format="JPEG", exif=exif, quality=95)
    return buf.getvalue()


def test_the_front_door_exports_the_api_and_nothing_heavy_on_import():
    assert {"FaceNet", "Gallery", "identify", "cluster", "Status"} <= set(facenet_offline.__all__)
    assert {"Face", "Verification", "ImageResult"} <= set(dir(facenet_offline))
    assert "FaceNet" in dir(facenet_offline) and facenet_offline.FaceNet is FaceNet
    for name in dir(facenet_offline):  # every lazy name resolves
        assert getattr(facenet_offline, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'FaceNett'"):
        facenet_offline.FaceNett  # noqa: B018 - a typo is an error, not None


def test_the_package_docstring_example_runs(tmp_path, monkeypatch, built_default, built_mtcnn, capsys):
    monkeypatch.chdir(tmp_path)  # it makes "my-gallery" in the working folder
    block = facenet_offline.__doc__.split("::\n", 1)[1]
    code = block[:re.search(r"\n(?=\S)", block).start()]  # up to the first line that is not indented
    exec(compile(textwrap.dedent(code), "facenet_offline.__doc__", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("True ") and "FAR" in out[0] and len(out) == 1 + 5 + 5
    assert "Tony_Blair_0003.jpg [('Tony Blair'," in "\n".join(out[6:])
    assert (tmp_path / "my-gallery" / "gallery.sqlite").is_file()


def test_constructor_options_are_used_and_bad_ones_are_named(built_default, built_mtcnn):
    fn = FaceNet(backend="openvino", detector_backend="onnxruntime", threads=1, faces="nearest-centre",
                 align=AlignConfig(margin=32))
    assert fn.description["backend"] == "openvino" and fn.options.select.value == "nearest-centre"
    assert fn.options.align.margin == 32 and fn.detector_backend == "onnxruntime"
    assert "faces='nearest-centre'" in repr(fn)
    with pytest.raises(ValueError, match="Valid: onnxruntime, openvino"):
        FaceNet(backend="tensorflow")
    with pytest.raises(ValueError, match="Valid: largest"):
        FaceNet(faces="biggest")
    with pytest.raises(ValueError, match=r"Valid models \(aliases\): casia-webface"):
        FaceNet(model="nope")


def test_detect_gives_faces_with_box_score_landmarks_and_crops_on_demand(fn, photos):
    faces = fn.detect(photos["tony1"])
    assert faces and all(isinstance(f, facenet_offline.Face) for f in faces)
    first = faces[0]
    assert first.box.shape == (4,) and first.landmarks.shape == (5, 2) and 0.9 < first.score <= 1.0
    assert first.index == 0 and first.crop.size == 0 and first.embedding.size == 0
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    with_crops = fn.detect(photos["tony1"], crops=True)
    assert with_crops[0].crop.shape == (160, 160, 3) and with_crops[0].crop.dtype == np.uint8


def test_embed_takes_the_chosen_face_or_every_face_and_ready_crops(fn, photos, lfw_dir):
    group = image_path(lfw_dir, "Gene_Robinson", 3)  # two faces: the subject and a larger one beside him
    every = fn.embed(group, faces="all")
    largest, centre = fn.embed(group, faces="largest"), fn.embed(group, faces="nearest-centre")
    assert len(every) >= 2 and len(largest) == len(centre) == 1
    assert largest[0].index != centre[0].index
    for face in every:
        assert face.embedding.shape == (512,) and abs(np.linalg.norm(face.embedding) - 1) < 1e-4
    assert np.allclose(largest[0].embedding, next(f for f in every if f.index == largest[0].index).embedding, atol=1e-5)
    crop = fn.detect(photos["tony1"], crops=True)[0].crop
    ready = fn.embed(crop, aligned=True)
    assert len(ready) == 1 and np.isnan(ready[0].score) and ready[0].box.tolist() == [0, 0, 160, 160]
    assert float(np.sum((ready[0].embedding - fn.embed(photos["tony1"])[0].embedding) ** 2)) < 1e-3


def test_no_face_is_an_empty_list_and_a_bad_image_an_error_naming_it(fn, tmp_path):
    wall = np.full((200, 200, 3), 128, np.uint8)
    assert fn.detect(wall) == [] and fn.embed(wall) == []
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageError) as info:
        fn.embed(bad)
    assert str(info.value).count(str(bad)) == 1 and "not an image" in str(info.value)
    with pytest.raises(ImageError, match=r"^bytes \(3 bytes\): not an image"):
        fn.detect(b"abc")
    with pytest.raises(NoFaceError, match="input 1: array .*: no face found; cannot verify"):
        fn.verify(wall, wall)


@pytest.mark.parametrize("kind", ["path", "str", "bytes", "bytearray", "file", "pil", "array", "grey", "rgba"])
def test_every_kind_of_input_gives_the_same_face(fn, photos, kind):
    path = photos["tony1"]
    rgb = np.asarray(Image.open(path).convert("RGB"))
    given = {"path": path, "str": str(path), "bytes": path.read_bytes(), "bytearray": bytearray(path.read_bytes()),
             "file": open(path, "rb"), "pil": Image.open(path), "array": rgb,
             "grey": np.asarray(Image.open(path).convert("L")),
             "rgba": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])}[kind]
    reference = fn.embed(path)[0]
    face = fn.embed(given)[0]
    if kind == "grey":  # another picture: the same person, near
        assert float(np.sum((face.embedding - reference.embedding) ** 2)) < 0.5
    else:
        assert np.allclose(face.box, reference.box, atol=1e-3)
        assert np.allclose(face.embedding, reference.embedding, atol=1e-5)


def test_anything_else_is_a_type_error_naming_what_is_accepted(fn):
    for wrong in (3, 2.5, {"path": "a.jpg"}, io.StringIO("text")):
        with pytest.raises(TypeError, match="path, bytes, a binary file object, a PIL image, or a numpy array"):
            fn.detect(wrong)
    with pytest.raises(ImageError, match="uint8"):
        fn.detect(np.zeros((50, 50, 3), np.float32))


def test_bytes_and_pil_images_get_the_exif_orientation_and_size_bound_of_paths(fn, photos, tmp_path):
    data = _rotated_jpeg(photos["tony1"])
    (tmp_path / "phone.jpg").write_bytes(data)
    upright = fn.embed(photos["tony1"])[0]
    for given in (tmp_path / "phone.jpg", data, Image.open(io.BytesIO(data))):
        face = fn.embed(given)[0]  # found only if turned upright first
        assert np.allclose(face.embedding, upright.embedding, atol=2e-2)
        assert np.allclose(face.box, upright.box, atol=2.0)
    big = Image.new("RGB", (9000, 600), (120, 120, 120))
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    for given in (buf.getvalue(), big, np.asarray(big)):
        decoded = load_image(given)
        assert decoded.size == (600, 9000) and max(decoded.pixels.shape[:2]) == 4096


def test_verify_returns_distance_threshold_verdict_operating_point_and_faces(fn, photos):
    same = fn.verify(photos["tony1"], photos["tony2"])
    other = fn.verify(photos["tony1"], photos["colin"])
    assert isinstance(same, facenet_offline.Verification) and dataclasses.is_dataclass(same)
    assert same.same and not other.same and same.distance < other.distance
    assert same.threshold == fn.spec.threshold.threshold and same.operating_point.far is not None
    assert same.face1.embedding.shape == (512,) and same.face2.box.shape == (4,)
    strict = fn.verify(photos["tony1"], photos["tony2"], far=1e-4)
    assert strict.threshold < same.threshold and strict.operating_point.far_target == 1e-4
    assert fn.verify(photos["tony1"], photos["tony2"], threshold=0.1).threshold == 0.1
    with pytest.raises(ValueError, match="faces='all'"):
        fn.verify(photos["tony1"], photos["tony2"], faces="all")
    with pytest.raises(ValueError, match="far=0.005"):
        fn.verify(photos["tony1"], photos["tony2"], far=0.005)


def test_the_threshold_lookup_lives_in_the_spec_once(fn):
    spec = fn.spec
    assert spec.operating_point() is spec.threshold
    assert spec.operating_point(far=1e-3).threshold < spec.operating_point(far=1e-2).threshold
    assert spec.operating_point(default_far=1e-3) == spec.operating_point(far=1e-3)
    assert spec.operating_point(threshold=0.9, default_far=1e-3).source == "given"
    bare = dataclasses.replace(spec, threshold=None, far_points=())
    with pytest.raises(NoThresholdError, match="pass threshold="):
        bare.operating_point()
    with pytest.raises(ValueError, match="not both"):
        spec.operating_point(threshold=1.0, far=1e-3)


def test_embed_many_streams_a_status_per_input_in_order(fn, photos, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 nope")
    inputs = [photos["tony1"], tmp_path / "broken.jpg", np.full((100, 100, 3), 9, np.uint8), photos["colin"].read_bytes()]
    results = fn.embed_many(inputs)
    assert not isinstance(results, list)  # a stream
    results = list(results)
    assert [r.status.kind for r in results] == [StatusKind.OK, StatusKind.ERROR, StatusKind.NO_FACE, StatusKind.OK]
    assert results[1].source == str(tmp_path / "broken.jpg") and str(tmp_path) not in results[1].status.detail
    assert results[3].source.startswith("input 3: bytes") and len(results[3].faces) == 1


def test_the_status_type_reads_back_what_files_store():
    for text in ("ok", "no face", "too small", "error: empty file (0 bytes); replace it"):
        assert str(Status.parse(text)) == text
    assert Status.parse("error: x: y").detail == "x: y" and not Status.parse("no face").ok
    with pytest.raises(ValueError, match="valid: ok, no face"):
        Status.parse("fine")


def test_gallery_identify_and_cluster_take_the_same_inputs(fn, photos, tmp_path):
    gallery = Gallery.open(tmp_path / "g", create=True)
    report = gallery.enrol("Tony", [photos["tony1"].read_bytes(), Image.open(photos["tony2"])], fn)
    gallery.enrol("Colin", np.asarray(Image.open(photos["colin"])), fn)
    assert len(report.added) == 2 and gallery.people() == [("Colin", 1), ("Tony", 2)]
    found = identify([open(photos["tony3"], "rb"), photos["colin2"]], gallery, fn)
    assert [image.faces[0].identity for image in found] == ["Tony", "Colin"]
    assert found[0].operating_point.far_target == 1e-3 and found[0].source.startswith("input 0:")
    groups = cluster([photos["tony1"].read_bytes(), Image.open(photos["tony2"]), photos["colin"]], fn)
    by_source = {face.source: c.id for c in groups.clusters for face in c.faces if face.face == 0}
    assert len(set(by_source.values())) == 2 and groups.images == 3


def test_inputs_come_first_then_the_models():
    for function, inputs in ((identify, ["images", "gallery"]), (cluster, ["images"]),
                             (Gallery.enrol, ["self", "name", "images"]), (FaceNet.verify, ["self", "image1", "image2"]),
                             (FaceNet.embed_many, ["self", "inputs"])):
        names = list(inspect.signature(function).parameters)
        assert names[:len(inputs)] == inputs, (function, names)
        if "model" in names:
            assert names.index("model") == len(inputs)


def test_one_instance_from_four_threads_gives_the_serial_results(fn, photos):
    images = [photos[k] for k in ("tony1", "tony2", "colin", "colin2")]
    serial = [fn.embed(img)[0].embedding for img in images]
    errors, results = [], {}

    def work(k: int) -> None:
        try:
            for call in range(50):
                results[k, call] = fn.embed(images[(k + call) % 4])[0].embedding
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 200
    assert all(np.array_equal(results[k, call], serial[(k + call) % 4]) for k, call in results)
