"""`zoo data generate`: render random Tier-1 presets with Vital into an HDF5 dataset.

Presets are drawn by index from the seed (``zoo.vital.sampler``); shard ``i/n`` takes the indices
``i, i + n, i + 2n ...`` of ``range(n_presets)``, so the shards of one seed together are exactly the
unsharded dataset. Worker processes render (one synth each) and compress; this process writes rows in
index order, so the output does not depend on the number of workers.

Nothing half-written ever sits at the output path: rows go to ``<out>.partial``, committed (counters
written and the file flushed) every few presets, and the file is renamed to ``<out>`` once the shard is
complete. The partial file appears complete (layout and schema written in a temporary file, then renamed), so
after an interruption at any point ``resume=True`` continues it from its last commit; a partial file whose last
commit cannot be read back (a kill that cut a write to the file's structure) is started over, and the report
says so.

Each preset is rendered in a child process forked for it from a synth that has rendered nothing
(``render_job.render_isolated``): Vital's random phases depend on everything the process rendered before,
and whether a render is kept can depend on them, so this is what makes the parameters (and the audio) of a
seed the same for any number of workers and any resume point. The workers are forked from the calling
process, whose Vital state they inherit: the guarantee holds for a caller that has not rendered with Vital
itself (``zoo data generate`` never has; nor has this module's own process, since workers render in children).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.data import schema
from training.data.render_job import PresetRenders, RenderSettings, init_worker, render_in_worker
from zoo.audio import CLIP_SAMPLES, SAMPLE_RATE, TARGET_RMS_DB
from zoo.errors import DatasetError
from zoo.files import atomic_path, replace_atomically
from zoo.vital.render import DEFAULT_VELOCITY, NOTE_SECONDS, RENDER_SECONDS, vita_version
from zoo.vital.sampler import DEFAULT_PRIOR, PriorMix
from zoo.vital.tier1 import tier1_spec
from zoo.workers import process_pool

COMMIT_EVERY = 16  # presets between commits of the partial file


@dataclass
class GenerationReport:
    """What a generation run did (this run's renders; the file's totals for presets and rejections)."""

    path: Path
    complete: bool
    n_presets: int  # presets of this shard
    n_presets_done: int
    n_presets_failed: int
    n_rows: int
    n_renders_total: int
    n_rejected: dict[str, int]
    renders_this_run: int
    seconds: float
    render_seconds: float  # summed over workers: time inside vita's render
    restarted: str | None = None  # why an unreadable partial file was started over

    @property
    def rejection_rate(self) -> float:
        """Rejected renders / all renders."""
        return sum(self.n_rejected.values()) / self.n_renders_total if self.n_renders_total else 0.0

    @property
    def renders_per_second(self) -> float:
        return self.renders_this_run / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in self.n_rejected.items())
        state = "complete" if self.complete else "interrupted"
        restarted = f"{self.restarted}\n" if self.restarted else ""
        return restarted + (
            f"{state}: {self.n_presets_done}/{self.n_presets} presets, {self.n_rows} renders stored in {self.path}; "
            f"rejected {sum(self.n_rejected.values())}/{self.n_renders_total} renders "
            f"({100 * self.rejection_rate:.1f} %: {reasons}); {self.n_presets_failed} presets failed every attempt; "
            f"{self.renders_per_second:.1f} renders/s"
        )


def partial_path(out: Path) -> Path:
    """Where an unfinished run writes: ``<out>.partial``."""
    return out.with_name(out.name + ".partial")


def _validate(out: Path, n_presets: int, workers: int, seed: int, notes: tuple[int, ...], shard: tuple[int, int]):
    if n_presets < 1:
        raise DatasetError(f"--n-presets must be at least 1, got {n_presets}")
    if workers < 1:
        raise DatasetError(f"--workers must be at least 1, got {workers}")
    if seed < 0:
        raise DatasetError(f"--seed must be non-negative, got {seed}")
    if not notes:
        raise DatasetError("--notes needs at least one MIDI note")
    if any(not 0 <= n <= 127 for n in notes) or len(set(notes)) != len(notes):
        raise DatasetError(f"--notes must be distinct MIDI notes in 0..127, got {list(notes)}")
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise DatasetError(f"--shard must be i/n with 0 <= i < n, got {index}/{count}")
    if index >= n_presets:
        raise DatasetError(f"--shard {index}/{count} has no presets out of --n-presets {n_presets}")
    if out.exists() and out.is_dir():
        raise DatasetError(f"--out {out} is a directory; give a file path such as data/vital.h5")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatasetError(f"cannot create the folder of --out {out}: {e.strerror or e}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DatasetError(f"cannot write to {parent} (permission denied); choose another --out")


def _run_attrs(
    seed: int, n_presets: int, notes: tuple[int, ...], shard: tuple[int, int], prior: PriorMix, vary_notes: bool
) -> dict[str, Any]:
    return {
        "prior": json.dumps(prior.to_dict(), sort_keys=True),
        "vary_notes": bool(vary_notes),
        "seed": seed,
        "n_presets": n_presets,
        "notes": np.array(notes, dtype=np.int64),
        "shard_index": shard[0],
        "shard_count": shard[1],
        "velocity": DEFAULT_VELOCITY,
        "note_seconds": NOTE_SECONDS,
        "render_seconds": RENDER_SECONDS,
        "sample_rate": SAMPLE_RATE,
        "n_samples": CLIP_SAMPLES,
        "loudness_target_db": TARGET_RMS_DB,
        "vita_version": vita_version(),
    }


def _same_run(f: Any, expected: dict[str, Any]) -> list[str]:
    found = schema.run_attrs(f)
    differ = []
    for key in schema.RUN_KEYS:
        want = expected[key].tolist() if isinstance(expected[key], np.ndarray) else expected[key]
        if found.get(key) != want:
            differ.append(f"{key} (file: {found.get(key)}, now: {want})")
    return differ


def _append(f: Any, result: PresetRenders, notes: tuple[int, ...]) -> None:
    """Write one preset's rows at the end of the row datasets."""
    start = int(f.attrs["n_rows"])
    n = len(result.chunks)
    stop = start + n
    for name in schema.ROW_DATASETS:
        f[name].resize(stop, axis=0)
    audio = f[schema.AUDIO]
    for row, chunk in enumerate(result.chunks, start=start):
        audio.id.write_direct_chunk((row, 0), chunk)
    f[schema.CONTINUOUS][start:stop] = np.broadcast_to(result.continuous, (n, result.continuous.shape[0]))
    f[schema.CATEGORICAL][start:stop] = np.broadcast_to(result.categorical, (n, result.categorical.shape[0]))
    f[schema.PRESET_HASH][start:stop] = [result.preset_hash] * n
    f[schema.PRESET_INDEX][start:stop] = result.index
    f[schema.NOTE][start:stop] = np.array(notes[:n], dtype=np.int64)
    f[schema.RMS_DB][start:stop] = np.array(result.rms_db, dtype=np.float32)
    f[schema.PEAK][start:stop] = np.array(result.peak, dtype=np.float32)
    f[schema.VELOCITY][start:stop] = np.array(result.velocity, dtype=np.float32)
    f[schema.NOTE_SECONDS][start:stop] = np.array(result.note_seconds, dtype=np.float32)
    f.attrs["n_rows"] = stop


def _count(f: Any, result: PresetRenders) -> None:
    f.attrs["n_presets_done"] = int(f.attrs["n_presets_done"]) + 1
    f.attrs["n_renders_total"] = int(f.attrs["n_renders_total"]) + result.n_renders
    for reason, n in result.rejected.items():
        f.attrs[f"n_rejected_{reason}"] = int(f.attrs[f"n_rejected_{reason}"]) + n
    if result.continuous is None:
        f.attrs["n_presets_failed"] = int(f.attrs["n_presets_failed"]) + 1


def _write_preset(f: Any, result: PresetRenders, notes: tuple[int, ...]) -> None:
    """Rows and counters of one preset (called in index order)."""
    if result.continuous is not None:
        _append(f, result, notes)
    _count(f, result)


def _check_resumable(f: Any, partial: Path, attrs: dict[str, Any], spec: dict[str, Any]) -> None:
    differ = _same_run(f, attrs)
    if differ:
        raise DatasetError(f"{partial} belongs to a run with other settings: {', '.join(differ)}")
    if json.loads(f.attrs["spec"]) != spec:
        raise DatasetError(f"{partial} was written with another parameter spec; delete it to start again")


def _truncate_to_commit(f: Any) -> None:
    """Drop rows written after the last commit (a run killed between two commits)."""
    n_rows = int(f.attrs["n_rows"])
    for name in schema.ROW_DATASETS:
        if f[name].shape[0] != n_rows:
            f[name].resize(n_rows, axis=0)


def _check_committed(f: Any, indices: list[int]) -> None:
    """Raise ValueError unless the committed rows read back whole and agree with the counters: every audio row
    has its chunk, and the rows' preset indices are this shard's first presets, in order."""
    n_rows, done = int(f.attrs["n_rows"]), int(f.attrs["n_presets_done"])
    if done > len(indices) or any(f[name].shape[0] < n_rows for name in schema.ROW_DATASETS):
        raise ValueError("fewer rows than its counters say")
    if f[schema.AUDIO].id.get_num_chunks() < n_rows:
        raise ValueError("audio rows without their data")
    rows = f[schema.PRESET_INDEX][:n_rows]
    kept = set(rows.tolist())
    if np.any(np.diff(rows) < 0) or not kept <= set(indices[:done]):
        raise ValueError("rows of presets it has not committed")
    if len(kept) != done - int(f.attrs["n_presets_failed"]) or b"" in set(f[schema.PRESET_HASH][:n_rows].tolist()):
        raise ValueError("rows missing for committed presets")


def _create_partial(partial: Path, spec: Any, attrs: dict[str, Any]) -> None:
    """An empty dataset (layout, schema, zero counters) written to a temporary file, then renamed: a kill at any
    point leaves no partial file or a complete empty one."""
    import h5py

    with atomic_path(partial) as tmp, h5py.File(tmp, "w") as f:
        schema.create_layout(f, spec, CLIP_SAMPLES, attrs)


def _open_partial(partial: Path, spec: Any, attrs: dict[str, Any], indices: list[int]) -> tuple[Any, str | None]:
    """The partial file opened for appending at its last commit (created when there is none), and a note when an
    unreadable one was started over. A partial file of another run is a :class:`DatasetError`."""
    import h5py

    note = None
    if partial.exists():
        try:
            f = h5py.File(partial, "r+")
        except OSError as e:
            note = f"{partial} could not be opened after the interruption ({e})"
        else:
            try:
                if "spec" not in f.attrs:
                    raise ValueError("no schema")
                _check_resumable(f, partial, attrs, spec.to_dict())
                _truncate_to_commit(f)
                _check_committed(f, indices)
                return f, None
            except DatasetError:
                f.close()
                raise
            except (OSError, KeyError, ValueError) as e:
                f.close()
                note = f"the last commit of {partial} cannot be read back ({e})"
        note += "; it was started over"
        partial.unlink()
    _create_partial(partial, spec, attrs)
    try:
        return h5py.File(partial, "r+"), note
    except OSError as e:
        raise DatasetError(f"cannot open {partial} for writing ({e})") from None


RenderMany = Callable[[list[int]], Iterator[PresetRenders]]


@contextmanager
def _renderers(settings: RenderSettings, workers: int) -> Iterator[RenderMany]:
    """A function from preset indices to rendered presets in index order, from a pool of ``workers`` processes
    with one synth each (every preset rendered in a child forked for it: ``render_job.render_isolated``).
    Started before any HDF5 file is opened, so forked workers inherit no open file."""
    with process_pool(workers, initializer=init_worker, initargs=(settings,)) as pool:
        yield lambda indices: pool.imap(render_in_worker, indices, chunksize=1)


def _report(
    path: Path, f: Any, n_shard: int, renders: int, seconds: float, render_s: float, restarted: str | None = None
) -> GenerationReport:
    c = schema.counters(f)
    return GenerationReport(
        path=path,
        complete=bool(f.attrs.get("complete", False)),
        n_presets=n_shard,
        n_presets_done=c["n_presets_done"],
        n_presets_failed=c["n_presets_failed"],
        n_rows=c["n_rows"],
        n_renders_total=c["n_renders_total"],
        n_rejected={r: c[f"n_rejected_{r}"] for r in ("silent", "non_finite", "clipped")},
        renders_this_run=renders,
        seconds=seconds,
        render_seconds=render_s,
        restarted=restarted,
    )


def generate_dataset(
    out: Path,
    n_presets: int,
    workers: int = 1,
    seed: int = 0,
    notes: tuple[int, ...] = (48, 60, 72),
    shard: tuple[int, int] = (0, 1),
    resume: bool = False,
    progress: bool = True,
    prior: PriorMix | str = DEFAULT_PRIOR,
    vary_notes: bool = False,
) -> GenerationReport:
    """Render ``n_presets`` random Tier-1 presets (this shard's share of them) at each note into ``out``,
    drawn with the sampler's ``prior``; ``vary_notes``: each render's own velocity and held length.

    Raises :class:`DatasetError` for bad arguments, an existing ``out``, or a partial file from another
    run. On KeyboardInterrupt the partial file is committed and closed, then the interrupt propagates.
    """
    import h5py

    out = Path(out)
    notes = tuple(int(n) for n in notes)
    shard = (int(shard[0]), int(shard[1]))
    _validate(out, n_presets, workers, seed, notes, shard)
    indices = list(range(shard[0], n_presets, shard[1]))
    partial = partial_path(out)
    spec = tier1_spec()
    prior = PriorMix.parse(prior) if isinstance(prior, str) else prior
    attrs = _run_attrs(seed, n_presets, notes, shard, prior, vary_notes)

    if out.exists():
        if not resume:
            raise DatasetError(f"{out} already exists; delete it or choose another --out")
        with h5py.File(out, "r") as f:
            differ = _same_run(f, attrs)
            if differ:
                raise DatasetError(f"{out} was generated with other settings: {', '.join(differ)}")
            return _report(out, f, len(indices), 0, 0.0, 0.0)
    if partial.exists() and not resume:
        raise DatasetError(
            f"an interrupted run left {partial}; pass --resume to continue it, or delete it to start again"
        )

    settings = RenderSettings(
        spec.to_dict(), seed, notes, DEFAULT_VELOCITY, NOTE_SECONDS, RENDER_SECONDS, prior=prior.to_dict(),
        vary_notes=bool(vary_notes),
    )  # fmt: skip
    renders = 0
    render_s = 0.0
    t0 = time.perf_counter()
    with _renderers(settings, workers) as render_many:
        f, restarted = _open_partial(partial, spec, attrs, indices)
        try:
            done = int(f.attrs["n_presets_done"])
            bar = _progress_bar(len(indices), done, enabled=progress)
            try:
                for i, result in enumerate(render_many(indices[done:]), start=1):
                    _write_preset(f, result, notes)
                    renders += result.n_renders
                    render_s += result.render_seconds
                    if i % COMMIT_EVERY == 0:
                        f.flush()
                    bar.update(1)
                    bar.set_postfix_str(f"{renders / (time.perf_counter() - t0):.1f} renders/s", refresh=False)
            finally:
                bar.close()
            f.attrs["complete"] = True
            report = _report(out, f, len(indices), renders, time.perf_counter() - t0, render_s, restarted)
        finally:
            f.close()
    replace_atomically(partial, out)
    return report


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="preset", desc="rendering", disable=not enabled, dynamic_ncols=True)
