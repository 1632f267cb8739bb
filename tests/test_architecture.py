"""The package's layers (docs/architecture.md), enforced by import-linter: kept here, and broken by an upward
import or a cycle added on purpose to a copy of the source."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` over the package under ``root/src``, with the repository's contracts."""
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=root,
                          env={"PYTHONPATH": str(root / "src"), "PATH": str(LINT.parent)}, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def copy(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return tmp_path


def test_the_layers_are_kept():
    done = _lint(ROOT)
    assert done.returncode == 0 and "2 kept, 0 broken" in done.stdout, done.stdout[-3000:]


def test_an_upward_import_breaks_the_layers(copy):
    boxes = copy / "src" / "facenet_offline" / "detect" / "boxes.py"
    boxes.write_text(boxes.read_text() + "\nfrom ..cli import parser  # noqa: E402,F401 - the core reaching up\n")
    done = _lint(copy)
    assert done.returncode != 0 and "Layers: the command line and benchmarks on top" in done.stdout
    assert "facenet_offline.detect.boxes -> facenet_offline.cli.parser" in done.stdout, done.stdout[-3000:]


def test_a_cycle_between_siblings_is_broken(copy):
    boxes = copy / "src" / "facenet_offline" / "detect" / "boxes.py"  # mtcnn imports boxes; now boxes imports mtcnn
    boxes.write_text(boxes.read_text() + "\nfrom . import mtcnn  # noqa: E402,F401 - a cycle\n")
    done = _lint(copy)
    assert done.returncode != 0 and "No cycles between the modules of any package BROKEN" in done.stdout, \
        done.stdout[-3000:]
