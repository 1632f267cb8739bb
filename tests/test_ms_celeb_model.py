"""The second shipped FaceNet (ms-celeb-1m, 20170512-110547, 128-d) goes everywhere the default goes:
ONNX with parity, FP16 and INT8, OpenVINO, the NPU and TensorRT exports, the LFW job, galleries, the bench."""

from __future__ import annotations

import numpy as np
import pytest

from facenet_offline.distance import row_cosine
from facenet_offline.model_cache import BuildOptions, build_facenet
from facenet_offline.runtime.onnxruntime import OnnxRuntimeBackend
from facenet_offline.weights import get_spec

NAME = "ms-celeb-1m"


@pytest.fixture(scope="module")
def built(ms_celeb_weights):
    return build_facenet(BuildOptions(model=NAME))


@pytest.fixture(scope="module")
def embedder(built):
    from facenet_offline.engines import open_embedder

    return open_embedder(NAME)


def test_the_onnx_build_matches_torch_and_gives_128_d_unit_embeddings(built, lfw_faces):
    from facenet_offline.data.tensors import face_batch
    from facenet_offline.runtime.torch import TorchBackend
    from facenet_offline.weights.loader import load_facenet

    spec = get_spec(NAME)
    assert built.record["parity_max_abs_diff"] <= 1e-4 and built.record["model"] == NAME
    assert built.record["input"] == {"name": "input", "layout": "NCHW", "size": 160, **spec.norm.key()}
    batch = face_batch(lfw_faces, 160, spec.norm)
    (onnx_out,) = OnnxRuntimeBackend(built.path).run(batch)
    (torch_out,) = TorchBackend(load_facenet(NAME)).run(batch)
    assert onnx_out.shape == (len(lfw_faces), 128)
    assert np.allclose(np.linalg.norm(onnx_out, axis=1), 1, atol=1e-5)
    assert np.abs(onnx_out - torch_out).max() <= 1e-4


def test_fp16_and_int8_builds_stay_close_to_float32(built, lfw_faces):
    from facenet_offline.data.tensors import face_batch

    faces = face_batch(lfw_faces, 160, get_spec(NAME).norm)
    (ref,) = OnnxRuntimeBackend(built.path).run(faces)
    # INT8: 0.99 and more on AVX-512 hosts; 0.980 on an AVX2 host without VNNI, whose ONNX Runtime int8 kernels differ.
    for precision, floor in (("fp16", 0.9999), ("int8", 0.975)):
        low = build_facenet(BuildOptions(model=NAME, precision=precision, calibration_images=32))
        assert low.record["model"] == NAME and low.record["vs_fp32"]["min_cosine"] >= floor
        (out,) = OnnxRuntimeBackend(low.path).run(faces)
        assert row_cosine(ref, out).min() >= floor, precision


def test_openvino_runs_it_with_onnxruntime_results(embedder, lfw_faces):
    from facenet_offline.engines import open_embedder

    ov = open_embedder(NAME, backend="openvino")
    assert ov.description["model"] == NAME and ov.description["input"] == embedder.description["input"]
    assert np.abs(ov.embed(lfw_faces[:6]) - embedder.embed(lfw_faces[:6])).max() <= 1e-4


@pytest.mark.parametrize("target", ["npu", "tensorrt"])
def test_the_accelerator_exports_carry_it_and_say_how_it_wants_its_input(tmp_path, built, built_mtcnn, target):
    from facenet_offline.export.targets import export_target

    result = export_target(target, tmp_path, NAME, facenet_batches=[1])
    facenet = [n for n in result.files if n.startswith("facenet")]
    assert facenet and all(result.parity[n] <= 1e-4 for n in facenet)
    readme = (tmp_path / "README.md").read_text()
    assert "`embeddings`: N x 128" in readme and get_spec(NAME).norm.describe() in readme


def test_the_lfw_job_scores_it(tmp_path, embedder, detector, lfw_dir):
    """The job on the first 40 pairs of pairs.txt, in its own pairs file (another LFW layout a user may bring)."""
    from facenet_offline.evaluate.lfw_job import run_lfw

    lines = (lfw_dir / "pairs.txt").read_text().splitlines()
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(["1\t20"] + lines[1:21] + lines[301:321]) + "\n")
    run = run_lfw(str(lfw_dir), embedder, detector, {"backend": "openvino"}, pairs_file=str(pairs))
    assert run.model["model"] == NAME and len(run.pairs) == 40
    assert run.result.accuracy_mean >= 0.9


def test_a_gallery_keeps_to_one_model(tmp_path, embedder):
    from facenet_offline.recognition.gallery import Gallery, GalleryError

    with Gallery.open(tmp_path / "g", embedder.description, create=True) as g:
        g.add("ann", np.eye(128, dtype=np.float32)[:2], ["a1", "a2"])
    with pytest.raises(GalleryError, match="another model"):
        Gallery.open(tmp_path / "g", dict(embedder.description, model="casia-webface", weights_sha256="0" * 64))


def test_the_models_bench_runs_it_and_names_it(built):
    from facenet_offline.bench.models import bench_models

    rows = bench_models(("facenet",), ("onnxruntime", "opencv-peer"), {"facenet": (1,)}, repeats=1, seconds=0.05,
                        facenet_model=NAME)
    assert [(r["backend"], r["facenet_model"]) for r in rows] == [("onnxruntime", NAME)]  # the peer runs casia only
    assert rows[0]["items_per_s"] > 0
