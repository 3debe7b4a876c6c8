from types import SimpleNamespace

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    """A test marked ``gpu`` needs a CUDA device: skipped where there is none, run where there is."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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


@pytest.fixture(scope="session")
def untrained_artifact(tmp_path_factory):
    """An untrained vital-resnet18 (seed 0) checkpoint with the Tier-1 spec, exported once per test session
    by `zoo export` with ONNX and TorchScript. Shared by the export and server tests: ``.path`` (the bundle
    folder), ``.card``, ``.checkpoint`` (the checkpoint file), ``.output`` (what the command printed)."""
    import json

    from typer.testing import CliRunner

    from training.checkpoint import save_checkpoint
    from zoo.audio import FrontEndConfig
    from zoo.cli import app
    from zoo.registry import create_model
    from zoo.vital import tier1_spec

    spec = tier1_spec()
    # Heads sized by the spec, as `zoo train` does.
    config = {"n_continuous": len(spec.continuous), "categorical_options": list(spec.categorical_n_options)}
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    model = create_model("vital-resnet18", **config)
    ckpt = save_checkpoint(
        root / "runs" / "vital-resnet18" / "untrained" / "best.pt",
        {
            "model_name": "vital-resnet18",
            "model_config": config,
            "model": model.state_dict(),
            "spec": spec.to_dict(),
            "front_end": FrontEndConfig().to_dict(),
            "epoch": 0,
        },
    )
    out = root / "artifacts" / "vital-resnet18" / "untrained"
    result = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(out)])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "card.json").read_text())
    return SimpleNamespace(path=out, card=card, checkpoint=ckpt, output=result.output)
