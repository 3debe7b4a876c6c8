import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.vital import VitalParamSpec, tier1_spec
from zoo.vital.spec import CategoricalParam, ContinuousParam
from zoo.vital.spec_doc import spec_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_tier1_counts_and_shapes():
    spec = tier1_spec()
    assert spec.n_continuous == len(spec.continuous_names) == 68
    assert len(spec.categorical) == len(spec.categorical_names) == 24
    assert len(spec.categorical_n_options) == 24 and min(spec.categorical_n_options) >= 2
    assert spec.groups[:7] == ["osc_1", "osc_2", "osc_3", "filter_1", "filter_2", "env_1", "env_2"]
    assert len(spec.continuous_group_ids()) == spec.n_continuous
    assert max(spec.continuous_group_ids()) < len(spec.groups)


def test_gates_point_at_on_off_switches():
    spec = tier1_spec()
    gates = spec.continuous_gate_ids()
    assert len(gates) == spec.n_continuous
    for p, g in zip(spec.continuous, gates, strict=True):
        if p.gate is None:
            assert g == -1
        else:
            assert spec.categorical[g].name == p.gate
            assert spec.categorical[g].options == ("Off", "On")
    assert gates[spec.continuous_names.index("osc_2_level")] == spec.categorical_names.index("osc_2_on")
    assert gates[spec.continuous_names.index("env_1_attack")] == -1


def test_spec_survives_json():
    spec = tier1_spec()
    again = VitalParamSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    with pytest.raises(ValueError, match="not a parameter spec"):
        VitalParamSpec.from_dict({"continuous": []})


def test_normalize_denormalize():
    spec = tier1_spec()
    rng = np.random.default_rng(0)
    x = spec.quantize(rng.random((5, spec.n_continuous)))
    np.testing.assert_allclose(spec.normalize(spec.denormalize(x)), x, atol=1e-6)
    raw = spec.denormalize(np.full(spec.n_continuous, 7.0))  # clipped to the maxima
    np.testing.assert_allclose(raw, spec.maxs)
    transpose = spec.continuous_names.index("osc_1_transpose")
    assert spec.denormalize(np.full(spec.n_continuous, 0.3))[transpose] == round(-48 + 0.3 * 96)
    with pytest.raises(ValueError, match="68 values"):
        spec.normalize(np.zeros(3))


def test_bad_specs_are_rejected():
    on = CategoricalParam("a_on", "a", ("Off", "On"))
    with pytest.raises(ValueError, match="not an on/off switch"):
        VitalParamSpec((ContinuousParam("x", "a", 0, 1, gate="b_on"),), (on,))
    with pytest.raises(ValueError, match="twice"):
        VitalParamSpec((ContinuousParam("x", "a", 0, 1), ContinuousParam("x", "a", 0, 1)), (on,))
    with pytest.raises(ValueError, match="max"):
        ContinuousParam("x", "a", 1, 1)


def test_ranges_match_the_live_engine():
    vita = pytest.importorskip("vita")
    synth = vita.Synth()
    spec = tier1_spec()
    for p in spec.continuous:
        d = synth.get_control_details(p.name)
        assert (p.min, p.max) == pytest.approx((d.min, d.max), abs=1e-6), p.name
        assert p.scale == str(d.scale).split(".")[-1].lower(), p.name
        assert not d.is_discrete or p.scale == "indexed", p.name
    for p in spec.categorical:
        d = synth.get_control_details(p.name)
        assert d.is_discrete and d.min == 0 and d.max >= len(p.options) - 1, p.name
        assert p.options == tuple(d.options), p.name
    controls = synth.get_controls()
    for name in spec.fixed:
        assert name in controls


def test_spec_imports_without_the_engine():
    code = "import sys; import zoo.vital.spec, zoo.vital.tier1, zoo.vital.preset; assert 'vita' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_docs_table_matches_the_spec():
    doc = (ROOT / "docs" / "vital_tier1.md").read_text(encoding="utf-8")
    assert doc == spec_markdown(), "regenerate with: python -m zoo.vital.spec_doc docs/vital_tier1.md"
