"""The OpenVINO backend's static-shape models: compiled for recurring small shapes, identical outputs, bounded."""

import numpy as np
import pytest

from facenet_offline.runtime.openvino import OpenVinoBackend, StaticShapes


def test_recurring_small_shapes_get_static_models_with_identical_outputs(built_mtcnn):
    policy = StaticShapes(after=2, max_rows=2, max_elements=3 * 40 * 40, capacity=2)
    net = OpenVinoBackend(built_mtcnn.files["pnet"], threads=1, static_shapes=policy)
    plain = OpenVinoBackend(built_mtcnn.files["pnet"], threads=1)
    rng = np.random.default_rng(0)
    # The last two are over max_elements and over max_rows.
    shapes = [(1, 3, 30, 30), (1, 3, 40, 40), (2, 3, 20, 20), (1, 3, 60, 60), (3, 3, 12, 12)]
    for rep in range(3):
        for shape in shapes:
            x = rng.uniform(-1, 1, shape).astype(np.float32)
            ours, theirs = net.run(x), plain.run(x)
            assert len(ours) == len(theirs) == 2
            assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))
        if rep == 0:
            assert net.static_shapes_compiled == ()  # each seen once: not yet
    # Three shapes came back; with room for two the first compiled was dropped; the large ones never compiled.
    assert net.static_shapes_compiled == ((1, 3, 40, 40), (2, 3, 20, 20))
    assert plain.static_shapes_compiled == ()


@pytest.mark.parametrize("net", ["rnet", "onet"])
def test_row_slices_make_each_rows_output_independent_of_its_batch(built_mtcnn, net):
    from facenet_offline.detect import OPENVINO_ROW_SLICE

    size = {"rnet": 24, "onet": 48}[net]
    sliced = OpenVinoBackend(built_mtcnn.files[net], threads=2, row_slice=OPENVINO_ROW_SLICE)
    x = np.random.default_rng(1).uniform(-1, 1, (300, 3, size, size)).astype(np.float32)
    whole = sliced.run(x)
    assert [len(o) for o in whole] == [300] * len(whole)
    for start, rows in ((0, 1), (7, 2), (100, 33), (250, 50), (0, 200)):
        part = sliced.run(x[start:start + rows])
        assert all(np.array_equal(p, w[start:start + rows]) for p, w in zip(part, whole)), (start, rows)
    with pytest.raises(ValueError, match="row_slice"):
        OpenVinoBackend(built_mtcnn.files[net], row_slice=0)


def test_static_shapes_policy_is_validated():
    with pytest.raises(ValueError, match="at least 1"):
        StaticShapes(capacity=0)


@pytest.mark.parametrize("threads, pinning, expected", [(None, None, True), (4, None, True), (2, None, False),
                                                         (1, None, False), (1, True, True), (None, False, False)])
def test_threads_are_pinned_to_cores_only_when_they_cover_every_cpu(built_mtcnn, monkeypatch, threads, pinning,
                                                                    expected):
    # OpenVINO pins by default, onto the same first cores in every process: two one-thread
    # workers would share a core. The backend turns it off below the CPUs the process may use.
    import facenet_offline.runtime.openvino as module

    monkeypatch.setattr(module, "usable_cpus", lambda: 4)  # as imported there
    net = OpenVinoBackend(built_mtcnn.files["onet"], threads=threads, pinning=pinning)
    assert net.compiled.get_property("ENABLE_CPU_PINNING") is expected
