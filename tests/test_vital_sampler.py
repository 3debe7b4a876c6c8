import numpy as np
import pytest

from zoo.vital import tier1_spec
from zoo.vital.sampler import PRIORS, PresetSampler, PriorMix


def test_sampler_is_deterministic_and_in_range():
    spec = tier1_spec()
    a, b = PresetSampler(spec, seed=1), PresetSampler(spec, seed=1)
    for i in range(5):
        (ca, ka), (cb, kb) = a.sample(i), b.sample(i)
        np.testing.assert_array_equal(ca, cb)
        np.testing.assert_array_equal(ka, kb)
    assert not np.array_equal(a.sample(0)[0], PresetSampler(spec, seed=2).sample(0)[0])
    assert not np.array_equal(a.sample(0)[0], a.sample(0, attempt=1)[0])
    first = next(iter(a))
    np.testing.assert_array_equal(first[0], a.sample(0)[0])


def test_sampler_draws_useful_presets():
    spec = tier1_spec()
    sampler = PresetSampler(spec, seed=0)
    draws = [sampler.sample(i) for i in range(300)]
    cont = np.stack([c for c, _ in draws])
    cat = np.stack([k for _, k in draws])
    assert cont.dtype == np.float32 and cat.dtype == np.int64
    assert cont.min() >= 0 and cont.max() <= 1
    assert (cat < np.array(spec.categorical_n_options)).all() and (cat >= 0).all()
    oscs = [spec.categorical_names.index(f"osc_{i}_on") for i in (1, 2, 3)]
    assert cat[:, oscs].any(axis=1).all()  # always at least one oscillator
    level = spec.continuous_names.index("osc_1_level")
    assert cont[:, level].min() >= 0.5  # levels in the upper half
    reverb = cat[:, spec.categorical_names.index("reverb_on")].mean()
    assert 0.15 < reverb < 0.45  # effects on with a sensible probability, not always
    cutoff = spec.continuous_names.index("filter_1_cutoff")
    assert cont[:, cutoff].std() > 0.1  # varied, not a constant
    np.testing.assert_array_equal(spec.quantize(cont), cont)  # whole-valued controls already whole


def _switch_rate(sampler, name, n=600):
    i = sampler.spec.categorical_names.index(name)
    return np.mean([sampler.sample(k)[1][i] for k in range(n)])


def test_broad_prior_draws_the_presets_of_the_original_sampler():
    # The default mix of a dataset made before the human prior existed: the same vectors, bit for bit.
    spec = tier1_spec()
    a, b = PresetSampler(spec, seed=4), PresetSampler(spec, seed=4, prior=PriorMix(1.0, 0.0, 0.0))
    for i in range(10):
        np.testing.assert_array_equal(a.sample(i)[0], b.sample(i)[0])
    assert {a.component(i) for i in range(50)} == {"broad"}


def test_human_prior_turns_modules_on_as_people_do():
    human = PresetSampler(seed=0, prior="human")
    # The calibration presets: reverb on in about 78 %, phaser in 3 %; the broad prior has 30 % and 15 %.
    assert 0.68 < _switch_rate(human, "reverb_on") < 0.86
    assert _switch_rate(human, "phaser_on") < 0.1
    broad = PresetSampler(seed=0, prior="broad")
    assert _switch_rate(broad, "reverb_on") < 0.4


def test_simple_patches_have_one_plain_oscillator_and_few_effects():
    spec = tier1_spec()
    simple = PresetSampler(spec, seed=0, prior="simple")
    names = spec.categorical_names
    for k in range(100):
        cont, cat = simple.sample(k)
        on = {n for n, v in zip(names, cat, strict=True) if n.endswith("_on") and v == 1}
        assert "osc_1_on" in on and not on & {"osc_2_on", "osc_3_on", "filter_2_on", "distortion_on", "phaser_on"}
        assert len(on - {"osc_1_on", "filter_1_on"}) <= 3
        assert cat[names.index("osc_1_spectral_morph_type")] == 0 and cat[names.index("osc_1_distortion_type")] == 0
        assert cont[spec.continuous_names.index("osc_1_level")] >= 0.5


def test_mixture_draws_each_component_in_its_share_deterministically():
    sampler = PresetSampler(seed=2, prior="0.5,0.3,0.2")
    components = [sampler.component(i) for i in range(2000)]
    shares = {c: components.count(c) / len(components) for c in ("broad", "human", "simple")}
    assert abs(shares["broad"] - 0.5) < 0.04 and abs(shares["human"] - 0.3) < 0.04
    again = PresetSampler(seed=2, prior=PriorMix(0.5, 0.3, 0.2))
    for i in range(20):
        np.testing.assert_array_equal(sampler.sample(i, 1)[1], again.sample(i, 1)[1])
        np.testing.assert_array_equal(sampler.sample(i, 1)[0], again.sample(i, 1)[0])


def test_prior_names_and_weights_are_checked():
    assert PriorMix.parse("mixture") == PRIORS["mixture"]
    assert PriorMix.parse("1,0,0") == PriorMix(1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="broad,human,simple"):
        PriorMix.parse("people")
    with pytest.raises(ValueError, match="non-negative"):
        PriorMix(-1.0, 1.0, 0.0)
