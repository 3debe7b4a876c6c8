"""Does a searching request hold up the fast path? p50 of ``POST /predict`` without search, alone and while two
searching requests run, against one ``zoo serve`` started here (default settings: search workers at a lower
CPU priority, one per core).

Rounds: alone, busy (two client threads keep a searching request of ``--search-seconds`` in flight each),
alone again; the fast path's requests are sent one at a time in every round. The recording is ``zoo bench
--http``'s default (a Vital note, 48 kHz stereo WAV).

    python -m benchmarks.search_http artifacts/vital-resnet18/dev --requests 40 --search-seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.baseline_server import free_port
from benchmarks.http_load import check_health
from benchmarks.latency import LatencyStats
from benchmarks.machine import cpu_model, load_average
from benchmarks.recording import synth_recording

ROOT = Path(__file__).resolve().parents[1]


def _start_server(artifact: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "zoo.cli", "serve", str(artifact), "--port", str(port), "--log-level", "warning"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"zoo serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            check_health(base, timeout=2)
            return proc, base
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _post(session, base: str, body: bytes, search: float = 0.0) -> dict:
    files = {"audio": ("note.wav", body, "audio/wav")}
    data = {"search_seconds": f"{search:g}"} if search else None
    reply = session.post(f"{base}/predict", files=files, data=data, timeout=120)
    reply.raise_for_status()
    return reply.json()


def _fast_round(base: str, body: bytes, n: int) -> list[float]:
    import requests

    out = []
    with requests.Session() as session:
        for _ in range(n):
            t0 = time.perf_counter()
            _post(session, base, body)
            out.append(time.perf_counter() - t0)
    return out


def _searching_clients(base: str, body: bytes, seconds: float, stop: threading.Event, found: list) -> list:
    import requests

    def loop() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                found.append(_post(session, base, body, seconds)["search"])

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    return threads


def run(artifact: Path, n: int, search_seconds: float, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    body = synth_recording().data
    proc, base = _start_server(artifact, out / "http_server.log")
    try:
        import requests

        with requests.Session() as session:
            _post(session, base, body, 1.0)  # the render pool is up
        _fast_round(base, body, 5)  # warm-up
        load_before = load_average()
        alone = _fast_round(base, body, n)
        stop, found = threading.Event(), []
        threads = _searching_clients(base, body, search_seconds, stop, found)
        time.sleep(1.0)  # both searches under way
        busy = _fast_round(base, body, n)
        stop.set()
        for t in threads:
            t.join()
        alone += _fast_round(base, body, n)
    finally:
        proc.terminate()  # SIGTERM: zoo serve shuts its workers down
        proc.wait(timeout=60)
    stats_alone, stats_busy = LatencyStats.of(alone), LatencyStats.of(busy)
    report = {
        "command": f"python -m benchmarks.search_http {artifact} --requests {n} --search-seconds {search_seconds:g}",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load": [load_before, load_average()]},
        "fast_path_alone_ms": stats_alone.__dict__,
        "fast_path_with_2_searches_ms": stats_busy.__dict__,
        "p50_ratio": stats_busy.p50_ms / stats_alone.p50_ms,
        "searches_completed": found,
    }
    (out / "http.json").write_text(json.dumps(report, indent=1))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--search-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search"))
    args = parser.parse_args()
    r = run(args.artifact, args.requests, args.search_seconds, args.out)
    print(f"fast path p50: {r['fast_path_alone_ms']['p50_ms']:.1f} ms alone, "
          f"{r['fast_path_with_2_searches_ms']['p50_ms']:.1f} ms with 2 searches ({r['p50_ratio']:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
