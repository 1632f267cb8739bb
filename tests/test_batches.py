import pytest

from facenet_offline.data.batches import bounded_runs


def test_runs_are_bounded_by_count_and_budget_and_tile_the_input():
    sizes = [10, 10, 10, 300, 10, 10, 10, 10, 10]
    runs = list(bounded_runs(sizes, budget=100, max_count=3))
    assert runs == [(0, 3), (3, 4), (4, 7), (7, 9)]  # count | over the budget, alone | count | the rest
    assert list(bounded_runs(sizes, budget=25)) == [(0, 2), (2, 3), (3, 4), (4, 6), (6, 8), (8, 9)]
    assert list(bounded_runs([], 100, 3)) == []


def test_runs_are_produced_lazily():
    seen = []

    def sizes():
        for s in [1, 1, 1, 1, 1]:
            seen.append(s)
            yield s

    runs = bounded_runs(sizes(), budget=100, max_count=2)
    assert next(runs) == (0, 2) and len(seen) == 3  # one item ahead, not the whole stream


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        list(bounded_runs([1], budget=0))
    with pytest.raises(ValueError, match="at least 1"):
        list(bounded_runs([1], budget=10, max_count=0))


def test_decoded_batches_hold_at_most_the_pixel_budget(tmp_path, lfw_dir):
    from facenet_offline.data.lfw_dataset import image_path
    from facenet_offline.errors import ImageError
    from facenet_offline.face_loop import decoded_batches

    photos = [image_path(lfw_dir, "Tony_Blair", k) for k in range(1, 6)]  # 250 x 250 each
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    paths = photos[:2] + [broken] + photos[2:]
    batches = list(decoded_batches(paths, batch_size=4, batch_pixels=2 * 250 * 250))
    assert [len(b) for b in batches] == [3, 2, 1]  # two photos (and the unreadable file) | two | one
    source, error = batches[0][2]
    assert isinstance(error, ImageError) and source.path == broken and "broken.jpg" in str(error)
    assert [s.path for b in batches for s, _ in b] == paths  # in input order
    flat = [d for b in batches for _, d in b if not isinstance(d, ImageError)]
    assert len(flat) == 5 and all(d.pixels.shape == (250, 250, 3) for d in flat)
    assert [len(b) for b in decoded_batches(paths, batch_size=4)] == [4, 2]  # small photos: the count decides
