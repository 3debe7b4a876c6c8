import pytest
import torch

import zoo
from zoo.errors import WeightsNotFoundError


def test_everything_trains_by_default():
    model = zoo.create_model("vital-resnet18")
    assert all(p.requires_grad for p in model.parameters())


def test_freeze_early_keeps_conv1_to_layer2_fixed():
    model = zoo.create_model("vital-resnet18", freeze_early=True)
    for name, p in model.named_parameters():
        early = name.split(".")[0] in {"conv1", "bn1", "layer1", "layer2"}
        assert p.requires_grad is not early, name


def test_continuous_in_unit_range_and_classifiers_start_uniform():
    model = zoo.create_model("vital-resnet18").eval()
    cont, *logits = model(torch.randn(3, 1, 128, 173) * 5)
    assert cont.min() >= 0 and cont.max() <= 1
    # Zero-initialised classifier biases: the heads' biases are exactly zero.
    for head in model.categorical_heads:
        assert torch.count_nonzero(head.bias) == 0
    assert torch.count_nonzero(model.continuous_head[-2].bias) == 0


def test_mlp_categorical_heads():
    model = zoo.create_model("vital-resnet18", simple_cat_heads=False, categorical_options=(3, 5))
    assert isinstance(model.categorical_heads[0], torch.nn.Sequential)
    assert model.categorical_heads[0][0].out_features == 512
    out = model(torch.randn(1, 1, 128, 173))
    assert [t.shape[-1] for t in out[1:]] == [3, 5]


def test_pretrained_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="local weights file"):
        zoo.create_model("vital-resnet18", pretrained=True)
    with pytest.raises(WeightsNotFoundError):
        zoo.create_model("vital-resnet18", pretrained=True, weights_path=tmp_path / "missing.pt")


def test_pretrained_loads_a_local_weights_file(tmp_path):
    src = zoo.create_model("vital-resnet18")
    torch.save(src.state_dict(), tmp_path / "w.pt")
    model = zoo.create_model("vital-resnet18", pretrained=True, weights_path=tmp_path / "w.pt")
    assert torch.equal(model.layer4[0].conv1.weight, src.layer4[0].conv1.weight)


def test_bad_head_config_rejected():
    with pytest.raises(ValueError, match="at least 2 options"):
        zoo.create_model("vital-resnet18", categorical_options=(1,))
