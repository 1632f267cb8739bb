"""The README quotes benchmark figures by hand; they must be the ones in the committed docs/benchmarks.json,
so that a bench rerun without a README update fails here instead of leaving stale figures."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def readme() -> str:
    return " ".join((ROOT / "README.md").read_text().split())  # line breaks as spaces


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads((ROOT / "docs" / "benchmarks.json").read_text())


def _openvino_detection(results: dict) -> dict[int, dict]:
    return {r["batch_size"]: r for r in results["detection"]["rows"] if r["engine"] == "ours (openvino)"}


def test_readme_detection_ratios_are_the_committed_run(readme, results):
    rows = _openvino_detection(results)
    whole = [f"{np.median(rows[b]['peer_ratios']):.2f}" for b in (64, 16, 1)]
    nets = [f"{np.median(rows[b]['net_peer_ratios']):.2f}x" for b in (64, 16, 1)]
    quoted = re.search(r"detects (\S+) times as many images per second as the peer in batches of 64 LFW photos, "
                       r"(\S+) times in batches of 16 and (\S+) times one photo at a time", readme)
    assert quoted and list(quoted.groups()) == whole
    alone = re.search(r"The three nets alone would be (\S+), (\S+) and (\S+):", readme)
    assert alone and list(alone.groups()) == nets
    peer = rows[64]["peer_rate"]
    assert f"the peer at {peer:.0f} images/s" in readme


def test_readme_workers_figures_are_the_committed_run(readme, results):
    rate = {(r["backend"], r["label"]): f"{r['rate']:.1f}" for r in results["workers"]["rows"]}
    two, one = "2 workers x 1 thread", "1 worker x 2 threads"
    quoted = (f"{rate['openvino', two]} against {rate['openvino', one]} images/s on OpenVINO, "
              f"{rate['onnxruntime', two]} against {rate['onnxruntime', one]} on ONNX Runtime")
    assert quoted in readme
    pinned = rate["openvino", two + ", pinned to cores (OpenVINO's default)"]
    assert f"halve that ({pinned})" in readme


def test_readme_lfw_headline_is_the_committed_report(readme):
    result = json.loads((ROOT / "docs" / "lfw" / "report.json").read_text())["result"]
    headline = f"accuracy {result['accuracy_mean']:.5f} +- {result['accuracy_std']:.5f}, AUC {result['auc']:.4f}"
    assert f"**{headline}**" in readme
