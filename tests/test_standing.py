"""The README's table of where the project stands: made from the committed results by bench.standing, never typed."""

import copy
import json
import sys
from pathlib import Path

import pytest

from facenet_offline.bench.standing import BEGIN, END, USED, render, replace_table, standing

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import readme_results  # noqa: E402 - the tool that writes the table


@pytest.fixture(scope="module")
def committed():
    return (json.loads((ROOT / "docs" / "results" / "benchmarks.json").read_text()),
            json.loads((ROOT / "docs" / "results" / "lfw" / "report.json").read_text()))


def test_the_readme_table_is_what_the_committed_results_give():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index(BEGIN):readme.index(END) + len(END)]
    assert table == readme_results.table(), "run tools/readme_results.py after committing new results"


def test_the_generator_reads_each_figure_from_its_results(committed):
    benchmarks, report = copy.deepcopy(committed[0]), copy.deepcopy(committed[1])
    report["result"].update(accuracy_mean=0.95, accuracy_std=0.01, auc=0.98)
    fp32 = next(r for r in benchmarks["models"]["rows"]
                if r["model"] == "facenet" and r["backend"] == "onnxruntime" and r["batch_size"] == 16)
    fp32.update(items_per_s=10.0, ceiling_gflops=100.0)
    rows = {r.measure.split(",")[0] + r.measure.split(",")[1]: r for r in standing(benchmarks, report)}
    lfw = rows["LFW accuracy default model (float32)"]
    assert lfw.ours == "0.95000 ± 0.01000 (AUC 0.9800)" and "0.98667" in lfw.beside
    speed = next(r for r in standing(benchmarks, report) if r.measure.startswith("FaceNet, float32"))
    gflop = benchmarks["models"]["facenet_gflop_per_image"]
    assert speed.ours == f"10.0 images/s, {10 * gflop / 100:.0%} of the machine's float32 GEMM ceiling"
    int8 = next(r for r in standing(benchmarks, report) if r.measure.startswith("FaceNet, INT8"))
    q8 = next(r for r in benchmarks["models"]["rows"]
              if r["model"] == "facenet" and r["backend"] == "onnxruntime-int8" and r["batch_size"] == 16)["items_per_s"]
    assert int8.ours == f"{q8:.1f} images/s ({q8 / 10:.2f}x float32)"  # against the float32 row set above
    models = json.loads((ROOT / "docs" / "results" / "models.json").read_text())
    models["models"]["ms-celeb-1m"].update(accuracy_mean=0.97, accuracy_std=0.02, auc=0.99, val_mean=0.9)
    second = next(r for r in standing(benchmarks, report, models) if "ms-celeb-1m" in r.measure)
    assert second.ours == "0.97000 ± 0.02000 (AUC 0.9900, VAL at FAR 1e-3 0.900)" and "published: 0.992" in second.beside
    assert not any("ms-celeb-1m" in r.measure for r in standing(benchmarks, report))
    del benchmarks["e2e"]
    assert not any(r.measure.startswith("The LFW job") for r in standing(benchmarks, report))
    broken = copy.deepcopy(committed[0])
    broken["models"]["rows"] = [r for r in broken["models"]["rows"] if r["backend"] != "opencv-peer"]
    with pytest.raises(ValueError, match="no facenet row for opencv-peer"):
        standing(broken, report)


def test_the_table_names_the_machine_and_replaces_only_its_block(committed):
    table = render(standing(*committed), committed[0])
    measured = next(line for line in table.splitlines() if line.startswith("Measured on "))
    on = {o["cpu"] for s, o in committed[0]["measured_on"].items() if s in USED}
    assert on and all(cpu in measured for cpu in on)  # every machine a section of the table was measured on
    assert table.startswith(BEGIN) and table.endswith(END) and table.count("\n| ") >= 6
    text = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    assert replace_table(text, table) == f"intro\n{table}\noutro\n"
    with pytest.raises(ValueError, match="one pair of standing markers"):
        replace_table("no markers", table)
