"""The study of human-made presets and the packaged prior estimated from it."""

import json

import numpy as np
import pytest

from zoo.errors import PresetError
from zoo.vital.preset import preset_from_vector
from zoo.vital.preset_sets import CALIBRATION_LIST, human_preset_list, preset_paths
from zoo.vital.prior_study import PresetStudy, estimate_prior, prior_json, summary_markdown
from zoo.vital.sampler import PresetSampler, human_prior


def _write_presets(folder, n, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    sampler = PresetSampler(seed=seed)
    paths = []
    for i in range(n):
        path = folder / f"p{i}.vital"
        path.write_text(json.dumps(preset_from_vector(*sampler.sample(i))))
        paths.append(path)
    return paths


def test_preset_lists_are_read_relative_to_their_folder(tmp_path):
    _write_presets(tmp_path / "set", 3)
    listing = tmp_path / "list.txt"
    listing.write_text("# two of them\nset/p2.vital\n\nset/p0.vital\n")
    assert [p.name for p in preset_paths(listing)] == ["p2.vital", "p0.vital"]
    assert [p.name for p in preset_paths(tmp_path / "set")] == ["p0.vital", "p1.vital", "p2.vital"]
    listing.write_text("set/missing.vital\n")
    with pytest.raises(PresetError, match="do not exist"):
        preset_paths(listing)
    with pytest.raises(PresetError, match="no such preset folder"):
        preset_paths(tmp_path / "nowhere")


def test_prior_keeps_marginals_atoms_and_drops_rare_modules(tmp_path):
    study = PresetStudy.from_files(_write_presets(tmp_path, 8))
    names = study.spec.continuous_names
    study.continuous[:, names.index("env_1_sustain")] = [1.0] * 6 + [0.2, 0.4]  # a default most leave alone
    prior = estimate_prior(study, "test")
    sustain = prior["continuous"]["env_1_sustain"]
    assert sustain["atoms"] == [[1.0, 0.75]] and sustain["quantiles"][0] == pytest.approx(0.2)
    heard = study.heard("phaser_on").sum()
    assert (prior["continuous"]["phaser_dry_wet"] is None) == (heard < 5)
    assert prior["continuous"]["osc_1_wave_frame"] is None  # people's wavetables are not Tier 1's
    assert 0 < prior["switches"]["reverb_on"] < 1
    assert json.loads(prior_json(prior)) == prior
    text = summary_markdown(study, "test")
    assert "`reverb_on`" in text and "| `filter_1_cutoff` |" in text


def test_packaged_prior_is_the_study_of_the_calibration_presets():
    listing = human_preset_list(CALIBRATION_LIST)
    if listing is None:
        pytest.skip("the shared human-made presets are not next to this checkout")
    study = PresetStudy.from_files(preset_paths(listing))
    expected = estimate_prior(study, human_prior()["source"])
    assert json.loads(prior_json(expected)) == human_prior(), "regenerate: see zoo/vital/prior_study.py"
    assert np.isclose(sum(p for _, p in expected["continuous"]["env_1_release"]["atoms"]), 0.59, atol=0.05)
