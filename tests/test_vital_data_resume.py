"""Dataset generation is reproducible (any number of workers, any resume point) and resumes from any kill."""

import h5py
import numpy as np
import pytest

pytest.importorskip("vita")

from training.data import schema  # noqa: E402
from training.data.generate import _create_partial, _run_attrs, generate_dataset, partial_path  # noqa: E402
from training.data.render_job import PresetRenderJob, RenderSettings, render_isolated  # noqa: E402
from zoo.vital import tier1_spec  # noqa: E402
from zoo.vital.sampler import PriorMix  # noqa: E402

N_PRESETS, NOTES, SEED = 6, (60,), 7
ROWS = (schema.CONTINUOUS, schema.CATEGORICAL, schema.PRESET_HASH, schema.PRESET_INDEX, schema.AUDIO)


def _rows(path):
    with h5py.File(path, "r") as f:
        return {name: f[name][:] for name in ROWS}


def _assert_same(a, b):
    for name in ROWS:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "w1.h5"
    generate_dataset(path, N_PRESETS, workers=1, seed=SEED, notes=NOTES, progress=False)
    return _rows(path)


def test_a_preset_renders_the_same_whatever_was_rendered_before():
    """Vital's random phases advance with every render of a process; each preset is rendered in a child forked
    from an untouched synth, so its audio does not depend on the presets rendered before it."""
    settings = RenderSettings(tier1_spec().to_dict(), SEED, NOTES, 0.8, 1.0, 2.0)
    job = PresetRenderJob(settings)
    job.renderer.load_base()
    first = render_isolated(job, 3)
    render_isolated(job, 5)
    again = render_isolated(job, 3)
    assert first.chunks == again.chunks and np.array_equal(first.continuous, again.continuous)


def test_two_workers_give_the_same_parameters_and_audio_as_one(one_worker, tmp_path):
    path = tmp_path / "w2.h5"
    generate_dataset(path, N_PRESETS, workers=2, seed=SEED, notes=NOTES, progress=False)
    _assert_same(one_worker, _rows(path))


def test_resume_from_a_partial_file_with_nothing_committed(one_worker, tmp_path):
    """A run killed before its first commit leaves the empty partial file: --resume starts from it."""
    out = tmp_path / "r.h5"
    _create_partial(partial_path(out), tier1_spec(), _run_attrs(SEED, N_PRESETS, NOTES, (0, 1), PriorMix(), False))
    report = generate_dataset(out, N_PRESETS, seed=SEED, notes=NOTES, resume=True, progress=False)
    assert report.complete and report.restarted is None and not partial_path(out).exists()
    _assert_same(one_worker, _rows(out))


@pytest.mark.parametrize("damage", ["cut to 1 kB", "garbage", "empty"])
def test_an_unreadable_partial_file_is_started_over(one_worker, tmp_path, damage):
    """What a kill in the middle of a write to the file's structure leaves (the state the old layout creation
    left: 'bad object header version number') is started over, and the report says so."""
    out = tmp_path / "r.h5"
    partial = partial_path(out)
    _create_partial(partial, tier1_spec(), _run_attrs(SEED, N_PRESETS, NOTES, (0, 1), PriorMix(), False))
    data = partial.read_bytes()
    partial.write_bytes({"cut to 1 kB": data[:1024], "garbage": b"\x89HDF\r\n" + b"x" * 5000, "empty": b""}[damage])
    with pytest.raises(Exception, match="--resume"):
        generate_dataset(out, N_PRESETS, seed=SEED, notes=NOTES, progress=False)  # still needs --resume
    report = generate_dataset(out, N_PRESETS, seed=SEED, notes=NOTES, resume=True, progress=False)
    assert report.complete and "started over" in report.restarted and "started over" in report.summary()
    _assert_same(one_worker, _rows(out))


def test_a_partial_file_whose_rows_disagree_with_its_counters_is_started_over(one_worker, tmp_path):
    out = tmp_path / "r.h5"
    partial = partial_path(out)
    _create_partial(partial, tier1_spec(), _run_attrs(SEED, N_PRESETS, NOTES, (0, 1), PriorMix(), False))
    with h5py.File(partial, "r+") as f:  # counters committed, rows not: two presets "done", no rows
        f.attrs["n_presets_done"] = 2
        f.attrs["n_rows"] = 2
        for name in schema.ROW_DATASETS:
            f[name].resize(2, axis=0)
    report = generate_dataset(out, N_PRESETS, seed=SEED, notes=NOTES, resume=True, progress=False)
    assert report.restarted and "cannot be read back" in report.restarted
    _assert_same(one_worker, _rows(out))
