"""The README as a new user follows it: every command line runs as printed and prints what the README shows,
and every Python snippet runs."""

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _steps(block: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown under it) for every ``$ `` line of one console block, in order."""
    steps = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def console_steps() -> list[tuple[str, list[str]]]:
    """The steps of every console block of the README, in order."""
    return [step for block in blocks("console") for step in _steps(block)]


def _line_matches(shown: str, printed: str) -> bool:
    """Text equal, ``...`` any text, numbers equal within the last digit they are shown to (a few units of it)."""
    pattern = "".join(".*?" if part == "..." else (r"([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)" if NUMBER.fullmatch(part)
                                                  else re.escape(part))
                      for part in re.split(r"(\.\.\.|[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", shown) if part)
    found = re.fullmatch(pattern, printed)
    if not found:
        return False
    for want, got in zip(NUMBER.findall(shown.replace("...", " ")), found.groups()):
        decimals = len(want.split("e")[0].split(".")[1]) if "." in want.split("e")[0] else 0
        if "e" in want.lower() or decimals == 0:
            if want != got and not ("e" in want.lower() and abs(float(want) - float(got)) <= 0.1 * abs(float(want))):
                return False
        elif abs(float(want) - float(got)) > max(3 * 10 ** -decimals, 0.005 * abs(float(want))):
            return False
    return True


def output_matches(shown: list[str], printed: list[str]) -> bool:
    """``shown`` lines in order against ``printed``; a line of ``...`` stands for any number of lines."""
    if not shown:
        return True
    if shown[0] == "...":
        return any(output_matches(shown[1:], printed[k:]) for k in range(len(printed) + 1))
    return bool(printed) and _line_matches(shown[0], printed[0]) and output_matches(shown[1:], printed[1:])


def test_the_output_matcher_is_strict_where_it_should_be():
    assert _line_matches("distance 0.9203; 6 faces", "distance 0.9221; 6 faces")
    assert not _line_matches("distance 0.9203; 6 faces", "distance 0.9603; 6 faces")
    assert not _line_matches("distance 0.9203; 6 faces", "distance 0.9203; 7 faces")
    assert not _line_matches("same person", "different people")
    assert _line_matches("casia-webface ... (x)", "casia-webface anything at all (x)")
    assert output_matches(["a", "...", "z"], ["a", "b", "c", "z"]) and not output_matches(["a", "z"], ["a", "b"])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A working folder as the repository's root looks to a user: ``src/`` there, outputs written beside it."""
    root = tmp_path_factory.mktemp("user")
    (root / "src").symlink_to(ROOT / "src")
    return root


def test_quick_start_is_the_two_make_commands_and_ci_runs_the_test_one():
    quick = blocks("sh")[0]
    assert [line.split("#")[0].strip() for line in quick.splitlines() if line.strip()] == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def ordered_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block, in the README's order."""
    return re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def test_every_command_line_and_snippet_runs_as_printed_and_prints_what_is_shown(sandbox, built_default,
                                                                                  built_mtcnn, monkeypatch):
    """The README from top to bottom in a user's working folder: each console command run by a shell, each
    Python snippet run, each output compared with what is shown. `serve` starts in the background and
    stays up for the commands and snippets after it."""
    assert len(console_steps()) >= 15 and all(cmd.startswith(("facenet-offline ", "curl "))
                                              for cmd, _ in console_steps())
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(sandbox)
    blocks_ = ordered_blocks()
    server = None
    try:
        for k, (language, text) in enumerate(blocks_):
            if language == "console":
                for command, shown in _steps(text):
                    if command.startswith("facenet-offline serve"):
                        server = _start_server(command, shown, sandbox, env)
                        continue
                    done = subprocess.run(["bash", "-c", command], cwd=sandbox, env=env, capture_output=True,
                                          text=True, timeout=600)
                    expected_code = 1 if shown and shown[-1] == "different people" else 0
                    assert done.returncode == expected_code, (command, done.stderr[-3000:])
                    assert output_matches(shown, done.stdout.splitlines()), (command, done.stdout)
                    assert shlex.split(command)  # a line a shell can split as printed
            elif language == "python":
                printed = io.StringIO()
                with contextlib.redirect_stdout(printed):
                    exec(compile(text, "README.md", "exec"), {})
                shown = blocks_[k + 1][1].splitlines() if blocks_[k + 1][0] == "text" else []
                assert shown and output_matches(shown, printed.getvalue().splitlines()), printed.getvalue()
        assert server is not None, "the README starts the service"
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)


def _start_server(command: str, shown: list[str], cwd: Path, env: dict) -> subprocess.Popen:
    """The README's serve command in the background: its first line as shown, then ready to answer."""
    server = subprocess.Popen(shlex.split(command), cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    assert output_matches(shown, [server.stdout.readline().rstrip("\n")]), command
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, "the service stopped"
        try:
            if httpx.get("http://127.0.0.1:8000/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError("the service did not become ready")


@pytest.mark.slow
def test_make_run_and_make_samples_run(tmp_path):
    """The Quick start's first command and ``make samples``, in the repository (its .venv is set up: this test
    run uses it). ``make test`` is what CI runs."""
    done = subprocess.run(["make", "run"], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "accuracy 0.99" in done.stdout and (ROOT / "out" / "lfw" / "report.md").is_file()
    done = subprocess.run(["make", "samples"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "squared L2 distance between embeddings" in done.stdout, done.stderr[-3000:]
