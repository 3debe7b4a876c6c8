"""A real `zoo serve` subprocess on a free loopback port, for tests that speak HTTP to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(artifact: Path, args: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """Start `zoo serve ARTIFACT --port P ARGS`, wait until /health answers, yield the base URL, then stop it
    (SIGTERM so it shuts its workers down; the process group is killed if it does not exit in 30 s)."""
    port = free_port()
    cmd = [sys.executable, "-m", "zoo.cli", "serve", str(artifact), "--port", str(port), *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"zoo serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if requests.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"zoo serve did not become healthy in 180 s:\n{log.read_text()}")
            time.sleep(0.3)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
