"""`facenet-offline serve` in a child process on a free loopback port: what the tests and the benchmark talk to.

The child runs the command users run, so what is measured and tested is the real server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .keys import HEADER


def free_port() -> int:
    """A loopback port nothing listens on now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """The server with ``args`` (after ``serve --port P``), its output in ``log``; ready once ``/readyz`` answers."""

    def __init__(self, log: str | Path, *args: str, env: dict | None = None, ready_s: float = 180):
        self.port = free_port()
        self.log, self.ready_s = Path(log), ready_s
        self.args = ["serve", "--port", str(self.port), *args]
        self.env = {**os.environ, **(env or {})}
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> ServerProcess:
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "facenet_offline.cli", *self.args], stdout=out,
                                         stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + self.ready_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"the server was not ready within {self.ready_s:g} s:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""

    def client(self, key: str | None = None, timeout: float = 120) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout, headers={HEADER: key} if key else {})

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """The exit status; after SIGTERM, uvicorn finishes in-flight requests, then ends by that signal."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        except subprocess.TimeoutExpired:
            self.stop(signal.SIGKILL)
