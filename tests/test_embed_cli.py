"""`facenet-offline embed --aligned`: real output on good input, clear errors and no output on bad input."""

import numpy as np
import pytest

from facenet_offline.cli import main
from facenet_offline.data.lfw_dataset import image_path
from facenet_offline.distance import squared_l2_matrix as distance_matrix
from facenet_offline.embedding_set import EmbeddingSet
from facenet_offline.samples import sample_face_paths

from .conftest import centre_crop


def test_embed_sample_faces(tmp_path, built_default, capsys):
    out = tmp_path / "emb.npz"
    assert main(["embed", str(sample_face_paths()[0].parent), "--aligned", "--out", str(out),
                 "--batch-size", "3", "--print-distances"]) == 0
    result = EmbeddingSet.load(out)
    assert result.embeddings.shape == (8, 512) and result.embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
    assert [str(s) for s in result.status] == ["ok"] * 8 and result.meta["model"] == "casia-webface"
    assert result.faces.tolist() == [0] * 8 and result.boxes.tolist() == [[0, 0, 160, 160]] * 8
    d = distance_matrix(result.embeddings)
    for i in range(0, 8, 2):  # the samples are two images each of four people, in name order
        others = [d[i, j] for j in range(8) if j // 2 != i // 2]
        assert d[i, i + 1] < min(others)
    assert "squared L2 distance" in capsys.readouterr().out


def test_batch_size_does_not_change_embeddings(tmp_path, built_default):
    folder = str(sample_face_paths()[0].parent)
    main(["embed", folder, "--aligned", "--out", str(tmp_path / "a.npz"), "--batch-size", "1"])
    main(["embed", folder, "--aligned", "--out", str(tmp_path / "b.npz"), "--batch-size", "8"])
    a, b = EmbeddingSet.load(tmp_path / "a.npz"), EmbeddingSet.load(tmp_path / "b.npz")
    assert np.max(np.abs(a.embeddings - b.embeddings)) < 1e-5


def test_same_person_pairs_are_closer_than_different_ones(lfw_dir, lfw_pairs, built_default):
    from facenet_offline.data.images import load_rgb
    from facenet_offline.engines import open_embedder

    embedder = open_embedder()
    same = [p for p in lfw_pairs if p.fold == 0 and p.same][:6]
    diff = [p for p in lfw_pairs if p.fold == 0 and not p.same][:6]

    def dist(p):
        a, b = embedder.embed([centre_crop(load_rgb(image_path(lfw_dir, p.name1, p.num1))),
                               centre_crop(load_rgb(image_path(lfw_dir, p.name2, p.num2)))])
        return float(np.sum((a - b) ** 2))

    assert max(dist(p) for p in same) < min(dist(p) for p in diff)


@pytest.mark.parametrize("content,label", [(b"", "empty"), (b"name,age\nann,3\n", "not an image")])
def test_bad_single_input_fails_naming_the_file_and_records_its_status(tmp_path, capsys, built_default, content,
                                                                        label):
    bad = tmp_path / "face.jpg"
    bad.write_bytes(content)
    out = tmp_path / "out.npz"
    assert main(["embed", str(bad), "--aligned", "--out", str(out)]) == 1  # nothing succeeded
    err = capsys.readouterr().err
    assert str(bad) in err and label in err
    result = EmbeddingSet.load(out)
    assert result.status[0].is_error and label in result.status[0].detail and np.isnan(result.embeddings).all()
    assert str(bad) not in result.status[0].detail and result.paths == [str(bad)]  # the path once, in its column
    assert not list(tmp_path.glob(".out.npz*")) and not (tmp_path / "out.npz.parts").exists()


def test_missing_path_is_an_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out.npz"
    assert main(["embed", str(tmp_path / "nope.jpg"), "--aligned", "--out", str(out)]) == 2
    assert "nope.jpg" in capsys.readouterr().err
    assert not out.exists()


def test_mixed_inputs_keep_going_with_a_status_per_input(tmp_path, built_default):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    good = sample_face_paths()[0]
    out = tmp_path / "out.npz"
    assert main(["embed", str(good), str(bad), "--aligned", "--out", str(out)]) == 0
    assert main(["embed", str(good), str(bad), "--aligned", "--out", str(tmp_path / "s.npz"), "--strict"]) == 1
    result = EmbeddingSet.load(out)
    assert result.status[0].ok and result.status[1].is_error and result.paths[1] == str(bad)
    assert np.isnan(result.embeddings[1]).all() and not np.isnan(result.embeddings[0]).any()


def test_parts_are_assembled_into_one_set_without_loading_them_together(tmp_path):
    from facenet_offline.embedding_set import save_concatenated

    rng = np.random.default_rng(0)
    parts = [EmbeddingSet([f"dir/{k}-{i}.jpg" for i in range(n)], rng.standard_normal((n, 8)).astype(np.float32),
                          ["ok"] * (n - 1) + [f"error: part {k} has a long status " + "x" * k * 10], {"part": k},
                          inputs=np.arange(n) + 10 * k)
             for k, n in enumerate((3, 1, 5))]
    files = [p.save(tmp_path / f"part{k}.npz") for k, p in enumerate(parts)]
    summary = save_concatenated(tmp_path / "all.npz", files, {"model": "m"})
    whole = EmbeddingSet.load(tmp_path / "all.npz")
    assert whole.paths == [p for part in parts for p in part.paths]
    assert whole.status == [s for part in parts for s in part.status]
    assert np.array_equal(whole.embeddings, np.concatenate([p.embeddings for p in parts]))
    assert whole.meta == {"model": "m"}
    assert whole.inputs.tolist() == [0, 1, 2, 10, 20, 21, 22, 23, 24]
    assert (summary.inputs, summary.ok, summary.faces) == (9, 6, 6)
    assert summary.failures == [(part.paths[-1], part.status[-1]) for part in parts]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["all.npz", "part0.npz", "part1.npz", "part2.npz"]


def test_embedder_runs_come_in_a_few_shapes_and_no_padded_rows(built_default, lfw_dir, lfw_pairs):
    """The faces per batch vary; the runtime must only see a few row counts, and the pieces change nothing."""
    from facenet_offline.data.images import load_rgb
    from facenet_offline.data.tensors import pad_rows, row_pieces
    from facenet_offline.engines import open_embedder

    batch = np.arange(3 * 2, dtype=np.float32).reshape(3, 2)
    assert pad_rows(batch, 8).shape == (4, 2) and np.array_equal(pad_rows(batch, 8)[:3], batch)  # below 8: a power of 2
    eleven = np.ones((11, 2), np.float32)
    assert pad_rows(eleven, 8).shape == (16, 2) and not pad_rows(eleven, 8)[11:].any()
    assert pad_rows(eleven, 8, limit=13).shape == (13, 2) and pad_rows(batch, 3) is batch
    assert pad_rows(batch, 8, small=2).shape == (4, 2) and pad_rows(eleven[:5], 8, small=2).shape == (6, 2)
    assert pad_rows(eleven, 8, small=2).shape == (16, 2)  # ``small`` only applies below ``multiple``
    for n in range(0, 70):
        pieces = row_pieces(n, 8)
        assert sum(pieces) == n and pieces == sorted(pieces, reverse=True)
        assert all(p % 8 == 0 or p in (1, 2, 4) for p in pieces) and len(pieces) <= 4
    assert row_pieces(21, 8) == [16, 4, 1] and row_pieces(8, 8) == [8] and row_pieces(0, 8) == []
    for n in range(0, 120):  # no run past max_rows, whatever the batch: the runtime's memory follows the longest
        pieces = row_pieces(n, 8, 32)
        assert sum(pieces) == n and max(pieces, default=0) <= 32 and all(p % 8 == 0 or p in (1, 2, 4) for p in pieces)
    assert row_pieces(77, 8, 32) == [32, 32, 8, 4, 1]
    with pytest.raises(ValueError, match="multiple of 8"):
        row_pieces(10, 8, 12)
    embedder = open_embedder()
    seen = []
    real = embedder.backend.run
    embedder.backend.run = lambda b: seen.append(len(b)) or real(b)
    p = lfw_pairs[0]
    one = centre_crop(load_rgb(image_path(lfw_dir, p.name1, p.num1)))
    faces = [one, np.ascontiguousarray(one[:, ::-1])] * 5 + [one]
    together = embedder.embed(faces)
    assert seen == [8, 2, 1] and together.shape == (11, 512)
    alone = np.stack([embedder.embed([f])[0] for f in faces[:2]])
    assert np.allclose(together[:2], alone, atol=1e-5) and np.allclose(together[-1], alone[0], atol=1e-5)
    seen.clear()
    many = embedder.embed(faces * 4)  # 44 faces: no run past the embedder's max_rows (32)
    assert seen == [32, 8, 4] and np.allclose(many[:11], together, atol=1e-5)
    seen.clear()
    embedder.warm()  # the service's start: one run as long as any will be
    assert seen == [32]


def test_many_failures_are_summarised_not_listed_one_by_one(capsys):
    from facenet_offline.cli.common import SHOWN_FAILURES, report_failures

    failures = [(f"photo{k}.jpg", "no face") for k in range(SHOWN_FAILURES + 5)]
    assert report_failures(failures, "out.npz") == SHOWN_FAILURES + 5
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "photo0.jpg: no face" and len(lines) == SHOWN_FAILURES + 1
    assert lines[-1] == "... and 5 more failed inputs (every input's status is in out.npz)"
