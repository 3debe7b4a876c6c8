"""The note-onset network's runtime (zoo.onsets), its training data and its task's scoring."""

import numpy as np
import pytest

from training.data.note_onsets import held_out, onset_labels, preset_files
from training.tasks.note_onsets import onset_counts, widened
from zoo.onsets import HOP, MARGIN, THRESHOLD, framewise, pick_onsets


def test_pick_onsets_keeps_peaks_above_the_threshold_and_apart():
    p = np.zeros(100)
    p[[10, 11, 12]] = [0.6, 0.97, 0.7]  # one peak spread over three frames
    p[14] = 0.95  # 3 frames (35 ms) after a stronger peak: the same onset
    p[40] = 0.4  # under the threshold
    p[60] = THRESHOLD + 0.01
    assert pick_onsets(p) == [11, 60]
    assert pick_onsets(p, threshold=0.3) == [11, 40, 60]
    assert pick_onsets(np.zeros(5)) == []
    with pytest.raises(ValueError, match="onset probability"):
        pick_onsets(np.zeros((2, 5)))


def test_framewise_windows_equal_the_whole_recording():
    """A frame-wise operation with a receptive field under 2 * MARGIN + 1 frames, applied window by window,
    gives what it gives on the whole sequence (zeros past both ends)."""
    rng = np.random.default_rng(0)
    half = MARGIN - 2
    kernel = rng.random(2 * half + 1)

    def whole(x):  # (F, T) -> (T,): a centred filter over band 0, zero padded
        return np.convolve(np.pad(x[0], half), kernel[::-1], mode="valid")

    def run(batch):
        return np.stack([whole(w) for w in batch])

    length = 300
    for n in (50, 300, 301, 1000, 1234):
        features = rng.normal(size=(3, n)).astype(np.float32)
        np.testing.assert_allclose(framewise(features, run, length), whole(features), rtol=1e-5, atol=1e-5)


def test_onset_labels_mark_the_nearest_frame():
    labels = onset_labels([0.0, 1.0, 11.99, 30.0], n_frames=1034)
    assert np.flatnonzero(labels).tolist() == [0, round(44100 / HOP), round(11.99 * 44100 / HOP)]


def test_preset_files_hold_out_every_third(tmp_path):
    for name in "abcdefg":
        (tmp_path / f"{name}.vital").write_text("{}")
    listing = tmp_path / "list.txt"
    listing.write_text("# presets\n" + "\n".join(f"{n}.vital" for n in "abcdefg") + "\n")
    assert [f.stem for f in held_out(preset_files(listing, hold_out=False))] == ["c", "f"]
    assert [f.stem for f in preset_files(listing)] == ["a", "b", "d", "e", "g"]
    assert [f.stem for f in preset_files(tmp_path, hold_out=False)] == list("abcdefg")
    with pytest.raises(FileNotFoundError, match="no preset folder"):
        preset_files(tmp_path / "missing")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="names no .vital"):
        preset_files(tmp_path / "empty.txt")


def test_task_targets_and_counts():
    import torch

    y = torch.zeros(1, 10, dtype=torch.long)
    y[0, 4] = 1
    assert widened(y)[0].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    labels = np.zeros(100, dtype=np.uint8)
    labels[[10, 50, 90]] = 1
    p = np.zeros(100)
    p[[13, 56, 70]] = 0.99  # 3 frames off: a hit; 6 frames off: found but not a hit; 70: extra
    assert onset_counts(p, labels) == (1, 3, 3)


def test_the_shipped_network_marks_notes_across_its_windows():
    """A 20 s recording (longer than the graph's 12 s window): every note found within the benchmark's 50 ms,
    nothing else, and a probability per frame."""
    from zoo.audio import SAMPLE_RATE
    from zoo.onsets import onset_probability

    rng = np.random.default_rng(0)
    starts = np.arange(0.5, 19.5, 1.5)
    x = np.zeros(20 * SAMPLE_RATE, np.float32)
    t = np.arange(int(0.6 * SAMPLE_RATE)) / SAMPLE_RATE
    for s in starts:
        f = 440.0 * 2 ** ((int(rng.integers(48, 72)) - 69) / 12)
        tone = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 20)) * np.exp(-3 * t) * 0.3
        x[int(s * SAMPLE_RATE) : int(s * SAMPLE_RATE) + len(t)] += tone.astype(np.float32)
    p = onset_probability(x)
    assert p.shape == (len(x) // HOP + 1,)
    assert np.all((p >= 0) & (p <= 1))
    found = np.array(pick_onsets(p)) * HOP / SAMPLE_RATE
    assert len(found) == len(starts)
    assert np.max(np.abs(found - starts)) < 0.05


def test_generate_phrases_writes_labelled_features(tmp_path):
    """Two phrases (one per source with a human preset given): features on zoo.onsets' frames, an onset label
    per note, what each phrase plays; seed 0 (the benchmark's melodies) is refused."""
    import json
    from pathlib import Path

    import h5py

    from training.data.note_onsets import N_FRAMES, generate_phrases
    from zoo.onsets import FRONT_END

    init = Path(__file__).resolve().parents[1] / "zoo" / "vital" / "data" / "init.vital"
    with pytest.raises(ValueError, match="seed 0"):
        generate_phrases(tmp_path / "x.h5", 2, seed=0)
    path = generate_phrases(tmp_path / "p.h5", 4, seed=3, presets=[init], workers=1, progress=False)
    with h5py.File(path) as f:
        assert f["features"].shape == (4, FRONT_END.n_mels, N_FRAMES)
        assert json.loads(f.attrs["front_end"]) == FRONT_END.to_dict()
        for labels, text in zip(f["labels"][()], f["phrases"][()], strict=True):
            meta = json.loads(text)
            assert meta["source"] in ("human", "sampler")
            assert labels.sum() == len({round(onset * 44100 / HOP) for _, onset, _, _ in meta["notes"]}) > 0
        assert np.isfinite(f["features"][()]).all() and f["features"][()].max() > 1


def test_frame_files_of_a_folder_are_read_as_one(tmp_path):
    import h5py

    from training.data.frames import create_frame_datasets, load_frame_file
    from zoo.audio import FrontEndConfig

    small = FrontEndConfig(n_samples=HOP * 9, n_fft=2048, hop_length=HOP, n_mels=4)
    for name, n, value in (("a.h5", 2, 1.0), ("b.h5", 3, 2.0)):
        with h5py.File(tmp_path / name, "w") as f:
            features, labels, items = create_frame_datasets(f, "phrases", n, small, ["none", "onset"])
            features[...] = value
    x, y, attrs = load_frame_file(tmp_path, "phrase dataset", "make one")
    assert x.shape == (5, 4, 10) and y.shape == (5, 10)
    assert x[:, 0, 0].tolist() == [1, 1, 2, 2, 2]
    assert attrs["n_phrases"] == 2
    other = FrontEndConfig(n_samples=HOP * 9, n_fft=2048, hop_length=HOP, n_mels=4, f_min=30.0)
    with h5py.File(tmp_path / "c.h5", "w") as f:
        create_frame_datasets(f, "phrases", 1, other, ["none", "onset"])
    with pytest.raises(ValueError, match="different front ends"):
        load_frame_file(tmp_path, "phrase dataset", "make one")
    with pytest.raises(FileNotFoundError, match="make one"):
        load_frame_file(tmp_path / "empty", "phrase dataset", "make one")
