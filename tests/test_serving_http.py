"""`zoo serve` tested like a user would: a real server process on a loopback port and a real HTTP client.

One server for the module (untrained vital-resnet18 exported once per session, API key set, small limits so
the limit checks stay cheap): good audio in several formats, every kind of bad input, a concurrent burst
with health checks during it, and the worker still serving afterwards."""

import base64
import io
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("zoo.vital", reason="the Vital domain (zoo.vital) writes the presets")
requests = pytest.importorskip("requests")

from server_process import running_server  # noqa: E402

from benchmarks.bad_inputs import bad_requests, odd_but_valid  # noqa: E402

API_KEY = "test-key-123"
MAX_SECONDS = 8
MAX_PAYLOAD_MB = 4
SR = 44100


def _saw(midi: int, hold: float, sr: int = SR, release: float = 0.3) -> np.ndarray:
    f = 440.0 * 2 ** ((midi - 69) / 12)
    t = np.arange(int((hold + release) * sr)) / sr
    wave = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, int(min(sr, SR) / 2 / f)))
    env = np.minimum(1.0, t / 0.01) * np.clip((hold + release - t) / release, 0, 1)
    return (0.25 * wave * env).astype(np.float32)


def _phrase(sr: int = SR, main: int = 62) -> np.ndarray:
    """A short note, the main (longest) note at 0.6 s, then another short note."""
    out = np.zeros(int(3.2 * sr), np.float32)
    for start, midi, hold in ((0.1, 55, 0.25), (0.6, main, 1.4), (2.4, 67, 0.3)):
        note = _saw(midi, hold, sr)
        s = int(start * sr)
        out[s : s + len(note)] += note[: len(out) - s]
    return out


def _encode(audio: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(untrained_artifact, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = {**os.environ, "ZOO_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"}
    args = ["--max-seconds", str(MAX_SECONDS), "--max-payload-mb", str(MAX_PAYLOAD_MB), "--max-batch-size", "4"]
    args += ["--batch-timeout", "0.05", "--device", "auto", "--log-level", "warning"]
    with running_server(untrained_artifact.path, args, env, log) as base:
        yield base, untrained_artifact, log


def _post(base: str, files=None, key: str | None = API_KEY, params=None, **kwargs) -> "requests.Response":
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["X-API-Key"] = key
    return requests.post(f"{base}/predict", files=files, params=params, headers=headers, timeout=60, **kwargs)


def _check_prediction(body: dict, artifact) -> None:
    import vita

    from zoo.vital.spec import VitalParamSpec

    spec = VitalParamSpec.from_dict(artifact.card["spec"])
    assert body["model"]["name"] == "vital-resnet18"
    assert body["model"]["version"] == artifact.card["model"]["version"]
    assert set(body["parameters"]) == set(spec.continuous_names) | set(spec.categorical_names)
    for p in spec.categorical:
        chosen = body["categorical"][p.name]
        assert chosen["option"] == p.options[chosen["index"]]
        assert body["parameters"][p.name] == chosen["index"]
    preset = body["preset"]
    for name, value in body["parameters"].items():
        assert preset["settings"][name] == pytest.approx(value)
    assert vita.Synth().load_json(json.dumps(preset)), "Vital refused the returned preset"
    assert {"decode", "note", "model", "preset", "total"} <= set(body["timings_ms"])


# --------------------------------------------------------------------------------------------------
# Good audio


@pytest.mark.parametrize(
    ("label", "sr", "channels", "fmt", "subtype"),
    [
        ("wav 44.1 kHz mono 16-bit", 44100, 1, "WAV", "PCM_16"),
        ("wav 48 kHz stereo float", 48000, 2, "WAV", "FLOAT"),
        ("flac 22.05 kHz mono", 22050, 1, "FLAC", None),
        ("ogg 32 kHz stereo", 32000, 2, "OGG", "VORBIS"),
        ("wav 96 kHz 4 channels 24-bit", 96000, 4, "WAV", "PCM_24"),
    ],
)
def test_predicts_a_preset_for_every_format(server, label, sr, channels, fmt, subtype):
    base, artifact, _ = server
    mono = _phrase(sr)
    audio = np.stack([mono * (1 - 0.1 * c) for c in range(channels)], axis=1) if channels > 1 else mono
    reply = _post(base, files={"audio": (f"take.{fmt.lower()}", _encode(audio, sr, fmt, subtype))})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    _check_prediction(body, artifact)
    assert body["note"]["midi"] == 62 and body["note"]["pitched"]
    assert abs(body["note"]["onset_seconds"] - 0.6) < 0.02
    assert body["note"]["notes_found"] == 3
    assert body["preset"]["preset_name"].startswith("take")


def test_json_base64_and_raw_bodies(server):
    base, artifact, _ = server
    data = _encode(_phrase(), SR)
    as_json = _post(base, json={"audio_base64": base64.b64encode(data).decode()})
    assert as_json.status_code == 200, as_json.text
    raw = _post(base, data=data, headers={"Content-Type": "audio/wav"})
    assert raw.status_code == 200, raw.text
    # The same recording gives the same preset whichever way it arrives.
    assert as_json.json()["parameters"] == raw.json()["parameters"]


def test_preview_renders_the_preset_playing_the_phrase(server):
    base, _, _ = server
    reply = _post(base, files={"audio": ("a.wav", _encode(_phrase(), SR))}, params={"preview": "true"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    # Every note of the recording, beside the main one.
    assert [n["midi"] for n in body["notes"]] == [55, 62, 67]
    assert [n["onset_seconds"] for n in body["notes"]] == pytest.approx([0.1, 0.6, 2.4], abs=0.02)
    assert [n["duration_seconds"] for n in body["notes"]] == pytest.approx([0.25, 1.4, 0.3], abs=0.25)
    assert {"name", "velocity", "pitched"} <= set(body["notes"][0])
    preview = body["preview"]
    assert 0 <= preview["note"] <= 127  # the note played so that the preset sounds at the detected pitch
    assert preview["transpose"] == preview["note"] - 62 and preview["notes_played"] == 3
    audio, rate = sf.read(io.BytesIO(base64.b64decode(preview["wav_base64"])))
    assert rate == 44100 and audio.shape == (len(_phrase()),)  # the whole phrase, as long as the recording
    assert preview["silent"] or (np.isfinite(preview["spectral_distance"]) and preview["spectral_distance"] > 0)
    if not preview["silent"]:
        assert not audio[: int(0.09 * SR)].any()  # nothing before the first note (at 0.1 s)
        for note in body["notes"]:  # every note sounds from its onset (a one-note render would not)
            start = int(note["onset_seconds"] * SR)
            assert np.abs(audio[start : start + int(0.3 * SR)]).max() > 0
    assert preview["release_seconds"] is not None and 0 < preview["release_seconds"] <= 2.0
    assert "preview" in body["timings_ms"]


# --------------------------------------------------------------------------------------------------
# Bad input: 4xx with a message, never a 500, and the worker keeps serving


def _truncated_wav() -> bytes:
    data = _encode(_phrase(), SR)
    return data[: len(data) // 2]


def _nan_wav() -> bytes:
    audio = _phrase()
    audio[1000:1010] = np.nan
    return _encode(audio, SR, "WAV", "FLOAT")


BAD_UPLOADS = {
    "not audio": (b"this is not a sound file, just text " * 20, 400, "could not be decoded"),
    "truncated wav": (_truncated_wav(), 400, "truncated"),
    "truncated flac": (_encode(_phrase(), SR, "FLAC")[:5000], 400, "could not be decoded"),
    "NaN samples": (_nan_wav(), 400, "NaN"),
    "silence": (_encode(np.zeros(2 * SR, np.float32), SR), 400, "silent"),
    "too long": (_encode(np.tile(_phrase(8000), 3), 8000), 413, "limit is 8 s"),
    "empty file": (b"", 400, "empty"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_audio_is_a_4xx_that_says_why(server, case):
    base, _, _ = server
    data, status, message = BAD_UPLOADS[case]
    reply = _post(base, files={"audio": ("x.wav", data)})
    assert reply.status_code == status, reply.text
    assert message in reply.json()["detail"]


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({}, 400, "empty"),
        ({"data": b"abc", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported content type"),
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "not valid JSON"),
        ({"json": {"audio": "x"}}, 400, "audio_base64"),
        ({"json": {"audio_base64": "%%%"}}, 400, "not valid base64"),
        ({"files": {"sound": ("a.wav", b"RIFF")}}, 400, "no `audio` field"),
        ({"data": b"x" * (MAX_PAYLOAD_MB * 2**20 + 1), "headers": {"Content-Type": "audio/wav"}}, 413, "MB limit"),
    ],
)
def test_bad_requests_are_a_4xx_that_says_why(server, kwargs, status, message):
    base, _, _ = server
    reply = _post(base, **kwargs)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["detail"]


INTERNAL_NAME = re.compile(r"\b\w*(Error|Exception)\b|Traceback|<\w+[ .]")  # IndexError, <_io.BytesIO object ...>


def test_every_bad_request_class_is_a_json_4xx_without_internals(server):
    """Every class of benchmarks.bad_inputs: its status, a JSON detail that says what was wrong, no exception
    names or object reprs, each answered within a few seconds (decode bombs included)."""
    base, _, log = server
    for bad in bad_requests(MAX_SECONDS, MAX_PAYLOAD_MB):
        t0 = time.monotonic()
        reply = _post(base, key=API_KEY if bad.needs_key else None, **bad.kwargs)
        assert time.monotonic() - t0 < 5, bad.name
        assert reply.status_code in bad.statuses, (bad.name, reply.status_code, reply.text[:300])
        detail = reply.json()["detail"]
        assert bad.detail.lower() in detail.lower(), (bad.name, detail)
        assert not INTERNAL_NAME.search(detail), (bad.name, detail)
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("case", list(odd_but_valid()))
def test_odd_but_valid_recordings_get_a_preset(server, case):
    """Recordings under one STFT frame, with samples near the float32 maximum, without a length in their
    header, or in MP3, AIFF or AU: a preset, not an internal error."""
    base, artifact, _ = server
    reply = _post(base, files={"audio": ("odd", odd_but_valid()[case])})
    assert reply.status_code == 200, reply.text
    _check_prediction(reply.json(), artifact)


def test_api_key_is_required(server):
    base, _, _ = server
    files = {"audio": ("a.wav", _encode(_phrase(), SR))}
    assert _post(base, files=files, key=None).status_code == 401
    wrong = _post(base, files=files, key="nope")
    assert wrong.status_code == 401 and "wrong API key" in wrong.json()["detail"]
    bearer = requests.post(f"{base}/predict", files=files, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60)
    assert bearer.status_code == 200, bearer.text


# --------------------------------------------------------------------------------------------------
# Load, health and docs


def test_concurrent_burst_is_batched_and_health_stays_up(server):
    """24 requests from 8 clients, a quarter of them garbage: every good one succeeds, batched with others,
    and /health answers throughout."""
    base, artifact, log = server
    good = _encode(_phrase(), SR)
    payloads = [(b"garbage" * 50 if i % 4 == 3 else good) for i in range(24)]

    def send(data: bytes) -> tuple[int, dict]:
        reply = _post(base, files={"audio": ("a.wav", data)})
        return reply.status_code, reply.json()

    health = []
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(send, p) for p in payloads]
        while not all(f.done() for f in futures) and time.monotonic() - started < 120:
            t0 = time.monotonic()
            health.append((requests.get(f"{base}/health", timeout=10).status_code, time.monotonic() - t0))
            time.sleep(0.2)
        results = [f.result(timeout=120) for f in futures]
    assert time.monotonic() - started < 120
    for data, (status, body) in zip(payloads, results, strict=True):
        assert status == (200 if data is good else 400), body
    assert max(body["batch_size"] for status, body in results if status == 200) > 1, "no request was batched"
    assert health and all(code == 200 for code, _ in health)
    assert max(seconds for _, seconds in health) < 5
    assert "Traceback" not in log.read_text()
    # The worker is still serving.
    assert _post(base, files={"audio": ("a.wav", good)}).status_code == 200


def test_health_info_and_docs(server):
    base, artifact, _ = server
    health = requests.get(f"{base}/health", timeout=10)
    assert health.status_code == 200 and health.text == "ok"
    info = requests.get(f"{base}/info", timeout=10).json()
    assert info["model"]["version"] == artifact.card["model"]["version"]
    assert requests.get(f"{base}/docs", timeout=10).status_code == 200
    schema = requests.get(f"{base}/openapi.json", timeout=10).json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    params = {p["name"] for p in schema["paths"]["/predict"]["post"]["parameters"]}
    assert {"preview", "x-api-key"} <= params
