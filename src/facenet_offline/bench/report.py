"""Benchmark results as JSON (every raw figure) and Markdown tables (docs/benchmarks.md)."""

from __future__ import annotations

import json
from pathlib import Path

from ..cache import atomic_write_bytes, atomic_write_json


def _flag(summary: dict) -> str:
    return " (noisy)" if summary.get("noisy") else ""


def detection_table(rows: list[dict], images: int) -> list[str]:
    peer = next((r for r in rows if "peer" in r["engine"]), None)
    lines = [f"Images per second over {images} LFW images (250x250 JPEG, decoded beforehand); median of the timed",
             "runs, with the slowest and fastest run; the ratio is against the peer's median in the same run.", "",
             "| engine | batch | images/s (median) | slowest - fastest | vs peer | faces found |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        t = r["timing"]
        ratio = t["rate_median"] / peer["timing"]["rate_median"] if peer else float("nan")
        lines.append(f"| {r['engine']} | {r['batch_size']} | {t['rate_median']:.1f}{_flag(t)} | "
                     f"{t['rate_worst']:.1f} - {t['rate_best']:.1f} | {ratio:.2f}x | {r['faces']} (of {t['items']} images) |")
    return lines


def render_markdown(results: dict) -> str:
    m = results["machine"]
    lines = ["# Benchmarks", "", f"Made by `facenet-offline bench` on {results['date']}. Not tests: this machine is",
             "shared and noisy, so every figure is a median of repeated runs with its spread, and results whose",
             f"spread exceeds 15% of the median are marked (noisy).", "",
             "## Machine", "",
             f"- CPU: {m['cpu']}, {m['cores']} cores; Python {m['python']}",
             "- Libraries: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()), ""]
    if "ceiling" in results:
        c = results["ceiling"]
        lines += ["## Ceiling", "",
                  f"float32 GEMM ({c['n']}^3, torch, {c['threads']} threads): **{c['gflops']:.1f} GFLOP/s** "
                  f"(median of {len(c['timing']['runs_s'])} runs{_flag(c['timing'])}).", ""]
    if "detection" in results:
        d = results["detection"]
        lines += ["## Face detection (MTCNN)", ""] + detection_table(d["rows"], d["images"]) + [""]
    return "\n".join(lines) + "\n"


def write_report(results: dict, out_dir: str | Path) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "benchmarks.json", out_dir / "benchmarks.md"
    atomic_write_json(json_path, results)
    atomic_write_bytes(md_path, render_markdown(results).encode())
    return json_path, md_path


def load_results(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
