"""The skip-connection MLPs: the note's parameter counts, what each block computes, and their training task."""

from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader

import zoo
from training.tasks import task_for_family
from zoo.models.skip import SkipMLP


@pytest.mark.parametrize(
    ("name", "overrides", "n_params", "out_dim"),
    [
        ("residual-mlp", {"depth": 1}, 2048, 32),
        ("dense-mlp", {}, 3584, 96),
        ("highway-mlp", {"depth": 1}, 2048, 32),
        ("plain-mlp", {"depth": 1}, 2048, 32),
    ],
)
def test_parameter_counts_reproduce_the_note_at_width_32(name, overrides, n_params, out_dim):
    model = zoo.create_model(name, **overrides)
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert model(torch.randn(3, 32)).shape == (3, out_dim)


def test_depth_and_width_are_overrides():
    model = zoo.create_model("residual-mlp", depth=10, width=64)
    assert len(model.blocks) == 10
    assert model(torch.randn(2, 32)).shape == (2, 64)  # a stem maps in_dim 32 to width 64
    assert zoo.create_model("dense-mlp", depth=6, growth=8).out_dim == 32 + 6 * 8


def test_residual_with_zero_transform_is_the_identity_and_plain_is_not():
    residual = zoo.create_model("residual-mlp", depth=5)
    for block in residual.blocks:
        torch.nn.init.zeros_(block.fc2.weight)
    x = torch.randn(4, 32)
    torch.testing.assert_close(residual(x), x)
    plain = zoo.create_model("plain-mlp", depth=5)
    assert not torch.allclose(plain(x), x, atol=1e-2)


def test_dense_output_starts_with_its_input():
    x = torch.randn(4, 32)
    torch.testing.assert_close(zoo.create_model("dense-mlp")(x)[:, :32], x)


def test_highway_gate_closed_carries_the_input():
    model = SkipMLP(variant="highway", depth=3, bias=True, gate_bias=-30.0)
    x = torch.randn(4, 32)
    torch.testing.assert_close(model(x), x, atol=1e-6, rtol=0)
    assert model.gate_means(x).max() < 1e-6


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="unknown skip-MLP variant 'resnet'"):
        SkipMLP(variant="resnet")
    with pytest.raises(ValueError, match="depth must be at least 1"):
        zoo.create_model("plain-mlp", depth=0)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        zoo.create_model("plain-mlp", act="swish")
    with pytest.raises(ValueError, match="needs the highway variant"):
        zoo.create_model("plain-mlp").gate_means(torch.randn(2, 32))


@pytest.mark.parametrize("name", ["plain-mlp", "residual-mlp", "dense-mlp", "highway-mlp"])
def test_task_batches_loss_and_gradients(name):
    task_cls = task_for_family(zoo.model_card(name).family)
    task = task_cls(SimpleNamespace(seed=3, lr=1e-3, batch_size=16))
    train, val = task.datasets()
    assert len(train) == task.n_train and len(val) == task.n_val
    model = zoo.create_model(name, **task.model_overrides())
    batch = next(iter(DataLoader(train, batch_size=16)))
    assert batch["x"].shape == (16, 32) and batch["y"].shape == (16, 32)
    loss, logs = task.loss(model, batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and "mse" in logs
    loss.backward()
    assert all(p.grad is not None and p.grad.any() for p in model.parameters() if p.requires_grad)
    metrics = task.validate(model, DataLoader(val, batch_size=256), torch.device("cpu"))
    assert metrics["val_loss"] > 0
    assert ("val_gate_mean" in metrics) == (name == "highway-mlp")


def test_task_data_follows_the_seed():
    make = task_for_family("skip_mlp")
    a, _ = make(SimpleNamespace(seed=1)).datasets()
    b, _ = make(SimpleNamespace(seed=1)).datasets()
    c, _ = make(SimpleNamespace(seed=2)).datasets()
    torch.testing.assert_close(a.y, b.y)
    assert not torch.allclose(a.y, c.y)
    assert abs(float(a.y.std()) - 1.0) < 0.05  # standardised targets: the mean predictor scores MSE 1
