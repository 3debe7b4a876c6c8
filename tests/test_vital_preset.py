import json

import numpy as np
import pytest

from zoo.errors import PresetError
from zoo.vital import tier1_spec
from zoo.vital.preset import (
    init_preset,
    load_preset_file,
    load_preset_json,
    preset_from_vector,
    vector_from_preset,
)
from zoo.vital.sampler import PresetSampler


def _random_vector(seed: int):
    spec = tier1_spec()
    rng = np.random.default_rng(seed)
    cont = rng.random(spec.n_continuous).astype(np.float32)
    cat = np.array([rng.integers(n) for n in spec.categorical_n_options], dtype=np.int64)
    return cont, cat


def test_written_preset_is_complete_and_clamped():
    spec = tier1_spec()
    cont, cat = _random_vector(0)
    cont[0], cont[1] = 3.0, -2.0  # outside [0, 1]: clamped to the control's range
    doc = preset_from_vector(cont, cat, name="test")
    init = init_preset()
    assert set(doc) == set(init) and set(doc["settings"]) == set(init["settings"])
    assert doc["preset_name"] == "test"
    s = doc["settings"]
    assert s[spec.continuous[0].name] == spec.continuous[0].max
    assert s[spec.continuous[1].name] == spec.continuous[1].min
    assert s["modulations"][0] == {"source": "env_2", "destination": "filter_1_cutoff"}
    assert s["delay_sync"] == 0.0
    assert all(spec.continuous[i].min <= s[p] <= spec.continuous[i].max for i, p in enumerate(spec.continuous_names))
    json.dumps(doc)  # plain JSON


def test_bad_vectors_are_rejected():
    spec = tier1_spec()
    cont, cat = _random_vector(1)
    with pytest.raises(ValueError, match="68 values"):
        preset_from_vector(cont[:10], cat)
    with pytest.raises(ValueError, match="NaN"):
        preset_from_vector(np.full(spec.n_continuous, np.nan), cat)
    bad = cat.copy()
    bad[spec.categorical_names.index("filter_1_model")] = 8
    with pytest.raises(ValueError, match="filter_1_model"):
        preset_from_vector(cont, bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_through_vita(seed):
    vita = pytest.importorskip("vita")
    spec = tier1_spec()
    cont, cat = _random_vector(seed) if seed else PresetSampler(spec, seed=5).sample(0)
    synth = vita.Synth()
    assert synth.load_json(json.dumps(preset_from_vector(cont, cat)))
    back_cont, back_cat = vector_from_preset(json.loads(synth.to_json()))
    assert back_cont.dtype == np.float32 and back_cat.dtype == np.int64
    np.testing.assert_allclose(back_cont, spec.quantize(cont), atol=1e-5)
    np.testing.assert_array_equal(back_cat, cat)


def test_projection_of_a_human_made_preset(tmp_path):
    spec = tier1_spec()
    doc = init_preset()
    s = doc["settings"]
    # Modulations in other slots, ours in slot 5; a custom wavetable; a value outside its range; a missing control.
    s["modulations"][0] = {"source": "lfo_1", "destination": "osc_1_level"}
    s["modulations"][4] = {"source": "env_2", "destination": "filter_1_cutoff"}
    s["modulation_1_amount"] = 0.9
    s["modulation_5_amount"] = 0.5
    s["wavetables"][0]["name"] = "Some custom table"
    s["filter_1_cutoff"] = 500.0
    del s["osc_2_level"]
    path = tmp_path / "human.vital"
    path.write_text(json.dumps(doc))
    cont, cat = vector_from_preset(path)
    names = spec.continuous_names
    assert cont[names.index("modulation_1_amount")] == pytest.approx(0.75)  # (0.5 + 1) / 2, from slot 5
    assert cont[names.index("filter_1_cutoff")] == 1.0
    assert cont[names.index("osc_2_level")] == pytest.approx(0.70710677)  # init value
    assert cat[spec.categorical_names.index("osc_1_on")] == 1
    assert vector_from_preset(init_preset())[0][names.index("modulation_1_amount")] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01 not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"preset_name": "x"}', "no 'settings' object"),
        (b'{"settings": {"foo": 1}}', "no Vital control"),
        (b'{"settings": {"osc_1_level": "loud"}}', "osc_1_level"),
    ],
)
def test_invalid_presets_raise_preset_error(tmp_path, content, message):
    with pytest.raises(PresetError, match=message):
        load_preset_json(content)
    path = tmp_path / "bad.vital"
    path.write_bytes(content)
    with pytest.raises(PresetError, match=message):
        vector_from_preset(path)


def test_missing_preset_file(tmp_path):
    with pytest.raises(PresetError, match="no such preset file"):
        load_preset_file(tmp_path / "nope.vital")
    assert isinstance(PresetError("x"), ValueError)
