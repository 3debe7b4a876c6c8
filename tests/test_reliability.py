"""The reliability suite: a real `zoo serve` with its default limits under every bad-input class, a hypothesis fuzz
run of over 1,000 bodies, huge JSON bodies and its inference worker killed under load; `zoo data generate` killed
at random points and resumed. Targets: no 5xx, no hang, serving again within 30 s of a worker's death, the same
dataset as an uninterrupted run.

Out of the default run: `python -m pytest -q -m reliability` (about 4 minutes alone on 2 cores). Linux only:
the server's processes are found in /proc.
"""

import base64
import collections
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the server's processes in /proc"),
]
requests = pytest.importorskip("requests")
pytest.importorskip("hypothesis")
pytest.importorskip("vita")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from benchmarks.bad_inputs import SR, bad_requests, encode, odd_but_valid, tone  # noqa: E402
from benchmarks.server_processes import ROOT, inference_workers, rss_mb, serve, server_processes  # noqa: E402

API_KEY = "reliability-key"
MAX_SECONDS, MAX_PAYLOAD_MB = 30, 32  # zoo serve's defaults
HANG_S = 60  # a request without an answer after this long is a hang
GOOD_FILES = [encode(tone(1.0), SR, fmt) for fmt in ("WAV", "FLAC", "OGG", "MP3")]


@pytest.fixture(scope="module")
def server(untrained_artifact, tmp_path_factory):
    log = tmp_path_factory.mktemp("reliability") / "server.log"
    env = {**os.environ, "ZOO_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"}
    with serve(untrained_artifact.path, ["--log-level", "warning"], env, log) as (base, pid):
        yield base, pid, log


def _post(base: str, key: bool = True, **kwargs) -> "requests.Response":
    headers = {**kwargs.pop("headers", {}), **({"X-API-Key": API_KEY} if key else {})}
    return requests.post(f"{base}/predict", headers=headers, timeout=HANG_S, **kwargs)


def _no_tracebacks(log) -> None:
    text = log.read_text()
    assert "Traceback" not in text and "unexpected error" not in text, text[-3000:]


# --------------------------------------------------------------------------------------------------
# Bad input


def test_every_bad_input_class_under_the_default_limits(server):
    base, _, log = server
    for bad in bad_requests(MAX_SECONDS, MAX_PAYLOAD_MB):
        reply = _post(base, key=bad.needs_key, **bad.kwargs)
        assert reply.status_code in bad.statuses, (bad.name, reply.status_code, reply.text[:300])
        assert bad.detail.lower() in reply.json()["detail"].lower(), bad.name
    for name, data in odd_but_valid().items():
        assert _post(base, files={"audio": ("x", data)}).status_code == 200, name
    _no_tracebacks(log)


@st.composite
def audio_bytes(draw) -> bytes:
    """Random bytes, or a real WAV/FLAC/OGG/MP3 file with bytes overwritten, cut short, or its header spliced
    onto random data: most reach the decoders (header fields such as channels and rate get absurd values)."""
    kind = draw(st.sampled_from(["random", "mutated", "mutated", "truncated", "spliced"]))
    if kind == "random":
        return draw(st.binary(max_size=4096))
    data = bytearray(draw(st.sampled_from(GOOD_FILES)))
    if kind == "truncated":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if kind == "spliced":
        return bytes(data[: draw(st.integers(0, 300))]) + draw(st.binary(max_size=4096))
    for _ in range(draw(st.integers(1, 12))):
        at = draw(st.integers(0, min(len(data) - 1, draw(st.sampled_from([64, 512, len(data) - 1])))))
        data[at] = draw(st.integers(0, 255))
    return bytes(data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=16),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@st.composite
def json_body(draw) -> bytes:
    doc = draw(st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=3))
    if draw(st.integers(0, 3)):
        doc["audio_base64"] = (
            base64.b64encode(draw(audio_bytes())).decode() if draw(st.booleans()) else draw(JSON_VALUES)
        )
    if draw(st.booleans()):
        doc["preview"] = draw(JSON_VALUES)
    text = json.dumps(doc)
    if draw(st.integers(0, 4)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode()


@st.composite
def fuzz_request(draw) -> dict:
    kind = draw(st.sampled_from(["multipart", "json", "raw", "other"]))
    if kind == "multipart":
        field = draw(st.sampled_from(["audio", "audio", "audio", "sound"]))
        return {"files": {field: ("x", draw(audio_bytes()))}, "data": draw(st.sampled_from([{}, {"preview": "1"}]))}
    if kind == "json":
        return {"data": draw(json_body()), "headers": {"Content-Type": "application/json"}}
    content_type = draw(st.sampled_from(["audio/wav", "audio/flac", "audio/mpeg", "application/octet-stream"]))
    if kind == "other":
        content_type = draw(st.sampled_from(["multipart/form-data", "text/plain", "application/json", ""]))
        content_type += draw(st.sampled_from(["", "; boundary=x", "; charset=latin-1"]))
    return {"data": draw(audio_bytes()), "headers": {"Content-Type": content_type}}


def test_fuzzed_bodies_get_no_5xx_and_no_hang(server):
    """Over 1,000 generated bodies (derandomized: the same ones every run); counted, not shrunk."""
    base, pid, log = server
    outcomes: collections.Counter = collections.Counter()
    failures = []

    @settings(
        max_examples=1100,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(fuzz_request())
    def send(kwargs: dict) -> None:
        try:
            reply = _post(base, **kwargs)
        except requests.Timeout:
            outcomes["hang"] += 1
            failures.append(("hang", repr(kwargs)[:300]))
            return
        outcomes[reply.status_code] += 1
        if reply.status_code >= 500 or not reply.headers.get("content-type", "").startswith("application/json"):
            failures.append((reply.status_code, reply.text[:300], repr(kwargs)[:300]))

    send()
    print("fuzz outcomes:", dict(outcomes))
    assert sum(outcomes.values()) >= 1000, outcomes
    assert not failures, failures[:5]
    assert inference_workers(pid), "the inference worker died"
    _no_tracebacks(log)


def test_huge_json_bodies_are_refused_without_blocking_health(server):
    """Three concurrent 31 MB bodies of `{}` objects: each a 400 long before it is parsed; /health answers."""
    base, pid, _ = server
    body = b"[" + b"{}," * (31 * 2**20 // 3) + b"{}]"
    api = [p.pid for p in server_processes(pid) if p.role == "API server"]
    before = sum(rss_mb(p) for p in api)
    health, done = [], threading.Event()

    def probe() -> None:
        while not done.is_set():
            t0 = time.monotonic()
            health.append((requests.get(f"{base}/health", timeout=HANG_S).status_code, time.monotonic() - t0))
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    with ThreadPoolExecutor(3) as pool:
        replies = list(
            pool.map(lambda _: _post(base, data=body, headers={"Content-Type": "application/json"}), range(3))
        )
    done.set()
    prober.join()
    grown = sum(rss_mb(p) for p in api) - before
    print(f"API server RSS {before:.0f} MB, +{grown:.0f} MB; /health max {max(s for _, s in health) * 1e3:.0f} ms")
    assert all(r.status_code == 400 and "too many" in r.json()["detail"] for r in replies)
    assert all(code == 200 for code, _ in health) and max(s for _, s in health) < 1.0
    assert grown < 300  # the bodies themselves (3 x 31 MB, buffered); nothing parsed out of them


# --------------------------------------------------------------------------------------------------
# The inference worker killed under load


def _load(base: str, stop: threading.Event, results: list, data: bytes) -> None:
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            status = _post(base, files={"audio": ("a.wav", data)}).status_code
        except requests.RequestException as e:
            status = f"{type(e).__name__}"
        results.append((t0, time.monotonic(), status))


@pytest.mark.parametrize("round_", [1, 2])
def test_a_killed_worker_is_replaced_and_its_requests_answered_503(server, round_):
    base, pid, log = server
    (victim,) = inference_workers(pid)
    data = encode(tone(2.0), SR)
    stop, results = threading.Event(), []
    clients = [threading.Thread(target=_load, args=(base, stop, results, data)) for _ in range(6)]
    for c in clients:
        c.start()
    time.sleep(3)
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    health, recovered = [], None
    while time.monotonic() - killed < 60 and recovered is None:
        health.append(requests.get(f"{base}/health", timeout=10).status_code)
        recovered = min((end for start, end, status in results if start > killed and status == 200), default=None)
        time.sleep(0.25)
    time.sleep(2)
    stop.set()
    for c in clients:
        c.join(timeout=HANG_S + 10)
    statuses = collections.Counter(status for _, _, status in results)
    print(f"round {round_}: serving again {recovered - killed:.1f} s after the kill; {dict(statuses)}")
    assert recovered is not None and recovered - killed <= 30
    assert set(statuses) <= {200, 503}, statuses  # nothing hung (a timeout), nothing else failed
    assert 503 in health and health[-1] == 200
    assert inference_workers(pid) and victim not in inference_workers(pid)
    assert "died (exit code -9); starting a new one" in log.read_text()


# --------------------------------------------------------------------------------------------------
# Generation killed at random points


N_PRESETS = 300  # about 20 s on 2 cores: room for several kills, before the first commit and after others


def _generate(out, resume: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "zoo.cli", "data", "generate", "--n-presets", str(N_PRESETS), "--notes", "60"]
    cmd += ["--seed", "3", "--workers", "2", "--out", str(out), "--no-progress", *(["--resume"] if resume else [])]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _committed(partial) -> int | str:
    """Presets committed in a partial file left by a kill (read once nothing writes it any more)."""
    if not partial.exists():
        return "no file"
    try:
        with h5py.File(partial, "r") as f:
            return int(f.attrs["n_presets_done"])
    except (OSError, KeyError) as e:
        return f"unreadable ({type(e).__name__})"


def test_generation_killed_at_random_points_resumes_to_the_uninterrupted_dataset(tmp_path):
    """Killed (SIGKILL to the run and its workers, as a crash) at random times, resumed each time: the result is
    the uninterrupted run's dataset, parameters and audio, bit for bit."""
    from training.data.generate import partial_path

    reference = tmp_path / "reference.h5"  # made the same way, by the CLI: workers inherit their caller's Vital state
    t0 = time.monotonic()
    proc = _generate(reference, resume=False)
    assert proc.wait(timeout=600) == 0, proc.stdout.read().decode()
    whole = time.monotonic() - t0
    out = tmp_path / "killed.h5"
    rng = random.Random(15)
    left_at, output = [], ""
    for attempt in range(10):
        proc = _generate(out, resume=attempt > 0)
        try:  # a kill at a random point of the first half of a whole run's time, six times
            proc.wait(timeout=rng.uniform(0.05, 0.5) * whole if len(left_at) < 6 else 600)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            left_at.append(_committed(partial_path(out)))
            continue
        output = proc.stdout.read().decode()
        assert proc.returncode == 0, output
        break
    print(f"killed {len(left_at)} times, committed presets each time: {left_at}; then: {output.strip()}")
    assert len(left_at) >= 3 and any(isinstance(n, int) and n > 0 for n in left_at), left_at
    assert out.exists() and not partial_path(out).exists()
    with h5py.File(reference, "r") as a, h5py.File(out, "r") as b:
        for name in ("params/continuous", "params/categorical", "metadata/preset_index", "audio"):
            np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)
