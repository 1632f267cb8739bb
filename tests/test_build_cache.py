"""The model cache under concurrent and killed builds: a model that is not complete and verified is never used."""

import signal
import subprocess
import sys
import time

from facenet_offline.model_cache import RECORD, BuildOptions, build_facenet, facenet_cache_dir, parity_batch
from facenet_offline.model_cache.store import _read_valid
from facenet_offline.runtime.onnxruntime import OnnxRuntimeBackend
from facenet_offline.weights import get_spec, resolve_weights

BUILD = [sys.executable, "-m", "facenet_offline.cli", "-v", "models", "build"]


def _folder():
    spec = get_spec("casia-webface")
    return facenet_cache_dir(spec, resolve_weights(spec).sha256, BuildOptions())


def test_two_processes_building_the_same_model_build_it_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(tmp_path))
    runs = [subprocess.Popen(BUILD, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    logs = "".join(err for _, err in outputs)
    assert logs.count("INFO facenet_offline.model_cache: built ") == 1, logs  # the other waited, then used it
    paths = {out.splitlines()[0] for out, _ in outputs}
    assert len(paths) == 1
    assert _read_valid(_folder()) is not None  # every file matches the record's sha256


def test_a_killed_build_is_never_used_and_the_next_build_completes(tmp_path, monkeypatch):
    monkeypatch.setenv("FACENET_OFFLINE_HOME", str(tmp_path))
    folder = _folder()
    child = subprocess.Popen(BUILD, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (folder.is_dir() and any(folder.iterdir())) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert child.poll() is None, "the build finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (folder / RECORD).exists() and _read_valid(folder) is None  # nothing there looks complete
    leftovers = sorted(p.name for p in folder.iterdir())
    built = build_facenet()
    assert built.folder == folder and _read_valid(folder) is not None
    assert not list(folder.glob(".*.tmp")), f"temporary files of the killed build stay: {leftovers}"
    (out,) = OnnxRuntimeBackend(built.path).run(parity_batch(built.spec))
    assert out.shape == (8, 512)


_EMBED_FROM_CACHE = """
import sys
from facenet_offline import FaceNet
from facenet_offline.samples import PROBES
faces = FaceNet().embed(PROBES / "Tony_Blair_0003.jpg")
heavy = sorted({"torch", "onnx", "onnxslim", "onnxruntime.quantization"} & set(sys.modules))
print(len(faces), heavy)
"""


def test_models_in_the_cache_open_without_torch(built_default, built_mtcnn):
    """Building needs torch and ONNX's tools; a command that finds its models built loads neither (it starts
    faster and holds less memory, and so does every Ray worker)."""
    out = subprocess.run([sys.executable, "-c", _EMBED_FROM_CACHE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "[]"], out.stdout + out.stderr
