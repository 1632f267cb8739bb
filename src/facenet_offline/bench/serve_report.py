"""The serve suite's section of benchmarks.md and its figure: rates and latencies by load, the targets, memory."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from ..cache import save_png
from .harness import RESULTS

# What the service is held to (issue 36): a share of the offline rate at the target load, p99 at 4 clients,
# and peak memory after 20,000 requests against after 2,000.
OF_OFFLINE, P99_CLIENTS, P99_MS, MEMORY_GROWTH = 0.85, 4, 1000.0, 0.05


def summary(section: dict) -> list[dict]:
    """One line per load (route, gallery, clients, server processes): medians over the rounds, batched beside
    unbatched, with the median of the rounds' paired ratios (batched over unbatched; at the target load, batched
    over offline). Rows without ``workers`` (runs before it was measured) are of one worker."""
    rows = [{"workers": 1, **r} for r in section["rows"]]
    keys = list(dict.fromkeys((r["route"], r["gallery"], r["clients"], r["workers"]) for r in rows))
    out = []
    for key in keys:
        route, gallery, clients, workers = key
        mine = [r for r in rows if (r["route"], r["gallery"], r["clients"], r["workers"]) == key]
        on = sorted((r for r in mine if r["batching"]), key=lambda r: r["round"])
        off = sorted((r for r in mine if not r["batching"]), key=lambda r: r["round"])

        def med(part: list[dict], field: str) -> float | None:
            values = [r[field] for r in part if r[field] is not None]
            return float(np.median(values)) if values else None

        line = {"route": route, "gallery": gallery, "clients": clients, "workers": workers,
                "batched": {f: med(on, f) for f in ("images_per_s", "p50_ms", "p99_ms", "mean_batch")},
                "unbatched": {f: med(off, f) for f in ("images_per_s", "p50_ms", "p99_ms")},
                "gain": float(np.median([a["images_per_s"] / b["images_per_s"] for a, b in zip(on, off)
                                         if b["images_per_s"]])) if on and off else None,
                "errors": sum(sum(r["errors"].values()) for r in mine), "of_offline": None}
        if route == "embed" and clients == section["target_clients"] and section["offline_rates"]:
            line["of_offline"] = float(np.median([a["images_per_s"] / o for a, o in zip(on, section["offline_rates"])]))
        out.append(line)
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _load_name(line: dict) -> str:
    return "detect+embed" if line["route"] == "embed" else f"identify, {line['gallery']:,} faces"


def _layout(workers: int, cores: int | None) -> str:
    """A server's processes and threads: ``serve --workers`` shares the cores among the workers."""
    if workers == 1:
        return "1 worker" + (f" x {cores} threads" if cores and cores > 1 else "")
    threads = max(1, cores // workers) if cores else None
    return f"{workers} workers" + (f" x {threads} thread{'s' if threads > 1 else ''}" if threads else "")


def targets(section: dict) -> list[str]:
    """Each target with what was measured and whether it holds."""
    lines = summary(section)
    out = []
    for target in (x for x in lines if x["of_offline"] is not None):
        held = "met" if target["of_offline"] >= OF_OFFLINE else "NOT met"
        how = "one worker (the default)" if target["workers"] == 1 else f"`--workers {target['workers']}`"
        gain = f"{target['gain']:.2f}x" if target["gain"] is not None else "-"
        out.append(f"- At {target['clients']} clients, detect+embed with batching, {how}, runs at "
                   f"**{target['of_offline']:.2f}** of the library's offline batch rate (target at least {OF_OFFLINE}: "
                   f"{held}); batching gains {gain} over the same server unbatched.")
    for line in (x for x in lines if x["clients"] == P99_CLIENTS and x["workers"] == 1):
        p99 = line["batched"]["p99_ms"]
        held = "met" if p99 is not None and p99 < P99_MS else "NOT met"
        out.append(f"- p99 at {P99_CLIENTS} clients, {_load_name(line)}: {_fmt(p99, 0)} ms "
                   f"(target under {P99_MS:,.0f} ms: {held}).")
    soak = section.get("soak")
    if soak and soak.get("growth") is not None:
        held = "met" if abs(soak["growth"]) <= MEMORY_GROWTH else "NOT met"
        out.append(f"- Peak RSS after {soak['checkpoint']:,} requests {soak['peak_mib_at_checkpoint']:,.0f} MiB, after "
                   f"{soak['requests']:,} {soak['peak_mib_at_end']:,.0f} MiB: {soak['growth']:+.1%} (target within "
                   f"{MEMORY_GROWTH:.0%}: {held}).")
    return out


def serve_section(section: dict) -> list[str]:
    offline = section["offline_rates"]
    soak = section.get("soak") or {}
    cores = section.get("cores")
    lines = ["## Service under load (`facenet-offline serve`)", "",
             f"Run of {section.get('date', '-')}. The server runs in a child process as users start it (one worker "
             f"by default; batches of at most {section['max_batch']} images waiting at most "
             f"{section['max_wait_ms']:g} ms); a "
             "closed-loop client on loopback (each client one request in flight, sent ready-encoded with the "
             f"standard library's HTTP client) sends the first {section['photos']} LFW photos of pairs.txt, one per "
             "request, to `/v1/embed` (every face detected and embedded) and to `/v1/identify` against galleries of "
             "synthetic faces. Unbatched is the same server with `--max-batch 1`, run in the same round. Detect+embed "
             "also runs against servers of several workers (`--workers N`: N processes, each with its own models "
             "and batcher, the cores shared among them), batched and unbatched. Each load "
             f"has {section['rounds']} rounds of a {section['warmup_s']:g} s warm-up and a {section['seconds']:g} s "
             "window; figures are medians over the rounds, ratios the median of the rounds' own ratios. Offline is "
             f"`FaceNet.embed_many` (batch {section['batch_size']}, every face) over the same photos, measured in "
             f"the rounds of the {section['target_clients']}-client load: {np.median(offline):.1f} images/s (range "
             f"{min(offline):.1f} - {max(offline):.1f}). Mean batch is images per detector run, read from the "
             f"server's /metrics. The figure: [serve.png]({RESULTS}/serve.png).", "",
             "| load | clients | server | batched images/s | p50 ms | p99 ms | mean batch | unbatched images/s | p50 ms "
             "| p99 ms | batched / unbatched | of offline |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for line in summary(section):
        on, off = line["batched"], line["unbatched"]
        errors = f" ({line['errors']} errors)" if line["errors"] else ""
        lines.append(f"| {_load_name(line)}{errors} | {line['clients']} | {_layout(line['workers'], cores)} | "
                     f"{_fmt(on['images_per_s'])} | "
                     f"{_fmt(on['p50_ms'], 0)} | {_fmt(on['p99_ms'], 0)} | {_fmt(on['mean_batch'])} | "
                     f"{_fmt(off['images_per_s'])} | {_fmt(off['p50_ms'], 0)} | {_fmt(off['p99_ms'], 0)} | "
                     f"{_fmt(line['gain'], 2)}x | {_fmt(line['of_offline'], 2)} |")
    lines += ["", "Targets:", ""] + targets(section)
    if soak:
        statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(soak["statuses"].items()))
        lines += ["", f"Memory: a fresh server took {soak['requests']:,} requests (detect+embed and identify in turn, "
                      f"{soak['clients']} clients) in {soak['wall_s']:,.0f} s (answers {statuses}); resident memory "
                      f"settled at {_fmt(soak.get('settled_mib'), 0)} MiB and moved "
                      f"{_fmt(soak.get('drift_mib'), 0)} MiB from the run's second quarter to its last."]
    return lines + [""]


def plot_serve(section: dict, path: Path) -> bool:
    """Images/s and p99 against clients for each load, batched and unbatched, and memory over the soak."""
    lines = summary(section)
    if not lines:
        return False
    matplotlib.use("Agg")
    fig, (rate_ax, p99_ax, mem_ax) = plt.subplots(1, 3, figsize=(15, 4.5), dpi=110)
    def series(line: dict) -> str:
        return _load_name(line) + ("" if line["workers"] == 1 else f", {line['workers']} workers")

    for k, name in enumerate(dict.fromkeys(series(x) for x in lines)):
        mine = [x for x in lines if series(x) == name]
        clients = [x["clients"] for x in mine]
        for batched, style in ((True, "-"), (False, ":")):
            which = "batched" if batched else "unbatched"
            label = f"{name}, {which}"
            rate_ax.plot(clients, [x[which]["images_per_s"] for x in mine], style, marker="o", color=f"C{k}",
                         label=label)
            p99_ax.plot(clients, [x[which]["p99_ms"] for x in mine], style, marker="o", color=f"C{k}", label=label)
    offline = float(np.median(section["offline_rates"]))
    rate_ax.axhline(offline, color="grey", lw=1)
    rate_ax.text(max(x["clients"] for x in lines), offline, f"offline batch rate {offline:.0f}", va="bottom",
                 ha="right", fontsize=8, color="grey")
    rate_ax.set(xscale="log", xlabel="concurrent clients", ylabel="images/s", title="Throughput")
    p99_ax.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="p99 latency, ms",
               title="Tail latency")
    p99_ax.axhline(P99_MS, color="grey", lw=1)
    for ax in (rate_ax, p99_ax):
        ax.set_xticks([x["clients"] for x in lines[:len(set(x["clients"] for x in lines))]])
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.grid(True, alpha=0.3)
    fig.legend(*rate_ax.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    soak = section.get("soak") or {}
    if soak.get("trace"):
        t, mib = np.array(soak["trace"]).T
        mem_ax.plot(t / t[-1] * soak["requests"], mib, lw=1)
        mem_ax.axvline(soak["checkpoint"], color="grey", lw=1)
        mem_ax.text(soak["checkpoint"], mib.min(), f" {soak['checkpoint']:,}", fontsize=8, color="grey")
        mem_ax.set(xlabel="requests done (from elapsed time)", ylabel="server resident memory, MiB",
                   title=f"Memory over {soak['requests']:,} requests")
        mem_ax.grid(True, alpha=0.3)
    fig.suptitle(f"facenet-offline serve on loopback ({section.get('date', '')})")
    fig.tight_layout(rect=(0, 0.1, 1, 1))  # the legend below the panels
    save_png(fig, path)
    return True
