import numpy as np

from zoo.vital import tier1_spec
from zoo.vital.sampler import PresetSampler


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
