"""The archive suite's section of benchmarks.md and its figure: Ray against the single process, scaling with
cores and actors, and the arithmetic of a 10-node cluster from the rates measured here."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from ..cache import save_png
from .harness import RESULTS

OF_SINGLE = 0.85  # issue 38: Ray's rate at least this share of the single process's, on the same cores
CLUSTER_NODES, NODE_CORES, CLUSTER_PHOTOS = 10, 16, 10_000_000


def _median(rows: list[dict], key) -> float:
    return float(np.median([key(r) for r in rows]))


def scaling_layouts(section: dict) -> list[dict]:
    """One row per scaling layout (engine, cores, actors per stage), the median of its runs, single first per
    core count."""
    groups: dict[tuple, list[dict]] = {}
    for r in (r for r in section["rows"] if r["set"] == "scaling"):
        groups.setdefault((r["cores"], r["engine"] != "single", r["workers"]), []).append(r)
    return [{**rows[0], "runs": len(rows), "images_per_s": _median(rows, lambda r: r["images_per_s"]),
             "wall_s": _median(rows, lambda r: r["wall_s"])} for _, rows in sorted(groups.items())]


def summary(section: dict) -> dict:
    """Medians of the main comparison per engine, the paired ratio, and each engine's fixed cost and marginal
    rate from its 2-core runs of two sizes (wall = fixed + images / rate)."""
    main = [r for r in section["rows"] if r["set"] == "main"]
    out = {}
    for engine in ("single", "ray"):
        mine = [r for r in main if r["engine"] == engine]
        if not mine:
            return {}
        line = {"images_per_s": _median(mine, lambda r: r["images_per_s"]), "wall_s": _median(mine, lambda r: r["wall_s"]),
                "startup_s": _median(mine, lambda r: r["startup_s"]),
                "memory_mib": {k: max(r["memory_mib"][k] for r in mine) for k in mine[0]["memory_mib"]},
                "output_bytes": mine[0]["output_bytes"], "faces": mine[0]["faces"], "images": mine[0]["images"]}
        small = [r for r in section["rows"] if r["set"] == "scaling" and r["engine"] == engine and r["cores"] == 2
                 and r["workers"] == (1 if engine == "ray" else 0)]
        if small and small[0]["images"] != line["images"]:
            n1, w1 = small[0]["images"], _median(small, lambda r: r["wall_s"])
            n2, w2 = line["images"], line["wall_s"]
            rate = (n2 - n1) / (w2 - w1) if w2 > w1 else None
            line["marginal_images_per_s"] = rate
            line["fixed_s"] = w1 - n1 / rate if rate else None
        out[engine] = line
    singles = sorted((r for r in main if r["engine"] == "single"), key=lambda r: section["rows"].index(r))
    rays = sorted((r for r in main if r["engine"] == "ray"), key=lambda r: section["rows"].index(r))
    out["ratio"] = float(np.median([b["images_per_s"] / a["images_per_s"] for a, b in zip(singles, rays)]))
    if out["single"].get("marginal_images_per_s") and out["ray"].get("marginal_images_per_s"):
        out["marginal_ratio"] = out["ray"]["marginal_images_per_s"] / out["single"]["marginal_images_per_s"]
    long = long_archive(section, out["single"]["images_per_s"])
    if long:
        out["long"] = long
    ray = [r for r in main if r["engine"] == "ray"]
    out["bytes_per_row"] = _median(ray, lambda r: r["output_bytes"] / r["rows"])
    out["rows_per_photo"] = _median(ray, lambda r: r["rows"] / r["images"])
    return out


def long_archive(section: dict, single_rate: float) -> dict | None:
    """The stages' CPU per photo in the main Ray runs (medians) and what they allow on a long archive, where
    Ray's backpressure holds detection to embedding's pace: one core each, the slower stage sets the rate."""
    rays = [r for r in section["rows"] if r["set"] == "main" and r["engine"] == "ray" and "cpu_s" in r]
    if not rays:
        return None
    detect = _median(rays, lambda r: r["cpu_s"]["detect"] / r["images"])
    embed = _median(rays, lambda r: r["cpu_s"]["embed"] / r["images"])
    rate = 1 / max(detect, embed)
    return {"detect_ms": 1000 * detect, "embed_ms": 1000 * embed, "images_per_s": rate, "of_single": rate / single_rate}


def long_archive_line(s: dict) -> list[str]:
    la = s.get("long")
    if not la:
        return []
    slower = "embedding" if la["embed_ms"] >= la["detect_ms"] else "detection"
    return [f"- A long archive: these {s['ray']['images']:,} photos run with detection ahead, and once it is done "
            "the embed stage grows onto its core. An archive long enough that the backlog between the stages fills "
            "the share of the object store that Ray's backpressure allows runs at the slower stage's pace instead. "
            f"The stages' CPU in the runs above (their actors' start-up included): detection "
            f"{la['detect_ms']:.0f} ms and embedding {la['embed_ms']:.0f} ms a photo, so with a core each, {slower} "
            f"sets the pace: at most {la['images_per_s']:.1f} images/s on 2 cores, **{la['of_single']:.2f}** of the "
            f"single process ({s['single']['images_per_s']:.1f}). The runs above go past that pace only because at "
            "their end both cores embed. The cluster estimate below uses this rate, as a bound: it takes the slower stage's actors as busy "
            "all the time."]


def break_even(s: dict) -> str:
    """From how many photos the whole Ray command reaches ``OF_SINGLE`` of the single process, by the fits."""
    one, ray = s["single"], s["ray"]
    if not (s.get("marginal_ratio") and s["marginal_ratio"] > OF_SINGLE and ray.get("fixed_s")):
        return ""
    # n / (a_r + n / r_r) = k n / (a_s + n / r_s)  =>  n = (k a_r - a_s) / (1 / r_s - k / r_r)
    k, a_r, r_r, r_s = OF_SINGLE, ray["fixed_s"], ray["marginal_images_per_s"], one["marginal_images_per_s"]
    n = (k * a_r - max(one.get("fixed_s") or 0.0, 0.0)) / (1 / r_s - k / r_r)
    return (f" The whole command reaches {OF_SINGLE} from about {n:,.0f} photos on, where Ray's fixed cost "
            f"weighs less ({a_r:.1f} s by the fit, of which starting Ray {ray['startup_s']:.1f} s; the rest is "
            "starting the actors and opening their models, filling and draining the pipeline, and stopping).")


def memory_growth(section: dict) -> list[str]:
    """Ray's memory at the two archive sizes of the same layout (2 cores, 1 worker): flat, or not."""
    rows = [r for r in section["rows"] if r["engine"] == "ray" and r["cores"] == 2 and r["workers"] == 1]
    small = [r for r in rows if r["images"] == section["scaling_images"]]
    large = [r for r in rows if r["images"] == section["images"]]
    if not small or not large or section["scaling_images"] == section["images"]:
        return []

    def peaks(part: list[dict]) -> str:
        m = {k: max(r["memory_mib"][k] for r in part) for k in ("driver", "detect_actor", "embed_actor",
                                                                   "all_processes")}
        return (f"driver {m['driver']:,.0f}, detect actor {m['detect_actor']:,.0f}, embed actor "
                f"{m['embed_actor']:,.0f}, all processes {m['all_processes']:,.0f} MiB")

    return [f"- Memory with the archive's size (Ray, 2 cores, 1 worker): {section['scaling_images']:,} photos: "
            f"{peaks(small)}; {section['images']:,} photos: {peaks(large)}. Rows stream from the actors to the "
            "writers; the driver holds the list of paths only."]


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def cluster_estimate(s: dict, cpu: str) -> list[str]:
    """What 10 nodes of 16 cores would do with 10 million photos, from this machine's measured Ray rate."""
    long = s.get("long") or {}
    rate = long.get("images_per_s") or s["ray"].get("marginal_images_per_s") or s["ray"]["images_per_s"]
    when = "at most, at a long archive's pace (the slower stage's)" if long else "after start-up"
    per_core = rate / 2
    cluster = per_core * CLUSTER_NODES * NODE_CORES
    hours = CLUSTER_PHOTOS / cluster / 3600
    size_gb = CLUSTER_PHOTOS * s["rows_per_photo"] * s["bytes_per_row"] / 1e9
    return [
        f"On paper, {CLUSTER_NODES} nodes of {NODE_CORES} cores each and {CLUSTER_PHOTOS:,} photos, from the rate "
        f"measured here: {rate:.1f} images/s on 2 cores {when}, so {per_core:.1f} per core ({cpu}). Each node "
        f"runs {NODE_CORES // 2} detect and {NODE_CORES // 2} embed actors of one thread (the default fills the "
        "cluster so), and the stages share no state, so the rate adds up over the nodes: "
        f"**{cluster:,.0f} images/s, {hours:.1f} hours** for {CLUSTER_PHOTOS:,} photos of LFW's size (250 x 250), "
        f"plus a start-up of the order measured here ({_fmt(s['ray'].get('fixed_s'), 0)} s). The output: "
        f"{s['rows_per_photo']:.2f} rows per photo at {s['bytes_per_row']:,.0f} bytes per row (512 float32 and the "
        f"rest, Parquet-compressed) is **{size_gb:,.1f} GB**. What this assumes and was not measured: cores like "
        "this machine's (hosts reported by the same name have run this suite at rates a factor of two apart on "
        "different days: compare the single process's rate here with other runs'), photos of LFW's "
        "size (detection grows with pixels: the memory section's phone-size photos run at a small fraction of LFW's "
        "rate), storage that serves the photos at the cluster's rate (about 15 KB per LFW photo: "
        f"{cluster * 15 / 1000:,.0f} MB/s) and a driver that lists 10 million paths (held as one list of "
        "strings, about 1 GB, before Ray streams them in blocks).", ""]


def archive_section(section: dict, cpu: str) -> list[str]:
    s = summary(section)
    if not s:
        return []
    one, ray = s["single"], s["ray"]
    rounds = sum(1 for r in section["rows"] if r["set"] == "main" and r["engine"] == "ray")
    held = "met" if s["ratio"] >= OF_SINGLE else "NOT met"
    lines = [
        "## Past one process: `embed --engine ray`", "",
        f"Run of {section.get('date', '-')}. The first {section['images']:,} LFW photos (name order), every one "
        "embedded (largest face) by `facenet-offline embed` in one process (2 threads) and by `--engine ray` (Ray "
        "Data on this machine: one detect and one embed actor, each holding one CPU and running one thread; the "
        "embed stage grows to two actors once detection is done), each run a fresh process pinned to the "
        f"machine's 2 cores. {rounds} round{'s' if rounds > 1 else ''}, each running both engines on both sizes close "
        "in time (this host's speed drifts between sets of runs, so ratios pair runs of one round); figures are "
        "medians, the ratio the median of the rounds' own. Rates are the whole command's, from its start (models "
        "opened from the cache; Ray started) to its output written. The marginal rate and fixed cost come from "
        f"runs of two sizes ({section['scaling_images']:,} and {section['images']:,} photos): wall = fixed + photos "
        "/ rate. Memory is sampled every 0.5 s through the process tree: the peak resident set of the driver (the "
        "command's own process) and of the largest detect and embed actor; and, counting a page shared by "
        "several processes once (their proportional sets, PSS, summed: Ray maps its object store into each), "
        "the peak of Ray's other processes together and of all of them together. The figure: "
        f"[archive.png]({RESULTS}/archive.png).", "",
        "| engine | images/s | wall s | marginal images/s | fixed s | Ray start s | driver MiB | detect actor MiB "
        "| embed actor MiB | Ray's other processes MiB | all processes MiB | output |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, line in (("single process (`embed`)", one), ("Ray Data (`--engine ray`)", ray)):
        m = line["memory_mib"]
        lines.append(f"| {name} | {line['images_per_s']:.1f} | {line['wall_s']:.0f} | "
                     f"{_fmt(line.get('marginal_images_per_s'))} | {_fmt(line.get('fixed_s'))} | "
                     f"{_fmt(line['startup_s']) if line is ray else '-'} | {m['driver']:,.0f} | "
                     f"{_fmt(m['detect_actor'] or None, 0)} | {_fmt(m['embed_actor'] or None, 0)} | "
                     f"{_fmt(m['ray_services'] or None, 0)} | {m['all_processes']:,.0f} | "
                     f"{line['output_bytes'] / 1e6:.1f} MB |")
    lines += ["", f"- Target, Ray at least {OF_SINGLE} of the single process's rate: **{s['ratio']:.2f}, {held}** "
                  "(whole commands)" + (f"; after start-up (marginal rates) {s['marginal_ratio']:.2f}."
                                        if s.get("marginal_ratio") else ".") + break_even(s),
              ] + long_archive_line(s) + memory_growth(section) + [
              "", "Scaling: the same photos, fewer of them, with Ray given 1 or 2 cores (CPU affinity, which Ray's "
                  "processes inherit) and 1 to 3 workers (a worker is one detect and one embed actor; Ray is told "
                  "of 2 logical CPUs per worker, so with more workers than cores the actors share them). The "
                  "single process on the same cores beside it. The 2-core rows of the single process and of one "
                  "worker are the rounds' runs; the others ran once, after the rounds.", "",
              "| engine | cores | workers (actor pairs) | images/s | wall s | runs |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in scaling_layouts(section):
        lines.append(f"| {r['engine']} | {r['cores']} | {r['workers'] or '-'} | {r['images_per_s']:.1f} | "
                     f"{r['wall_s']:.0f} | {r['runs']} |")
    return lines + [""] + cluster_estimate(s, cpu)


def plot_archive(section: dict, path: Path) -> bool:
    """Images/s of the scaling runs, Ray by workers on 1 and 2 cores, the single process beside it."""
    rows = scaling_layouts(section)
    if not rows:
        return False
    matplotlib.use("Agg")
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for k, cores in enumerate(sorted({r["cores"] for r in rows})):
        ray = sorted((r for r in rows if r["engine"] == "ray" and r["cores"] == cores), key=lambda r: r["workers"])
        ax.plot([r["workers"] for r in ray], [r["images_per_s"] for r in ray], "-o", color=f"C{k}",
                label=f"Ray, {cores} core{'s' if cores > 1 else ''}")
        for r in (r for r in rows if r["engine"] == "single" and r["cores"] == cores):
            ax.axhline(r["images_per_s"], color=f"C{k}", ls=":", lw=1)
            ax.text(max(x["workers"] for x in rows), r["images_per_s"], f"single process, {cores} core(s)",
                    ha="right", va="bottom", fontsize=8, color=f"C{k}")
    ax.set(xlabel="workers (one detect + one embed actor each)", ylabel="images/s (whole command)",
           title=f"embed --engine ray, {rows[0]['images']:,} LFW photos ({section.get('date', '')})")
    ax.set_xticks(sorted({r["workers"] for r in rows if r["workers"]}))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_png(fig, path)
    return True
