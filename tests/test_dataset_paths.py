"""Where a dataset is and how it splits: one resolution (``dataset_files``) and one split by preset
(``split_presets``) for every task and for `zoo evaluate`."""

import numpy as np
import pytest

from training.data.dataset import dataset_files, split_presets
from zoo.errors import DatasetError


def test_a_file_or_a_folder_of_shards(tmp_path):
    for name in ("b.h5", "a.hdf5", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert dataset_files(tmp_path) == [tmp_path / "a.hdf5", tmp_path / "b.h5"]
    assert dataset_files(tmp_path / "b.h5") == [tmp_path / "b.h5"]
    with pytest.raises(FileNotFoundError, match="does not exist; create one with `zoo data generate --out"):
        dataset_files(tmp_path / "missing.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .h5 or .hdf5 files"):
        dataset_files(tmp_path / "empty")


def test_every_row_of_a_preset_falls_on_one_side():
    hashes = np.repeat(np.array([f"{i:04x}" for i in range(20)]), 3)  # 20 presets, 3 notes each
    train, val = split_presets(hashes, val_fraction=0.1, seed=3)
    assert sorted(train + val) == list(range(60))
    assert not set(hashes[train]) & set(hashes[val])
    assert len(set(hashes[val])) == 2  # 10 % of 20 presets
    assert split_presets(hashes[::-1].copy(), 0.1, 3)[1] != val  # rows moved...
    assert set(hashes[::-1][split_presets(hashes[::-1].copy(), 0.1, 3)[1]]) == set(hashes[val])  # ...same presets


def test_a_minimum_of_validation_presets_leaves_one_for_training():
    hashes = np.array(["a", "b", "c", "d"])
    assert len(split_presets(hashes, 0.1, 0)[1]) == 1
    assert len(split_presets(hashes, 0.1, 0, min_val_presets=2)[1]) == 2
    assert split_presets(hashes, 0.0, 0, min_val_presets=2)[1] == []  # no validation asked for
    assert len(split_presets(hashes[:2], 0.1, 0, min_val_presets=2)[0]) == 1
    with pytest.raises(DatasetError, match="val_fraction"):
        split_presets(hashes, 1.0)
