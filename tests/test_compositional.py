"""The compositional agent: per-module sizes, the gradient highway of every branch, and its training task on
a tiny HDF5 file in the Vital dataset's layout."""

from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import zoo
from training.tasks import task_for_family
from zoo.models.compositional import COMPONENTS, CompositionalAgent

SMALL = {"component_dim": 16, "branch_hidden": 16, "model_dim": 32, "selector_hidden": 16, "n_stages": 2}
N_FRAMES = 24


def _branches(model: CompositionalAgent) -> dict[str, torch.nn.Module]:
    out = {}
    for side, extractor in (("in", model.input_extractor), ("tgt", model.target_extractor)):
        for part in ("rhythm", "harmony", "timbre"):
            out[f"{side}_{part}"] = getattr(extractor, part)
    return out


def test_default_size_is_about_14_5_million_parameters():
    card = zoo.model_card("compositional-agent")
    assert 14.0e6 < card.n_params < 15.0e6
    assert set(card.params_by_module) >= {"input_extractor", "target_extractor", "selector", "composer", "cascade"}
    assert [s.shape for s in card.outputs] == [(128, 173), ()]


@pytest.mark.parametrize("ignored", range(len(COMPONENTS)))
def test_every_branch_gets_gradient_when_the_selector_ignores_it(ignored):
    torch.manual_seed(0)
    model = CompositionalAgent(encoding_dim=8, **SMALL)
    with torch.no_grad():
        model.selector.mlp[-1].bias[ignored] = -40.0  # softmax weight ~1e-17 on one component
    x, y = torch.randn(2, 8, N_FRAMES), torch.randn(2, 8, N_FRAMES)
    out, _, weights = model(x, y, return_weights=True)
    assert weights[:, ignored].max() < 1e-12
    out.pow(2).mean().backward()  # the composed output alone, without the factorization loss
    for name, branch in _branches(model).items():
        grads = [p.grad for p in branch.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), f"no gradient reaches {name}"


def _write_vital_like(path, n_presets=8, notes=(48, 60, 72), n_mels=8, n_frames=N_FRAMES, seed=0):
    rng = np.random.default_rng(seed)
    hashes, note_list = [], []
    for p in range(n_presets):
        for n in notes:
            hashes.append(f"{p:032x}".encode())
            note_list.append(n)
    with h5py.File(path, "w") as f:
        f["features/mel_spectrogram"] = rng.random((len(hashes), 1, n_mels, n_frames), dtype=np.float32) * 5
        f["metadata/preset_hash"] = np.array(hashes, dtype="S32")
        f["metadata/note"] = np.array(note_list, dtype=np.int64)
    return path


def _task(data, seed=0):
    return task_for_family("compositional")(SimpleNamespace(data=data, seed=seed, lr=1e-3, batch_size=4))


def test_task_builds_triplets_that_compose_note_and_preset(tmp_path):
    path = _write_vital_like(tmp_path / "vital.h5")
    task = _task(path)
    train, val = task.datasets()
    with h5py.File(path) as f:
        hashes, notes = f["metadata/preset_hash"][:], f["metadata/note"][:]
    train_presets = {hashes[t[2]] for t in train.triplets}
    assert train_presets.isdisjoint({hashes[t[2]] for t in val.triplets})
    for x, y, target in train.triplets + val.triplets:
        assert notes[x] == notes[target] != notes[y]  # the input gives the note
        assert hashes[y] == hashes[target] != hashes[x]  # the target gives the sound
    assert len(train) == 6 * 3 * 2 and len(val) == 2 * 3 * 2  # presets x ordered pairs of 3 notes
    assert task.model_overrides() == {"encoding_dim": 8}
    # The Vital dataset's split by preset (at least two validation presets: a triplet needs two at one note).
    from training.data.dataset import split_presets

    _, val_rows = split_presets(hashes, 0.1, seed=0, min_val_presets=2)
    assert {hashes[t[2]] for t in val.triplets} == set(hashes[val_rows])
    assert task.front_end() is None  # this file stores no front-end config


def test_checkpoint_front_end_is_the_datasets(tmp_path):
    import json

    from zoo.audio import FrontEndConfig

    path = _write_vital_like(tmp_path / "vital.h5")
    with h5py.File(path, "a") as f:
        f.attrs["front_end"] = json.dumps(FrontEndConfig(n_mels=8).to_dict())
    task = _task(path)
    task.datasets()
    assert task.front_end() == FrontEndConfig(n_mels=8).to_dict()


def test_task_loss_is_finite_logs_weights_and_reaches_parameters(tmp_path):
    task = _task(_write_vital_like(tmp_path / "vital.h5"))
    train, val = task.datasets()
    batch = next(iter(DataLoader(train, batch_size=4, shuffle=True)))
    assert {k: tuple(v.shape) for k, v in batch.items()} == {k: (4, 8, N_FRAMES) for k in ("x", "y", "target")}
    model = zoo.create_model("compositional-agent", **task.model_overrides(), **SMALL)
    loss, logs = task.loss(model, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert abs(sum(float(logs[f"w_{c}"]) for c in COMPONENTS) - 1.0) < 1e-5
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing
    metrics = task.validate(model, DataLoader(val, batch_size=4), torch.device("cpu"))
    assert {"val_loss", "val_mse", "val_copy_target_mse"} | {f"val_w_{c}" for c in COMPONENTS} <= set(metrics)


def test_task_reads_a_folder_of_shards(tmp_path):
    _write_vital_like(tmp_path / "a.h5", n_presets=4, seed=1)
    _write_vital_like(tmp_path / "b.h5", n_presets=4, seed=2)  # same hashes: one preset spans both shards
    train, val = _task(tmp_path).datasets()
    assert len(train) + len(val) == 4 * 3 * 2


def test_task_without_usable_pairs_says_why(tmp_path):
    one_note = _write_vital_like(tmp_path / "one.h5", notes=(60,))
    with pytest.raises(ValueError, match="rendered at two or more notes"):
        _task(one_note).datasets()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _task(tmp_path / "missing.h5").datasets()
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="lacks features/mel_spectrogram"):
        _task(tmp_path / "bad.h5").datasets()
