"""A ``zoo serve`` in a subprocess, and its process tree read from Linux's /proc: roles, resident memory.

LitServe's processes: the main one (``zoo serve``), the multiprocessing manager (forked first: it holds the
request queue), the inference workers (spawned: ``multiprocessing.spawn``), the resource tracker, and the API
server processes (forked after the workers are ready: they run uvicorn). Forked processes share the main one's
command line, so they are told apart by when they started: before the first inference worker, the manager.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.baseline_server import ROOT, free_port


class ServerStartError(RuntimeError):
    """``zoo serve`` exited, or did not become healthy in time (the message ends with its log)."""


@dataclass
class ServerProcess:
    pid: int
    role: str  # main, manager, inference worker, API server, resource tracker
    rss_mb: float


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 1 and int(fields[1]) == pid:
                out.append(int(entry))
    return sorted(out)


def rss_mb(pid: int) -> float:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def server_processes(main_pid: int) -> list[ServerProcess]:
    """Every live process of the server whose main process is ``main_pid`` (Linux)."""
    children = _children(main_pid)
    commands = {pid: _read(f"/proc/{pid}/cmdline").replace("\0", " ") for pid in children}
    spawned = [pid for pid in children if "spawn_main" in commands[pid]]
    first_worker = min(spawned, default=0)
    procs = [ServerProcess(main_pid, "main", rss_mb(main_pid))]
    for pid in children:
        if "resource_tracker" in commands[pid]:
            role = "resource tracker"
        elif pid in spawned:
            role = "inference worker"
        else:
            role = "manager" if pid < first_worker else "API server"
        procs.append(ServerProcess(pid, role, rss_mb(pid)))
    return procs


def inference_workers(main_pid: int) -> list[int]:
    return [p.pid for p in server_processes(main_pid) if p.role == "inference worker"]


def wait_healthy(base_url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    """Return once ``GET /health`` answers 200; raise if the server exits or ``timeout`` passes."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServerStartError(f"zoo serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise ServerStartError(f"zoo serve did not answer /health in {timeout:g} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


@contextmanager
def serve(artifact: Path, args: list[str], env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """``zoo serve ARTIFACT ARGS`` on a free loopback port until the block ends: yields (base URL, main pid).
    Stopped with SIGTERM (its clean shutdown), its process group killed if it has not exited in 30 s."""
    port = free_port()
    cmd = [sys.executable, "-m", "zoo.cli", "serve", str(artifact), "--port", str(port), *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, 180, log)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
