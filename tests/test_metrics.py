"""Parameter metrics (training.metrics), the one implementation behind validation and `zoo evaluate`."""

import pytest
import torch

from training.metrics import ParameterMetrics
from zoo.vital import tier1_spec


def _batch(spec, n=4, switches_on=True):
    g = torch.Generator().manual_seed(0)
    cont = torch.rand(n, spec.n_continuous, generator=g)
    cat = torch.zeros(n, spec.n_categorical, dtype=torch.long)
    for i, p in enumerate(spec.categorical):
        if p.name.endswith("_on"):
            cat[:, i] = int(switches_on)
    return cont, cat


def _logits_for(spec, cat, wrong: set[int]):
    """One-hot logits that pick the target option, or another option for the parameters in ``wrong``."""
    out = []
    for i, n_opt in enumerate(spec.categorical_n_options):
        picked = (cat[:, i] + (1 if i in wrong else 0)) % n_opt
        out.append(torch.nn.functional.one_hot(picked, n_opt).float())
    return out


def test_group_mse_and_accuracy_by_hand():
    spec = tier1_spec()
    cont, cat = _batch(spec)
    osc_1 = [i for i, p in enumerate(spec.continuous) if p.group == "osc_1"]
    pred = cont.clone()
    pred[:, osc_1] += 0.1  # every osc_1 parameter off by 0.1, everything else exact
    scores = ParameterMetrics(spec)
    scores.update(pred[:2], [lg[:2] for lg in _logits_for(spec, cat, {0})], cont[:2], cat[:2])  # two batches
    scores.update(pred[2:], [lg[2:] for lg in _logits_for(spec, cat, {0})], cont[2:], cat[2:])
    mse = scores.group_mse()
    assert mse["osc_1"] == pytest.approx(0.01, rel=1e-4)
    assert all(v == pytest.approx(0.0, abs=1e-12) for g, v in mse.items() if g != "osc_1")
    assert scores.continuous_mse() == pytest.approx(0.01 * len(osc_1) / spec.n_continuous, rel=1e-4)
    accuracy = scores.categorical_accuracy()
    assert accuracy[spec.categorical_names[0]] == 0.0 and accuracy[spec.categorical_names[1]] == 1.0
    assert scores.mean_categorical_accuracy() == pytest.approx(1 - 1 / spec.n_categorical)
    assert scores.n == 4


def test_parameters_of_switched_off_modules_are_not_scored():
    spec = tier1_spec()
    cont, cat = _batch(spec, switches_on=False)
    scores = ParameterMetrics(spec)
    scores.update(cont + 0.5, _logits_for(spec, cat, set()), cont, cat)
    gated = {p.group for p in spec.continuous if p.gate is not None}
    assert gated and not gated & set(scores.group_mse())  # every gated group is off: nothing scored there
