"""Soak of ``zoo serve``: sustained load with bad requests and decode bombs, then its inference worker killed.

Two soaks, each on a fresh server with its default limits (API key set), warmed up for 15 s at the same
concurrency: C client threads in a closed loop for D seconds, a fraction of them sending a bad request (every
class of ``benchmarks.bad_inputs``, in turn) and the rest a good recording
(``benchmarks.recording.synth_recording``); in the first soak the decode bombs of ``bad_inputs.decode_bombs``
arrive together a third of the way in, the second soak has none (the p99 comparison). Measured: requests/s,
p50/p99 of the good requests, errors, 5xx and hangs, each bomb's answer time and the worker's memory around it,
/health latency, and the RSS of every server process after warm-up and at the end. Then, on the second server
under load, its inference worker is killed (SIGKILL): the time until a request is served again, and what the
requests in flight got.

    python -m benchmarks.soak ARTIFACT_DIR --out benchmarks/results/reliability [--duration 60] [--concurrency 16]

Linux only (/proc). Run it under the CPU lock of a shared machine: ``flock /tmp/zoo-cpu.lock python -m ...``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.bad_inputs import BadRequest, bad_requests, decode_bombs
from benchmarks.latency import LatencyStats
from benchmarks.report import markdown_table, write_json
from benchmarks.server_processes import inference_workers, rss_mb, serve, server_processes

API_KEY = "soak-key"
MAX_SECONDS, MAX_PAYLOAD_MB = 30, 32  # zoo serve's defaults
HANG_S = 60.0
WARMUP_S = 15.0
TARGETS = {
    "5xx": 0,
    "hangs": 0,
    "bomb_ms": 100.0,
    "bomb_extra_mb": 50.0,
    "p99_ratio": 1.2,
    "recovery_s": 30.0,
    "rss_growth": 0.10,
}


@dataclass
class Outcome:
    kind: str  # good, bad, bomb
    name: str
    start: float
    seconds: float
    status: int | str  # HTTP status, or "hang" / an exception name
    server_decode_ms: float | None = None  # the worker's time on the recording, from the answer's timings_ms


def _send(session: Any, base: str, kind: str, name: str, kwargs: dict, key: bool = True) -> Outcome:
    import requests

    headers = {**kwargs.get("headers", {}), **({"X-API-Key": API_KEY} if key else {})}
    args = {k: v for k, v in kwargs.items() if k != "headers"}
    t0 = time.monotonic()
    decode_ms = None
    try:
        reply = session.post(f"{base}/predict", headers=headers, timeout=HANG_S, **args)
        status: int | str = reply.status_code
        if kind == "bomb":
            decode_ms = reply.json().get("timings_ms", {}).get("decode")
    except requests.Timeout:
        status = "hang"
    except requests.RequestException as e:
        status = type(e).__name__
    return Outcome(kind, name, t0, time.monotonic() - t0, status, decode_ms)


def _client(base: str, deadline: float, bad: list[BadRequest], good: dict, fraction: float, seed: int, out: list):
    import requests

    rng = random.Random(seed)
    with requests.Session() as session:
        while time.monotonic() < deadline:
            if rng.random() < fraction:
                b = rng.choice(bad)
                out.append(_send(session, base, "bad", b.name, b.kwargs, key=b.needs_key))
            else:
                out.append(_send(session, base, "good", "recording", good))


def _probe_health(base: str, stop: threading.Event, out: list) -> None:
    import requests

    while not stop.is_set():
        t0 = time.monotonic()
        try:
            status: int | str = requests.get(f"{base}/health", timeout=HANG_S).status_code
        except requests.RequestException as e:
            status = type(e).__name__
        out.append((status, time.monotonic() - t0))
        stop.wait(0.5)


def _send_bombs(base: str, pid: int, at: float, out: list, memory: dict) -> None:
    import requests

    time.sleep(max(0.0, at - time.monotonic()))
    workers = inference_workers(pid)
    memory["worker_rss_before_mb"] = sum(rss_mb(w) for w in workers)
    bombs = decode_bombs()
    threads = [
        threading.Thread(target=lambda n=n, d=d: out.append(_send(requests, base, "bomb", n, {"files": {"audio": d}})))
        for n, d in bombs.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    memory["worker_rss_after_mb"] = sum(rss_mb(w) for w in workers)


def _processes(pid: int) -> list[dict[str, Any]]:
    return [asdict(p) for p in server_processes(pid)]


def soak(base: str, pid: int, duration: float, concurrency: int, fraction: float, bombs: bool) -> dict[str, Any]:
    """One soak against a running server (warmed up here); returns its figures."""
    from benchmarks.recording import synth_recording

    recording = synth_recording()
    good = {"data": recording.data, "headers": {"Content-Type": recording.content_type}}
    bad = [b for b in bad_requests(MAX_SECONDS, MAX_PAYLOAD_MB) if not b.name.startswith("decode bomb")]
    warm: list[Outcome] = []  # at the soak's concurrency, so batches (and the runtime's buffers) reach full size
    warmers = [
        threading.Thread(target=_client, args=(base, time.monotonic() + WARMUP_S, bad, good, 0.0, -1 - i, warm))
        for i in range(concurrency)
    ]
    for t in warmers:
        t.start()
    for t in warmers:
        t.join()
    rss_start = _processes(pid)
    outcomes: list[Outcome] = []
    health: list = []
    memory: dict[str, float] = {}
    stop = threading.Event()
    deadline = time.monotonic() + duration
    threads = [
        threading.Thread(target=_client, args=(base, deadline, bad, good, fraction, i, outcomes))
        for i in range(concurrency)
    ]
    threads.append(threading.Thread(target=_probe_health, args=(base, stop, health)))
    if bombs:
        at = time.monotonic() + duration / 3
        threads.append(threading.Thread(target=_send_bombs, args=(base, pid, at, outcomes, memory)))
    for t in threads:
        t.start()
    for t in threads[:concurrency]:
        t.join()
    stop.set()
    for t in threads[concurrency:]:
        t.join()
    return _summarise(outcomes, health, memory, duration, rss_start, _processes(pid))


def _summarise(outcomes, health, memory, duration, rss_start, rss_end) -> dict[str, Any]:
    good = [o for o in outcomes if o.kind == "good"]
    stats = LatencyStats.of([o.seconds for o in good if o.status == 200])
    statuses = collections.Counter(f"{o.kind} {o.status}" for o in outcomes)
    bombs = [asdict(o) | {"ms": o.seconds * 1e3} for o in outcomes if o.kind == "bomb"]
    return {
        "requests": len(outcomes),
        "requests_per_s": len(outcomes) / duration,
        "good_per_s": sum(o.status == 200 for o in good) / duration,
        "good_p50_ms": stats.p50_ms,
        "good_p99_ms": stats.p99_ms,
        "good_max_ms": stats.max_ms,
        "good_errors": sum(o.status != 200 for o in good),
        "bad_requests": sum(o.kind == "bad" for o in outcomes),
        "bad_not_4xx": sum(
            o.kind == "bad" and not (isinstance(o.status, int) and 400 <= o.status < 500) for o in outcomes
        ),
        "5xx": sum(isinstance(o.status, int) and o.status >= 500 for o in outcomes),
        "hangs": sum(o.status == "hang" for o in outcomes),
        "statuses": dict(statuses),
        "bombs": bombs,
        "bomb_worker_memory_mb": memory,
        "health_max_ms": max((s for _, s in health), default=float("nan")) * 1e3,
        "health_not_200": sum(status != 200 for status, _ in health),
        "rss_start": rss_start,
        "rss_end": rss_end,
    }


def kill_recovery(base: str, pid: int, concurrency: int = 4, after: float = 30.0) -> dict[str, Any]:
    """Kill the inference worker under load: seconds until a request sent after the kill is served, and what
    every request got (200 or 503 expected; a timeout is a hang)."""
    from benchmarks.recording import synth_recording

    recording = synth_recording()
    good = {"data": recording.data, "headers": {"Content-Type": recording.content_type}}
    (victim,) = inference_workers(pid)[:1]
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + 3 + after
    threads = [
        threading.Thread(target=_client, args=(base, deadline, [], good, 0.0, i, outcomes)) for i in range(concurrency)
    ]
    for t in threads:
        t.start()
    time.sleep(3)
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    for t in threads:
        t.join()
    after_kill = [o for o in outcomes if o.start + o.seconds > killed]
    served = [o.start + o.seconds - killed for o in after_kill if o.start > killed and o.status == 200]
    return {
        "worker_killed": victim,
        "serving_again_s": min(served, default=float("nan")),
        "statuses_after_kill": dict(collections.Counter(str(o.status) for o in after_kill)),
        "in_flight_503": sum(o.status == 503 for o in after_kill),
        "hangs": sum(o.status == "hang" for o in outcomes),
        "new_worker": inference_workers(pid),
    }


def _rss_growth(run: dict[str, Any]) -> float:
    start = {p["pid"]: p["rss_mb"] for p in run["rss_start"]}
    end = {p["pid"]: p["rss_mb"] for p in run["rss_end"]}
    return max((end[p] - start[p]) / start[p] for p in start if p in end and start[p] > 0)


def _verdicts(with_bombs: dict, without: dict, kill: dict) -> list[dict[str, Any]]:
    bomb_ms = max((b["server_decode_ms"] or float("nan") for b in with_bombs["bombs"]), default=float("nan"))
    mem = with_bombs["bomb_worker_memory_mb"]
    bomb_mb = mem.get("worker_rss_after_mb", float("nan")) - mem.get("worker_rss_before_mb", float("nan"))
    ratio = with_bombs["good_p99_ms"] / without["good_p99_ms"]
    growth = max(_rss_growth(with_bombs), _rss_growth(without))
    rows = [
        ("5xx answers", "0", with_bombs["5xx"] + without["5xx"], with_bombs["5xx"] + without["5xx"] == 0),
        (
            "hangs",
            "0",
            with_bombs["hangs"] + without["hangs"] + kill["hangs"],
            with_bombs["hangs"] + without["hangs"] + kill["hangs"] == 0,
        ),  # fmt: skip
        ("slowest bomb refusal (worker time)", "< 100 ms", f"{bomb_ms:.0f} ms", bomb_ms < TARGETS["bomb_ms"]),
        ("worker memory around the bombs", "< 50 MB", f"{bomb_mb:+.1f} MB", bomb_mb < TARGETS["bomb_extra_mb"]),
        ("good p99 with bombs / without", "<= 1.20", f"{ratio:.2f}", ratio <= TARGETS["p99_ratio"]),
        (
            "serving again after the worker is killed",
            "<= 30 s",
            f"{kill['serving_again_s']:.1f} s",
            kill["serving_again_s"] <= TARGETS["recovery_s"],
        ),  # fmt: skip
        ("largest RSS growth of a server process", "<= 10 %", f"{100 * growth:.1f} %", growth <= TARGETS["rss_growth"]),
    ]
    return [{"target": t, "goal": g, "measured": m, "met": "yes" if ok else "**no**"} for t, g, m, ok in rows]


def write_report(out: Path, results: dict[str, Any], command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "soak.json", results)
    runs = [dict(name=k, **{f: results[k][f] for f in RUN_FIELDS}) for k in ("with_bombs", "without_bombs")]
    processes = []
    for key in ("with_bombs", "without_bombs"):
        end = {p["pid"]: p["rss_mb"] for p in results[key]["rss_end"]}
        for p in results[key]["rss_start"]:
            processes.append(
                dict(soak=key, role=p["role"], pid=p["pid"], start_mb=p["rss_mb"], end_mb=end.get(p["pid"]))
            )
    lines = [
        "# Soak of zoo serve: bad requests, decode bombs, a killed worker",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {results['machine']}. {results['note']}",
        "",
        f"Model: {results['artifact']}. {results['duration_s']:g} s per soak, {results['concurrency']} clients, "
        f"{100 * results['bad_fraction']:g} % bad requests (every class of benchmarks/bad_inputs.py in turn).",
        "",
        "## Targets",
        "",
        markdown_table([(k, k) for k in ("target", "goal", "measured", "met")], results["verdicts"]),
        "",
        "## The two soaks",
        "",
        markdown_table([(f, f) for f in ("name", *RUN_FIELDS)], runs),
        "",
        "Decode bombs (first soak): "
        + "; ".join(
            f"{b['name']}: {b['status']}, refused in {b['server_decode_ms']} ms of worker time, answered in "
            f"{b['ms']:.0f} ms (queueing behind the good requests of its batch included)"
            for b in results["with_bombs"]["bombs"]
        ),
        f"; the worker's RSS around them: {results['with_bombs']['bomb_worker_memory_mb']}.",
        "",
        "## Resident memory of every server process (after warm-up, at the end)",
        "",
        markdown_table([(k, k) for k in ("soak", "role", "pid", "start_mb", "end_mb")], processes),
        "",
        "## The inference worker killed under load (4 clients)",
        "",
        "```json",
        json.dumps(results["kill"], indent=2),
        "```",
        "",
    ]
    (out / "soak.md").write_text("\n".join(lines))


RUN_FIELDS = (
    "requests_per_s",
    "good_per_s",
    "good_p50_ms",
    "good_p99_ms",
    "good_errors",
    "bad_requests",
    "bad_not_4xx",
    "5xx",
    "hangs",
    "health_max_ms",
)


def main() -> None:
    import sys

    from benchmarks.machine import cpu_model, load_average

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/reliability"))
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--bad-fraction", type=float, default=0.1)
    args = parser.parse_args()
    env = {**os.environ, "ZOO_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"}
    results: dict[str, Any] = {"duration_s": args.duration, "concurrency": args.concurrency}
    results["bad_fraction"] = args.bad_fraction
    card = json.loads((args.artifact / "card.json").read_text())
    results["artifact"] = f"{card['model']['name']} {card['model']['version']} ({args.artifact})"
    results["machine"] = f"{cpu_model()}, {os.cpu_count()} cores, load average at the start {load_average()}"
    args.out.mkdir(parents=True, exist_ok=True)
    for key, bombs in (("with_bombs", True), ("without_bombs", False)):
        with serve(args.artifact, ["--log-level", "warning"], env, args.out / f"server-{key}.log") as (base, pid):
            print(f"soak {key} ...", flush=True)
            results[key] = soak(base, pid, args.duration, args.concurrency, args.bad_fraction, bombs)
            if not bombs:
                print("killing the inference worker under load ...", flush=True)
                results["kill"] = kill_recovery(base, pid)
    results["verdicts"] = _verdicts(results["with_bombs"], results["without_bombs"], results["kill"])
    results["note"] = "Shared machine: other jobs may have run outside the CPU lock; compare figures of this run only."
    write_report(args.out, results, "python -m benchmarks.soak " + " ".join(sys.argv[1:]))
    for row in results["verdicts"]:
        print(f"{row['target']}: {row['measured']} (goal {row['goal']}) met: {row['met']}")


if __name__ == "__main__":
    main()
