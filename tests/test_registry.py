import pytest
import torch

import zoo
from zoo.errors import DuplicateModelError, UnknownModelError
from zoo.registry import TensorSpec, register_model


def test_vital_resnet18_is_registered():
    assert "vital-resnet18" in zoo.list_models()
    assert zoo.list_models("vital-*") == ["vital-resnet18"]
    assert zoo.list_models("no-match-*") == []


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="did you mean vital-resnet18"):
        zoo.create_model("vital-resnet19")
    with pytest.raises(UnknownModelError, match="unknown model 'zzz'"):
        zoo.model_card("zzz")


def test_duplicate_name_is_rejected():
    with pytest.raises(DuplicateModelError, match="already registered"):
        register_model("vital-resnet18", family="x", task="x", inputs=(TensorSpec("x", (1,)),))(lambda: None)


def test_none_overrides_keep_model_defaults():
    model = zoo.create_model("vital-resnet18", n_continuous=None, categorical_options=None)
    default = zoo.create_model("vital-resnet18")
    assert model.n_continuous == default.n_continuous
    assert model.categorical_options == default.categorical_options


def test_overrides_reach_the_model():
    model = zoo.create_model("vital-resnet18", n_continuous=7, categorical_options=(3, 4))
    out = model(torch.randn(2, 1, 128, 173))
    assert [tuple(t.shape) for t in out] == [(2, 7), (2, 3), (2, 4)]


def test_model_card_describes_shapes_and_counts():
    card = zoo.model_card("vital-resnet18")
    assert card.family == "vital_resnet"
    assert card.inputs[0].shape == (1, 128, 173)
    assert card.outputs[0].name == "continuous"
    assert card.outputs[0].shape == (68,)  # the Vital Tier-1 spec
    assert len(card.outputs) == 1 + 24
    assert 11_000_000 < card.n_params < 12_500_000
    assert card.n_trainable == card.n_params  # everything trains by default
    assert zoo.model_card("vital-resnet18", freeze_early=True).n_trainable < card.n_params
    assert sum(card.params_by_module.values()) == card.n_params
    assert card.exportable
