import h5py
import numpy as np
import pytest
import torch

pytest.importorskip("vita")

import training.data.generate as generate_module  # noqa: E402
from training.data import schema  # noqa: E402
from training.data.dataset import VitalMelDataset, split_by_preset  # noqa: E402
from training.data.generate import generate_dataset, partial_path  # noqa: E402
from training.data.precompute import precompute_mels  # noqa: E402
from zoo.audio import LogMelFrontEnd, rms_db  # noqa: E402
from zoo.errors import DatasetError  # noqa: E402
from zoo.vital import VitalParamSpec, tier1_spec  # noqa: E402

N_PRESETS, NOTES, SEED = 4, (60, 72), 7


def _log_spectrum(audio: np.ndarray) -> np.ndarray:
    frames = audio[: len(audio) // 2048 * 2048].reshape(-1, 2048)
    return np.log(np.abs(np.fft.rfft(frames, axis=1)).mean(axis=0) + 1e-5)


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vital") / "vital.h5"
    report = generate_dataset(path, N_PRESETS, workers=1, seed=SEED, notes=NOTES, progress=False)
    assert report.complete and report.n_presets_done == N_PRESETS
    return path


@pytest.fixture(scope="module")
def mel_file(dataset_file, tmp_path_factory):
    path = tmp_path_factory.mktemp("mels") / "vital.h5"
    path.write_bytes(dataset_file.read_bytes())
    precompute_mels(path, batch_size=3, progress=False)
    return path


def test_schema_and_shapes(dataset_file):
    spec = tier1_spec()
    with h5py.File(dataset_file, "r") as f:
        n = f[schema.AUDIO].shape[0]
        assert n == N_PRESETS * len(NOTES)  # rejected draws are replaced, so every preset is there
        assert f[schema.AUDIO].shape == (n, 88200) and f[schema.AUDIO].dtype == np.float32
        assert f[schema.AUDIO].compression == "gzip"
        assert f[schema.CONTINUOUS].shape == (n, spec.n_continuous) and f[schema.CONTINUOUS].dtype == np.float32
        assert f[schema.CATEGORICAL].shape == (n, spec.n_categorical) and f[schema.CATEGORICAL].dtype == np.int64
        assert f[schema.PRESET_HASH].shape == (n,) and f[schema.NOTE].shape == (n,)
        assert list(f[schema.NOTE][:]) == list(NOTES) * N_PRESETS
        assert VitalParamSpec.from_dict(__import__("json").loads(f.attrs["spec"])) == spec
        assert list(f.attrs["continuous_names"]) == spec.continuous_names
        assert list(f.attrs["categorical_n_options"]) == spec.categorical_n_options
        np.testing.assert_allclose(f.attrs["continuous_max"], spec.maxs)
        assert list(f.attrs["continuous_scale"])[0] == spec.continuous[0].scale
        assert f.attrs["sample_rate"] == 44100 and f.attrs["seed"] == SEED and f.attrs["vita_version"] == "0.1.0"
        assert "n_mels" in f.attrs["front_end"]
        assert f.attrs["complete"]
        cont = f[schema.CONTINUOUS][:]
        assert cont.min() >= 0 and cont.max() <= 1
        # Rows of one preset share parameters and hash.
        assert len(set(f[schema.PRESET_HASH][:])) == N_PRESETS
        np.testing.assert_array_equal(cont[0], cont[1])
    assert not partial_path(dataset_file).exists()


def test_no_silent_or_non_finite_audio_is_stored(dataset_file):
    with h5py.File(dataset_file, "r") as f:
        audio = f[schema.AUDIO][:]
        assert np.isfinite(audio).all()
        assert np.abs(audio).max() <= 0.99 + 1e-6
        levels = [rms_db(a) for a in audio]
        assert min(levels) > -40  # normalized to -20 dB RMS unless the peak limit pulled it down
        assert f.attrs["n_renders_total"] >= audio.shape[0]


def test_resume_after_interruption_gives_the_same_data(dataset_file, tmp_path, monkeypatch):
    out = tmp_path / "resumed.h5"
    real_write = generate_module._write_preset
    calls = {"n": 0}

    def interrupt_after_two(*args, **kwargs):
        if calls["n"] == 2:
            raise KeyboardInterrupt
        calls["n"] += 1
        real_write(*args, **kwargs)

    monkeypatch.setattr(generate_module, "_write_preset", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(out, N_PRESETS, seed=SEED, notes=NOTES, progress=False)
    assert not out.exists() and partial_path(out).exists()  # never a half-written file at the output path
    with h5py.File(partial_path(out), "r") as f:
        assert f.attrs["n_presets_done"] == 2 and not f.attrs["complete"]
    monkeypatch.setattr(generate_module, "_write_preset", real_write)
    with pytest.raises(DatasetError, match="--resume"):
        generate_dataset(out, N_PRESETS, seed=SEED, notes=NOTES, progress=False)
    with pytest.raises(DatasetError, match="other settings"):
        generate_dataset(out, N_PRESETS, seed=SEED + 1, notes=NOTES, resume=True, progress=False)
    report = generate_dataset(out, N_PRESETS, seed=SEED, notes=NOTES, resume=True, progress=False)
    assert report.complete and out.exists() and not partial_path(out).exists()

    with h5py.File(dataset_file, "r") as a, h5py.File(out, "r") as b:
        for name in (schema.CONTINUOUS, schema.CATEGORICAL, schema.PRESET_HASH, schema.PRESET_INDEX, schema.NOTE):
            np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)
        assert a.attrs["n_renders_total"] == b.attrs["n_renders_total"]
        for row in range(a[schema.AUDIO].shape[0]):  # renders are not bit-identical (oscillator phases)
            diff = np.abs(_log_spectrum(a[schema.AUDIO][row]) - _log_spectrum(b[schema.AUDIO][row])).mean()
            assert diff < 0.5, row
    # Resuming a complete file is harmless and changes nothing.
    again = generate_dataset(out, N_PRESETS, seed=SEED, notes=NOTES, resume=True, progress=False)
    assert again.renders_this_run == 0 and again.n_rows == report.n_rows


def test_shards_with_workers_cover_the_unsharded_presets(dataset_file, tmp_path):
    shard0, shard1 = tmp_path / "s0.h5", tmp_path / "s1.h5"
    generate_dataset(shard0, N_PRESETS, workers=2, seed=SEED, notes=NOTES, shard=(0, 2), progress=False)
    generate_dataset(shard1, N_PRESETS, workers=1, seed=SEED, notes=NOTES, shard=(1, 2), progress=False)
    with h5py.File(dataset_file, "r") as f:
        whole = dict(zip(f[schema.PRESET_INDEX][:], f[schema.PRESET_HASH][:], strict=True))
    parts = {}
    for path, expected in ((shard0, {0, 2}), (shard1, {1, 3})):
        with h5py.File(path, "r") as f:
            assert set(f[schema.PRESET_INDEX][:]) == expected
            parts.update(zip(f[schema.PRESET_INDEX][:], f[schema.PRESET_HASH][:], strict=True))
    assert parts == whole


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "--workers must be at least 1"),
        ({"workers": -2}, "--workers must be at least 1"),
        ({"n_presets": 0}, "--n-presets"),
        ({"shard": (2, 2)}, "--shard"),
        ({"notes": (60, 60)}, "--notes"),
        ({"notes": (200,)}, "--notes"),
    ],
)
def test_bad_arguments_are_rejected(tmp_path, kwargs, message):
    args = {"n_presets": 2, **kwargs}
    with pytest.raises(DatasetError, match=message):
        generate_dataset(tmp_path / "x.h5", progress=False, **args)
    assert not (tmp_path / "x.h5").exists()


def test_unwritable_and_existing_outputs_are_rejected(dataset_file, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(DatasetError, match="cannot create the folder"):
        generate_dataset(blocker / "vital.h5", 2, progress=False)
    with pytest.raises(DatasetError, match="already exists"):
        generate_dataset(dataset_file, N_PRESETS, seed=SEED, notes=NOTES, progress=False)


def test_precomputed_mels_match_the_front_end(mel_file):
    with h5py.File(mel_file, "r") as f:
        mel = f[schema.MEL]
        n = f[schema.AUDIO].shape[0]
        assert mel.shape == (n, 1, 128, 173) and mel.dtype == np.float32
        assert mel.chunks == (1, 1, 128, 173) and mel.compression is None
        with torch.inference_mode():
            expected = LogMelFrontEnd()(torch.from_numpy(f[schema.AUDIO][:])).numpy()
        np.testing.assert_allclose(mel[:], expected, atol=1e-4)
        before = mel[:]
    precompute_mels(mel_file, progress=False)  # twice is harmless
    with h5py.File(mel_file, "r") as f:
        np.testing.assert_array_equal(f[schema.MEL][:], before)


def test_dataset_items(mel_file):
    ds = VitalMelDataset(mel_file)
    spec = tier1_spec()
    assert len(ds) == N_PRESETS * len(NOTES) and ds.spec == spec
    item = ds[3]
    assert item["mel"].shape == (1, 128, 173) and item["mel"].dtype == torch.float32
    assert item["continuous"].shape == (spec.n_continuous,) and item["continuous"].dtype == torch.float32
    assert item["categorical"].shape == (spec.n_categorical,) and item["categorical"].dtype == torch.int64
    assert item["note"].dtype == torch.int64 and item["note"].ndim == 0 and int(item["note"]) == NOTES[1]
    assert int(item["index"]) == 3
    loader = torch.utils.data.DataLoader(VitalMelDataset(mel_file, indices=[0, 2, 5]), batch_size=2, num_workers=2)
    batches = list(loader)
    assert [b["index"].tolist() for b in batches] == [[0, 2], [5]]
    assert batches[0]["mel"].shape == (2, 1, 128, 173)


def test_several_files_read_as_one(mel_file, tmp_path):
    copy = tmp_path / "copy.h5"
    copy.write_bytes(mel_file.read_bytes())
    ds = VitalMelDataset([mel_file, copy])
    n = N_PRESETS * len(NOTES)
    assert len(ds) == 2 * n
    torch.testing.assert_close(ds[n + 1]["mel"], ds[1]["mel"])
    assert int(ds[n + 1]["index"]) == n + 1


def test_dataset_without_mels_says_what_to_run(dataset_file):
    with pytest.raises(DatasetError, match="zoo data precompute-mels"):
        VitalMelDataset(dataset_file)


def test_split_by_preset(dataset_file):
    train, val = split_by_preset(dataset_file, val_fraction=0.25, seed=0)
    with h5py.File(dataset_file, "r") as f:
        hashes = f[schema.PRESET_HASH][:]
    assert sorted(train + val) == list(range(len(hashes)))
    assert not set(hashes[train]) & set(hashes[val])  # no preset on both sides
    assert len(set(hashes[val])) == 1  # 0.25 of 4 presets
    assert split_by_preset(dataset_file, val_fraction=0.25, seed=0) == (train, val)  # deterministic
    others = {tuple(split_by_preset(dataset_file, val_fraction=0.25, seed=s)[1]) for s in range(8)}
    assert len(others) > 1  # the seed matters
    with pytest.raises(DatasetError, match="val_fraction"):
        split_by_preset(dataset_file, val_fraction=1.5)


def test_prior_and_varied_notes_are_recorded_and_reproducible(dataset_file, tmp_path):
    with h5py.File(dataset_file, "r") as f:  # by default: the broad prior, every note 0.8 held 1 s
        assert __import__("json").loads(f.attrs["prior"]) == {"broad": 1.0, "human": 0.0, "simple": 0.0}
        assert set(f[schema.VELOCITY][:]) == {np.float32(0.8)} and set(f[schema.NOTE_SECONDS][:]) == {1.0}
    paths = [tmp_path / "a.h5", tmp_path / "b.h5"]
    for path in paths:
        generate_dataset(path, 3, seed=SEED, notes=NOTES, prior="human", vary_notes=True, progress=False)
    with h5py.File(paths[0], "r") as a, h5py.File(paths[1], "r") as b:
        velocity, held = a[schema.VELOCITY][:], a[schema.NOTE_SECONDS][:]
        assert len(set(velocity)) == len(velocity) and 0.4 <= velocity.min() and velocity.max() <= 1.0
        assert 0.25 <= held.min() and held.max() <= 2.0 and len(set(held)) == len(held)
        np.testing.assert_array_equal(velocity, b[schema.VELOCITY][:])
        np.testing.assert_array_equal(a[schema.CONTINUOUS][:], b[schema.CONTINUOUS][:])
        assert __import__("json").loads(a.attrs["prior"]) == {"broad": 0.0, "human": 1.0, "simple": 0.0}
    with pytest.raises(DatasetError, match="other settings"):  # resuming with another prior is refused
        generate_dataset(paths[0], 3, seed=SEED, notes=NOTES, prior="broad", vary_notes=True, resume=True)
