"""Closed-loop HTTP load against a running ``zoo serve``, reported the way Triton's perf_analyzer does.

At each concurrency level C, C client threads each send a recording to ``POST /predict``, wait for the answer and
send the next one at once: a warm-up (discarded) until the loop is in its steady state, then a measured window.
Figures of the window: requests/s (successful answers completed in it / its length), client latency p50, p90,
p95, p99, errors, and the means of the server's own ``timings_ms`` (decode, note, queue, model, preset, total)
with the batch size it reports; ``decode_share`` is decoding and resampling over the request's time in the
server after it left the queue (total - queue). Loops are bounded in time (the window) and in count
(``max_requests`` per level); the URL must be a loopback address: load is never sent to another machine.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from benchmarks.latency import LatencyStats
from zoo.errors import ZooError

SERVER_TIMINGS = ("decode", "note", "queue", "model", "preset", "total")
CONTENT_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg"}
API_KEY_ENV = "ZOO_API_KEY"  # sent as X-API-Key when set, as `zoo serve` expects


class ServerUnavailableError(ZooError):
    """No server answers where the benchmark was pointed."""


@dataclass
class HttpBenchConfig:
    """``zoo bench --http``'s options, validated so the error names the flag."""

    url: str
    concurrency: tuple[int, ...] = (1, 8, 32, 64)
    duration: float = 10.0
    audio: Path | None = None
    baseline: bool = False
    warmup: float | None = None  # seconds per level before the window; default min(2, duration / 4)
    max_requests: int = 20_000
    timeout: float = 60.0

    def __post_init__(self) -> None:
        self.base_url = loopback_base_url(self.url)
        if not self.concurrency or any(c < 1 for c in self.concurrency):
            raise ValueError(f"`--concurrency` must be positive integers, got {','.join(map(str, self.concurrency))}")
        if any(c > 512 for c in self.concurrency):
            raise ValueError("`--concurrency` is limited to 512 client threads")
        if not 0 < self.duration <= 600:
            raise ValueError(f"`--duration` must be in (0, 600] seconds, got {self.duration}")
        if self.audio is not None:
            if not self.audio.is_file():
                raise FileNotFoundError(f"`--audio`: no such file: {self.audio}")
            if self.audio.suffix.lower() not in CONTENT_TYPES:
                raise ValueError(f"`--audio` must be a WAV, FLAC or OGG file, got {self.audio.name}")
        if self.warmup is None:
            self.warmup = min(2.0, self.duration / 4)
        self.concurrency = tuple(dict.fromkeys(self.concurrency))


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_base_url(url: str) -> str:
    """``http://host:port[/prefix]`` of a server on this machine, from its base URL or its ``/predict`` URL.
    Raises ValueError for anything that is not a loopback HTTP URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"`--http` takes the server's URL, e.g. http://127.0.0.1:8000, got {url!r}")
    if not _is_loopback(parts.hostname):
        raise ValueError(
            f"`--http` must point at this machine (127.0.0.1, ::1 or localhost), not {parts.hostname}: "
            "load is only sent to a local `zoo serve`"
        )
    path = parts.path.rstrip("/")
    path = path.removesuffix("/predict")
    return f"{parts.scheme}://{parts.netloc}{path}"


@dataclass
class Recording:
    """The request body of every request of a run."""

    data: bytes
    content_type: str
    description: str


@dataclass
class LevelResult:
    """One concurrency level against one server."""

    server: str  # "batched" (zoo serve) or "baseline" (one request at a time)
    concurrency: int
    requests: int  # successful answers completed in the window
    errors: int
    window_s: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    mean_batch_size: float | None
    server_ms: dict[str, float] = field(default_factory=dict)  # means of the server's timings_ms
    decode_share: float | None = None  # decoding and resampling / the request's time in the server after queueing
    error_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Record:
    end: float
    latency_s: float
    ok: bool
    timings: dict[str, float] | None = None
    batch_size: int | None = None
    error: str | None = None


def _headers(recording: Recording) -> dict[str, str]:
    headers = {"Content-Type": recording.content_type}
    key = os.environ.get(API_KEY_ENV)
    if key:
        headers["X-API-Key"] = key
    return headers


def check_health(base_url: str, timeout: float = 5.0) -> None:
    """Raise :class:`ServerUnavailableError` unless ``GET /health`` answers 200."""
    import requests

    try:
        response = requests.get(f"{base_url}/health", timeout=timeout)
    except requests.RequestException as e:
        raise ServerUnavailableError(
            f"no server answers at {base_url} ({type(e).__name__}); start one with `zoo serve`"
        ) from None
    if response.status_code != 200:
        raise ServerUnavailableError(f"{base_url}/health answers {response.status_code}: the server is not ready")


def server_info(base_url: str) -> dict[str, Any]:
    """``GET /info`` of a ``zoo serve`` (model name, version, backend, artifact folder; workers)."""
    import requests

    response = requests.get(f"{base_url}/info", timeout=10)
    if response.status_code != 200:
        raise ServerUnavailableError(f"{base_url}/info answers {response.status_code}; is this a `zoo serve`?")
    return response.json()


def _one_request(session: Any, url: str, recording: Recording, headers: dict[str, str], timeout: float) -> _Record:
    import requests

    t0 = time.perf_counter()
    try:
        response = session.post(url, data=recording.data, headers=headers, timeout=timeout)
        end = time.perf_counter()
    except requests.RequestException as e:
        end = time.perf_counter()
        return _Record(end, end - t0, False, error=f"{type(e).__name__}: {e}"[:200])
    if response.status_code != 200:
        return _Record(end, end - t0, False, error=f"HTTP {response.status_code}: {response.text[:200]}")
    answer = response.json()
    return _Record(end, end - t0, True, answer.get("timings_ms"), answer.get("batch_size"))


@dataclass
class Window:
    """The answers of one measured window of a closed loop, and its length."""

    records: list[_Record]
    seconds: float


def closed_loop(
    base_url: str,
    recording: Recording,
    concurrency: int,
    window_s: float,
    warmup_s: float,
    max_requests: int,
    timeout: float = 60.0,
) -> Window:
    """``concurrency`` clients sending back to back; at most ``max_requests`` requests.

    The window opens once ``warmup_s`` have passed and as many answers as clients have come back (the loop is
    in its steady state: at high concurrency one round of answers takes longer than a fixed warm-up), or after
    ``warmup_s + timeout`` at the latest, and lasts ``window_s``. Answers completed inside it count."""
    import requests

    url = f"{base_url}/predict"
    headers = _headers(recording)
    sent = itertools.count()
    start = time.perf_counter()
    lock = threading.Lock()
    records: list[_Record] = []
    window = {"start": None, "stop": start + warmup_s + timeout + window_s}

    def open_window_if_ready(now: float) -> None:
        ready = len(records) >= concurrency and now >= start + warmup_s
        if window["start"] is None and (ready or now >= start + warmup_s + timeout):
            window["start"], window["stop"] = now, now + window_s

    def client() -> None:
        with requests.Session() as session:
            while time.perf_counter() < window["stop"] and next(sent) < max_requests:
                record = _one_request(session, url, recording, headers, timeout)
                with lock:
                    records.append(record)
                    open_window_if_ready(record.end)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-client") as pool:
        for future in [pool.submit(client) for _ in range(concurrency)]:
            future.result()
    opened = window["start"] if window["start"] is not None else start
    stop = window["stop"]
    inside = [r for r in records if opened <= r.end <= stop]
    last = max((r.end for r in records), default=stop)
    return Window(inside, max(min(stop, last) - opened, 1e-9))


def summarise(server: str, concurrency: int, windows: list[Window]) -> LevelResult:
    """One level's figures over its windows (several when two servers take turns)."""
    records = [r for w in windows for r in w.records]
    return _summarise(server, concurrency, records, sum(w.seconds for w in windows))


def _summarise(server: str, concurrency: int, records: list[_Record], window_s: float) -> LevelResult:
    ok = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    stats = LatencyStats.of([r.latency_s for r in ok])
    timings: dict[str, float] = {}
    for key in SERVER_TIMINGS:
        values = [r.timings[key] for r in ok if r.timings and key in r.timings]
        if values:
            timings[key] = round(float(np.mean(values)), 2)
    batches = [r.batch_size for r in ok if r.batch_size is not None]
    # A request's own processing: everything but the wait before its decoding started.
    busy = timings.get("total", 0.0) - timings.get("queue", 0.0)
    share = timings["decode"] / busy if busy > 0 and "decode" in timings else None
    return LevelResult(
        server=server,
        concurrency=concurrency,
        requests=len(ok),
        errors=len(failed),
        window_s=round(window_s, 3),
        requests_per_s=round(len(ok) / window_s, 3),
        p50_ms=round(stats.p50_ms, 2),
        p90_ms=round(stats.p90_ms, 2),
        p95_ms=round(stats.p95_ms, 2),
        p99_ms=round(stats.p99_ms, 2),
        mean_ms=round(stats.mean_ms, 2),
        mean_batch_size=round(float(np.mean(batches)), 2) if batches else None,
        server_ms=timings,
        decode_share=round(share, 4) if share is not None else None,
        error_examples=sorted({r.error for r in failed if r.error})[:3],
    )
