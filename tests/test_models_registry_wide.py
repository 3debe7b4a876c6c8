"""Checks every registered model gets for free: forward, backward, TorchScript, ONNX."""

import pytest
import torch

import zoo
from training.export import check_onnx, export_onnx, export_torchscript
from zoo.runtime import run_onnx

MODELS = zoo.list_models()


def _outputs(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


@pytest.fixture(scope="module", params=MODELS)
def built(request):
    name = request.param
    card = zoo.model_card(name)
    torch.manual_seed(0)
    model = zoo.create_model(name)
    return name, card, model


def test_forward_shapes(built):
    _, card, model = built
    model.eval()
    with torch.no_grad():
        out = _outputs(model(*card.example_inputs(batch_size=3)))
    assert [tuple(t.shape) for t in out] == [(3, *s.shape) for s in card.outputs]
    assert all(torch.isfinite(t).all() for t in out)


def test_backward_reaches_every_trainable_parameter(built):
    _, card, model = built
    model.train()
    out = _outputs(model(*card.example_inputs(batch_size=4)))
    sum(t.float().pow(2).mean() for t in out).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, f"no gradient reaches: {missing}"
    model.zero_grad(set_to_none=True)


def test_torchscript_equals_eager(built):
    _, card, model = built
    model.eval()
    inputs = card.example_inputs(batch_size=2)
    scripted = export_torchscript(model, inputs)
    with torch.no_grad():
        expected, got = _outputs(model(*inputs)), _outputs(scripted(*inputs))
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_onnx_export_checks_and_matches_eager_at_two_batch_sizes(built, tmp_path):
    name, card, model = built
    if not card.exportable:
        pytest.skip(f"{name} is not exportable")
    model.eval()
    in_names = [s.name for s in card.inputs]
    out_names = [s.name for s in card.outputs]
    path = export_onnx(model, card.example_inputs(batch_size=2), tmp_path / "m.onnx", in_names, out_names)
    check_onnx(path)
    for batch in (1, 5):  # neither is the export batch: the batch axis must be dynamic
        inputs = card.example_inputs(batch_size=batch, seed=batch)
        with torch.no_grad():
            expected = _outputs(model(*inputs))
        got = run_onnx(path, dict(zip(in_names, inputs, strict=True)))
        for e, g in zip(expected, got, strict=True):
            torch.testing.assert_close(torch.from_numpy(g), e, rtol=1e-3, atol=1e-4)
