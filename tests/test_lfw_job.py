"""The LFW job end to end on real data: fold 1 of pairs.txt, raw JPEG to report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from facenet_offline.cli import main
from facenet_offline.cli.evaluation import lfw_options
from facenet_offline.cli.parser import build_parser
from facenet_offline.data.lfw_dataset import read_pairs, read_view1
from facenet_offline.detect.align import AlignConfig
from facenet_offline.evaluate.lfw_job import LfwOptions

ROOT = Path(__file__).resolve().parents[1]


def test_pairs_file_parsing(lfw_dir):
    view2 = read_pairs(lfw_dir / "pairs.txt")
    assert len(view2) == 6000 and [p.fold for p in view2[::600]] == list(range(10))
    assert sum(p.same for p in view2[:600]) == 300
    dev = read_pairs(lfw_dir / "pairsDevTest.txt")
    assert len(dev) == 1000 and {p.fold for p in dev} == {0}


def test_view1_is_the_development_set_in_one_pool(lfw_dir):
    view1 = read_view1(lfw_dir)
    assert len(view1) == 3200 and sum(p.same for p in view1) == 1600 and {p.fold for p in view1} == {0}
    assert view1[:2200] == read_pairs(lfw_dir / "pairsDevTrain.txt")  # train first, then test


def test_lfw_command_defaults_are_the_job_defaults():
    # The parser writes the defaults out (so --help stays light); they must be LfwOptions' own.
    args = build_parser().parse_args(["lfw"])
    assert lfw_options(args) == LfwOptions()
    changed = lfw_options(build_parser().parse_args(["lfw", "--margin", "40", "--flip", "none", "--no-subtract-mean"]))
    assert (changed.align.margin, changed.flip.value, changed.protocol.subtract_mean) == (40.0, "none", False)
    # Each model's protocol defaults are its own View 1 choice (docs/input-convention.md), as the registry holds.
    chosen = json.loads((ROOT / "docs" / "results" / "input-convention.json").read_text())["models"]
    for name, measured in chosen.items():
        best = measured["rows"][0]
        options = lfw_options(build_parser().parse_args(["lfw", "--model", name]))
        assert (options.protocol.distance.value, options.flip.value, options.protocol.subtract_mean) == (
            best["distance"], best["flip"], best["subtract_mean"]), name


def test_fold_1_end_to_end(tmp_path, lfw_dir, built_default, built_mtcnn, capsys):
    out = tmp_path / "report"
    assert main(["lfw", "--folds", "1", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["pairs"] == 600 and report["images"] > 700
    # Accuracy at least 0.98 of the 600 pairs: at most 12 misclassified. Counted, because a fold mean of
    # exactly 0.98 can come out a rounding step below it.
    assert len(report["misclassified"]) <= 12 and report["result"]["accuracy_mean"] > 0.98 - 1e-9, report["result"]
    assert report["result"]["auc"] >= 0.99
    assert (out / "roc.png").stat().st_size > 10_000 and "# LFW verification report" in (out / "report.md").read_text()
    assert report["detection_failures"]["count"] == len(report["detection_failures"]["images"])
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "AUC" in printed
    # One fold cannot train a FAR 1e-3 threshold: the console and the report both say VAL was not measured.
    assert "VAL not measured" in printed and report["val"]["measured"] is False
    assert "| not measured | - |" in (out / "report.md").read_text()
    # Re-scoring with other protocol options reuses the cached detections and embeddings.
    assert main(["lfw", "--folds", "1", "--out", str(out), "--distance", "angular", "--subtract-mean"]) == 0
    again = json.loads((out / "report.json").read_text())
    assert set(again["timings_s"]["from_cache"]) == {"detections", "embeddings"}
    assert again["result"]["options"]["distance"] == "angular"


def test_unknown_lfw_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["lfw", "--lfw-dir", str(tmp_path)]) == 2
    assert "no LFW images found" in capsys.readouterr().err


def test_the_registry_holds_the_committed_operating_points():
    """``verify``, ``identify`` and the gallery decide with these: they must be what the tool measured and committed."""
    from facenet_offline.weights import get_spec

    measured = json.loads((ROOT / "docs" / "results" / "operating-points.json").read_text())
    for name in ("casia-webface", "ms-celeb-1m"):
        spec = get_spec(name)
        points = {p["far_target"]: p for p in measured["models"][name]["points"]}
        for point in (spec.threshold, *spec.far_points):
            row = points[point.far_target]
            assert point.threshold == row["threshold_rounded"], name
            assert point.far == pytest.approx(row["far"], rel=5e-3) and point.tar == pytest.approx(row["tar"], abs=5e-5)
        assert sorted(spec.fars) == sorted(k for k in points if k is not None)
    # Measured on the crops every command makes by default.
    assert measured["options"]["align"]["margin"] == AlignConfig().margin == LfwOptions().align.margin


@pytest.mark.slow
def test_operating_points_are_what_view_1_gives_today(tmp_path, built_default, built_mtcnn):
    """A fresh run of tools/operating_points.py gives the thresholds the registry holds."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "operating_points.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = json.loads((tmp_path / "results" / "operating-points.json").read_text())["models"]["casia-webface"]["points"]
    committed = json.loads((ROOT / "docs" / "results" / "operating-points.json").read_text())["models"]["casia-webface"]["points"]
    assert [p["threshold_rounded"] for p in fresh] == [p["threshold_rounded"] for p in committed]
