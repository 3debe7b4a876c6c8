import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_vital_h5(tmp_path_factory):
    """A small real Vital dataset (rendered with vita, mels precomputed), shared by the whole session."""
    from training.data.generate import generate_dataset
    from training.data.precompute import precompute_mels

    path = tmp_path_factory.mktemp("tiny-vital") / "vital.h5"
    generate_dataset(path, 12, workers=1, seed=7, notes=(48, 60), progress=False)
    precompute_mels(path, progress=False)
    return path
