import pickle

import pytest
import torch

import zoo
from training.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from zoo.errors import WeightsMismatchError


def test_round_trip_rebuilds_the_same_model(tmp_path):
    model = zoo.create_model("vital-resnet18", n_continuous=5, categorical_options=[3])
    path = save_checkpoint(
        tmp_path / "c.pt",
        {
            "model_name": "vital-resnet18",
            "model_config": {"n_continuous": 5, "categorical_options": [3]},
            "model": model.state_dict(),
            "epoch": 2,
        },
    )
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # nothing left behind by the atomic write
    rebuilt, ckpt = model_from_checkpoint(path)
    assert ckpt["epoch"] == 2
    x = torch.randn(2, 1, 128, 173)
    for a, b in zip(model.eval()(x), rebuilt(x), strict=True):
        torch.testing.assert_close(a, b)


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_untrusted_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "zoo-checkpoint/1", "payload": _Evil()}, f)
    with pytest.raises(CheckpointError, match="is not a safe checkpoint") as refused:
        load_checkpoint(path)
    assert "will not be loaded" in str(refused.value) and "weights_only" not in str(refused.value)
    assert "\n" not in str(refused.value)


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "x.pt")
    torch.save({"a": 1}, tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="not a zoo checkpoint"):
        load_checkpoint(tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_partial_load_into_a_changed_architecture_reports_what_fit():
    from training.checkpoint import load_partial

    src = zoo.create_model("vital-resnet18", n_continuous=10, categorical_options=[3, 4])
    dst = zoo.create_model("vital-resnet18", n_continuous=12, categorical_options=[3, 4, 5])
    report = load_partial(dst, src.state_dict())
    assert "continuous_head.4.weight: checkpoint (10, 512) vs model (12, 512)" in report.shape_mismatch
    assert "categorical_heads.2.weight" in report.missing
    assert torch.equal(dst.layer4[1].conv2.weight, src.layer4[1].conv2.weight)
    assert 0.9 < report.preserved_fraction < 1.0
    assert "loaded" in report.summary()


def test_partial_load_remaps_keys():
    from training.checkpoint import load_partial

    src = zoo.create_model("vital-resnet18")
    state = {k.replace("layer4.", "stage4."): v for k, v in src.state_dict().items()}
    dst = zoo.create_model("vital-resnet18")
    report = load_partial(dst, state, key_map={"stage4.": "layer4."})
    assert not report.unexpected and not report.shape_mismatch
    assert report.preserved_fraction == 1.0
    assert torch.equal(dst.layer4[0].conv1.weight, src.layer4[0].conv1.weight)


SMALL = {"n_continuous": 5, "categorical_options": [3]}


def _save(path, net, **changes):
    state = {"model_name": "vital-resnet18", "model_config": SMALL}
    return save_checkpoint(path, {**state, "model": net.state_dict(), **changes})


def test_a_missing_weight_never_passes_silently(tmp_path):
    """Every load of weights is strict: a checkpoint or weights file short of one tensor is refused, naming it."""
    model = zoo.create_model("vital-resnet18", n_continuous=5, categorical_options=[3])
    state = model.state_dict()
    del state["layer4.1.conv2.weight"]
    path = _save(tmp_path / "short.pt", model, model=state)
    with pytest.raises(CheckpointError, match=r"1 missing \(layer4\.1\.conv2\.weight\)"):
        model_from_checkpoint(path)
    torch.save(state, tmp_path / "weights.pt")
    with pytest.raises(WeightsMismatchError, match="layer4.1.conv2.weight"):
        zoo.create_model(
            "vital-resnet18",
            pretrained=True,
            weights_path=tmp_path / "weights.pt",
            n_continuous=5,
            categorical_options=[3],
        )
    torch.save(model.state_dict(), tmp_path / "full.pt")
    loaded = zoo.create_model("vital-resnet18", pretrained=True, weights_path=tmp_path / "full.pt", **SMALL)
    assert torch.equal(loaded.layer4[1].conv2.weight, model.layer4[1].conv2.weight)


def test_a_bad_model_config_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from zoo.cli import app

    model = zoo.create_model("vital-resnet18", n_continuous=5, categorical_options=[3])
    path = _save(tmp_path / "bad.pt", model, model_config={"n_continuous": 5, "no_such_option": 1})
    with pytest.raises(CheckpointError, match="model_config does not build vital-resnet18"):
        model_from_checkpoint(path)
    result = CliRunner().invoke(app, ["export", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "model_config does not build vital-resnet18" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2  # one message (wrapped at most once)
    path = _save(tmp_path / "worse.pt", model, model_config=["n_continuous", 5])
    with pytest.raises(CheckpointError, match="malformed model_name or model_config"):
        model_from_checkpoint(path)
