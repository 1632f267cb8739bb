"""Write the README's table of where the project stands from the committed results.

Reads docs/results/benchmarks.json (`facenet-offline bench`), docs/results/lfw/report.json
(`facenet-offline lfw --out docs/results/lfw`) and docs/results/models.json (`tools/model_comparison.py`), renders them with facenet_offline.bench.standing
and replaces the table between its markers in README.md. A test fails when the README's table is
not what the committed results give.

Run: .venv/bin/python tools/readme_results.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facenet_offline.bench.standing import render, replace_table, standing

ROOT = Path(__file__).resolve().parents[1]


def table(docs: Path = ROOT / "docs") -> str:
    benchmarks = json.loads((docs / "results" / "benchmarks.json").read_text())
    report = json.loads((docs / "results" / "lfw" / "report.json").read_text())
    models = json.loads((docs / "results" / "models.json").read_text())
    return render(standing(benchmarks, report, models), benchmarks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    args = parser.parse_args()
    path = Path(args.readme)
    path.write_text(replace_table(path.read_text(), table()))
    print(table())


if __name__ == "__main__":
    main()
