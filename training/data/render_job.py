"""The work of one generation worker: draw preset ``index``, render it at every note, check, normalize.

Each worker process holds one :class:`~zoo.vital.render.VitalRenderer` (one ``vita.Synth``), created by
:func:`init_worker`, and renders each preset in a child process forked for it (:func:`render_isolated`). A
preset is kept only if every note renders finite, audible and unclipped audio; a rejected draw is replaced by
the next attempt of the same index, so the dataset holds ``n_presets`` presets whatever the rejection rate (up
to ``max_attempts`` draws per index). The audio comes back as the HDF5 chunk bytes (shuffle + deflate), so the
workers, not the writer process, pay for compression.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from zoo.audio import AUDIBLE_MARGIN_DB, is_silent, normalize_loudness, rms_db
from zoo.vital.render import VitalRenderer
from zoo.vital.sampler import PresetSampler, PriorMix
from zoo.vital.spec import VitalParamSpec

CLIP_PEAK = 1.0  # a peak at or above full scale is rejected as clipped
REJECTIONS = ("silent", "non_finite", "clipped")


@dataclass(frozen=True)
class RenderSettings:
    """What every worker needs to render a preset the same way."""

    spec: dict
    seed: int
    notes: tuple[int, ...]
    velocity: float
    note_seconds: float
    render_seconds: float
    max_attempts: int = 10
    gzip_level: int = 1
    prior: dict = field(default_factory=lambda: PriorMix().to_dict())  # PriorMix weights
    vary_notes: bool = False  # draw each render's velocity and note length (NOTE_VARIATION)


# With ``vary_notes``, each render's velocity and held length are drawn uniformly from these ranges.
NOTE_VARIATION = {"velocity": (0.4, 1.0), "note_seconds": (0.25, 2.0)}


def note_settings(settings: RenderSettings, index: int, attempt: int) -> list[tuple[float, float]]:
    """(velocity, note_seconds) of each note of preset ``index``: fixed, or drawn from ``(seed, index, attempt)``."""
    s = settings
    if not s.vary_notes:
        return [(s.velocity, s.note_seconds)] * len(s.notes)
    rng = np.random.default_rng([s.seed, int(index), int(attempt), 2])
    (v_lo, v_hi), (n_lo, n_hi) = NOTE_VARIATION["velocity"], NOTE_VARIATION["note_seconds"]
    n_hi = min(n_hi, s.render_seconds)
    return [(float(rng.uniform(v_lo, v_hi)), float(rng.uniform(n_lo, n_hi))) for _ in s.notes]


@dataclass
class PresetRenders:
    """A rendered preset (``continuous`` is None when every attempt was rejected)."""

    index: int
    continuous: np.ndarray | None = None
    categorical: np.ndarray | None = None
    preset_hash: bytes = b""
    chunks: list[bytes] = field(default_factory=list)  # compressed audio, one per note
    rms_db: list[float] = field(default_factory=list)
    peak: list[float] = field(default_factory=list)
    velocity: list[float] = field(default_factory=list)
    note_seconds: list[float] = field(default_factory=list)
    n_renders: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECTIONS, 0))
    render_seconds: float = 0.0  # time spent inside vita's render


def check_render(audio: np.ndarray) -> str | None:
    """Why a raw render is rejected ("silent", "non_finite", "clipped"), or None if it is kept."""
    if not np.all(np.isfinite(audio)):
        return "non_finite"
    if float(np.max(np.abs(audio))) >= CLIP_PEAK:
        return "clipped"
    if is_silent(audio, AUDIBLE_MARGIN_DB):  # a training clip must be clearly audible (-60 dBFS)
        return "silent"
    return None


def preset_hash(continuous: np.ndarray, categorical: np.ndarray) -> bytes:
    """16 hex characters identifying a preset's vector (equal vectors, equal hashes)."""
    h = hashlib.sha1(np.asarray(continuous, dtype="<f4").tobytes())
    h.update(np.asarray(categorical, dtype="<i8").tobytes())
    return h.hexdigest()[:16].encode("ascii")


def encode_chunk(audio: np.ndarray, level: int) -> bytes:
    """One row of float32 audio as an HDF5 chunk of a shuffle + gzip dataset."""
    raw = np.ascontiguousarray(audio, dtype="<f4")
    shuffled = raw.view(np.uint8).reshape(-1, 4).T.tobytes()  # HDF5 byte shuffle: all byte 0s, all byte 1s ...
    return zlib.compress(shuffled, level)


class PresetRenderJob:
    """Renders presets by index with one synth; used in-process or as a worker's global."""

    def __init__(self, settings: RenderSettings) -> None:
        self.settings = settings
        self.spec = VitalParamSpec.from_dict(settings.spec)
        self.sampler = PresetSampler(self.spec, settings.seed, PriorMix(**settings.prior))
        self.renderer = VitalRenderer(self.spec)

    def __call__(self, index: int) -> PresetRenders:
        s = self.settings
        out = PresetRenders(index=index)
        for attempt in range(s.max_attempts):
            continuous, categorical = self.sampler.sample(index, attempt)
            self.renderer.set_vector(continuous, categorical)
            renders = []
            played = note_settings(s, index, attempt)
            for note, (velocity, held) in zip(s.notes, played, strict=True):
                t0 = time.perf_counter()
                audio = self.renderer.render_current(note, velocity, held, s.render_seconds)
                out.render_seconds += time.perf_counter() - t0
                out.n_renders += 1
                reason = check_render(audio)
                if reason is not None:
                    out.rejected[reason] += 1
                    break
                renders.append(audio)
            else:
                out.continuous, out.categorical = continuous, categorical
                out.preset_hash = preset_hash(continuous, categorical)
                out.velocity, out.note_seconds = [v for v, _ in played], [n for _, n in played]
                for audio in renders:
                    out.rms_db.append(rms_db(audio))
                    out.peak.append(float(np.max(np.abs(audio))))
                    out.chunks.append(encode_chunk(normalize_loudness(audio), s.gzip_level))
                return out
        return out


def render_isolated(job: PresetRenderJob, index: int) -> PresetRenders:
    """``job(index)`` in a child process forked for this one preset, from a synth that has rendered nothing.

    Vital draws oscillator phases and noise from generators whose state is shared by the whole process and
    advances with every render, and whether a render is kept (audible, unclipped) can depend on them: rendered
    in one long-lived process, preset ``i`` would depend on the presets rendered before it there (on the number
    of workers, on which worker got it, on where a run was resumed). Forked from the same untouched synth, every
    preset starts from the same state: same presets kept, same parameters, same audio. Costs a fork per preset
    (0 to 22 % more wall time for a run, measured on a shared 2-core machine). Where there is no ``fork``,
    renders in this process."""
    if not hasattr(os, "fork"):
        return job(index)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: render, send the pickled outcome, leave without the parent's clean-up
        status = 0
        try:
            os.close(read_fd)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                outcome = (True, job(index))
            except Exception as e:  # noqa: BLE001 - re-raised in the parent
                outcome = (False, e)
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
        except BaseException:  # noqa: BLE001 - nothing may escape a forked child
            status = 1
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        payload = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(wait_status)
    if code != 0 or not payload:
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        raise RuntimeError(f"the process rendering preset {index} failed ({how})")
    ok, value = pickle.loads(payload)
    if not ok:
        raise value
    return value


_JOB: PresetRenderJob | None = None


def init_worker(settings: RenderSettings) -> None:
    """Pool initializer: one synth per worker process, its base preset loaded; Ctrl-C is left to the parent."""
    global _JOB
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)
    _JOB = PresetRenderJob(settings)
    _JOB.renderer.load_base()


def render_in_worker(index: int) -> PresetRenders:
    if _JOB is None:
        raise RuntimeError("init_worker was not called in this process")
    return render_isolated(_JOB, index)
