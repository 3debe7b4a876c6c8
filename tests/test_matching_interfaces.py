"""The search as users reach it: `zoo predict --search-seconds`, HTTP `search_seconds`, `zoo evaluate`."""

import base64
import io
import json
import os

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

pytest.importorskip("zoo.vital", reason="the Vital domain (zoo.vital) writes the presets")
requests = pytest.importorskip("requests")

from server_process import running_server  # noqa: E402

from zoo.cli import app  # noqa: E402

SR = 44100
MAX_SEARCH = 4


def _note(midi: int = 57, seconds: float = 1.2) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 30))
    return (0.2 * wave * np.minimum(1.0, t / 0.01) * np.minimum(1.0, (seconds - t) / 0.2)).astype(np.float32)


def _phrase(midis=(57, 60, 64), seconds: float = 0.4, gap: float = 0.15) -> np.ndarray:
    out = [np.zeros(SR // 5, np.float32)]
    for m in midis:
        out += [_note(m, seconds), np.zeros(int(gap * SR), np.float32)]
    return np.concatenate(out + [np.zeros(SR // 2, np.float32)])


def _wav(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, SR, format="WAV")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# zoo predict


@pytest.mark.parametrize("bad", ["-1", "abc", "nan", "1e9"])
def test_predict_refuses_a_bad_search_budget_in_one_line(untrained_artifact, tmp_path, bad):
    wav = tmp_path / "a.wav"
    sf.write(wav, _note(), SR)
    args = ["predict", str(wav), "-o", str(tmp_path), "--artifact", str(untrained_artifact.path)]
    result = CliRunner().invoke(app, [*args, f"--search-seconds={bad}"])
    assert result.exit_code == 1, result.output
    assert "--search-seconds" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_predict_searches_and_writes_the_searched_preset(untrained_artifact, tmp_path):
    import vita

    wav = tmp_path / "lead.wav"
    sf.write(wav, np.concatenate([np.zeros(SR // 4, np.float32), _note()]), SR)
    args = ["predict", str(wav), "-o", str(tmp_path), "--artifact", str(untrained_artifact.path), "--preview"]
    result = CliRunner().invoke(app, [*args, "--search-seconds", "1.5", "--search-workers", "1"])
    assert result.exit_code == 0, result.output
    assert "->" in result.output and "renders" in result.output  # network -> search distances
    preset = json.loads((tmp_path / "lead.vital").read_text())
    assert vita.Synth().load_json(json.dumps(preset))
    preview, rate = sf.read(tmp_path / "lead.preview.wav")
    assert rate == SR and preview.shape == (SR // 4 + len(_note()),)  # the whole recording, searched preset


def test_predict_search_preview_plays_the_whole_phrase(untrained_artifact, tmp_path):
    from zoo.notes import find_phrase

    wav = tmp_path / "melody.wav"
    audio = _phrase()
    sf.write(wav, audio, SR)
    args = ["predict", str(wav), "-o", str(tmp_path), "--artifact", str(untrained_artifact.path), "--preview"]
    result = CliRunner().invoke(app, [*args, "--search-seconds", "1.5", "--search-workers", "1"])
    assert result.exit_code == 0, result.output
    preview, rate = sf.read(tmp_path / "melody.preview.wav", dtype="float32")
    assert preview.shape == audio.shape
    played = [n.onset_seconds for n in find_phrase(preview).notes]
    assert np.allclose(played, [n.onset_seconds for n in find_phrase(audio).notes], atol=0.05)


# --------------------------------------------------------------------------------------------------
# HTTP


@pytest.fixture(scope="module")
def server(untrained_artifact, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-search") / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = ["--max-search-seconds", str(MAX_SEARCH), "--search-workers", "1", "--log-level", "warning"]
    with running_server(untrained_artifact.path, args, env, log) as base:
        yield base


@pytest.mark.parametrize(
    ("how", "value"),
    [("form", "-1"), ("form", "soon"), ("json", 99), ("json", "1e999"), ("query", "5"), ("json", True)],
)
def test_bad_search_seconds_is_a_400_naming_the_limit(server, how, value):
    audio = _wav(_note())
    if how == "form":
        reply = requests.post(f"{server}/predict", files={"audio": ("a.wav", audio)}, data={"search_seconds": value})
    elif how == "json":
        body = {"audio_base64": base64.b64encode(audio).decode(), "search_seconds": value}
        reply = requests.post(f"{server}/predict", json=body)
    else:
        reply = requests.post(f"{server}/predict", files={"audio": ("a.wav", audio)}, params={"search_seconds": value})
    assert reply.status_code == 400, reply.text
    detail = reply.json()["detail"]
    assert "search_seconds" in detail and f"0 to {MAX_SEARCH}" in detail


def test_search_seconds_over_http_returns_the_searched_preset(server):
    import vita

    files = {"audio": ("a.wav", _wav(_note()))}
    fast = requests.post(f"{server}/predict", files=files, timeout=60)
    assert fast.status_code == 200 and "search" not in fast.json()
    form = {"search_seconds": "1.5", "preview": "true"}
    reply = requests.post(f"{server}/predict", files=files, data=form, timeout=60)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    search = body["search"]
    assert set(search) >= {"distance_start", "distance_end", "renders", "seconds", "start"}
    assert search["distance_end"] <= search["distance_start"] and search["renders"] >= 1
    assert search["seconds"] <= 1.5 * 1.1 + 1.0
    assert vita.Synth().load_json(json.dumps(body["preset"]))
    for name, value in body["parameters"].items():
        assert body["preset"]["settings"][name] == pytest.approx(value)
    assert body["preview"]["note"] == body["note"]["midi"]
    assert {"search", "model", "total"} <= set(body["timings_ms"])
    # JSON body and query parameter reach the same search.
    as_json = {"audio_base64": base64.b64encode(files["audio"][1]).decode(), "search_seconds": 0.5}
    assert "search" in requests.post(f"{server}/predict", json=as_json, timeout=60).json()
    as_query = requests.post(f"{server}/predict", files=files, params={"search_seconds": "0.5"}, timeout=60)
    assert "search" in as_query.json()


def test_a_phrase_with_search_gets_a_preset_whose_preview_plays_every_note(server):
    from zoo.notes import find_phrase

    audio = _phrase()
    form = {"search_seconds": "2", "preview": "true"}
    reply = requests.post(f"{server}/predict", files={"audio": ("m.wav", _wav(audio))}, data=form, timeout=60)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert [n["midi"] for n in body["notes"]] == [57, 60, 64]
    search = body["search"]
    assert search["notes_matched"] == 3 and search["start"] and isinstance(search["wavetable"], bool)
    assert search["analysis"]["pitched"] and search["analysis"]["midi"] in (57, 60, 64)
    if search["wavetable"]:
        assert body["preset"]["settings"]["wavetables"][0]["name"] == "From audio"
    preview = body["preview"]
    assert preview["notes_played"] == 3 and not preview["silent"]
    wav, rate = sf.read(io.BytesIO(base64.b64decode(preview["wav_base64"])), dtype="float32")
    assert rate == SR and wav.shape == audio.shape
    heard = find_phrase(wav).notes
    assert np.allclose([n.onset_seconds for n in heard], [n["onset_seconds"] for n in body["notes"]], atol=0.05)
