"""The server under test, in its own process: ``allegiance serve`` (or the hello-world baseline) on
127.0.0.1 and a free port, stopped with SIGTERM when the measurement ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from bench.common import REPO, free_port, rss_kb
from bench.db import cli, server_env


class Server:
    """A subprocess serving HTTP on loopback; a context manager that waits until it answers."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, log_path: Path,
                 ready_path: str = "/healthz") -> None:
        self.command = command
        self.env = env
        self.port = port
        self.log_path = log_path
        self.ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def allegiance(cls, url: str, log_path: Path, *, workers: int = 1) -> Server:
        port = free_port()
        command = [cli(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        return cls(command, server_env(url), port, log_path)

    @classmethod
    def hello(cls, log_path: Path) -> Server:
        port = free_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        return cls([sys.executable, "-m", "bench.hello", "--port", str(port)], env, port, log_path,
                   ready_path="/openapi.json")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def start(self, timeout: float = 60.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=str(REPO))
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer {self.ready_path} within {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
