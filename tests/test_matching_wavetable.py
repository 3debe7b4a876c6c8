"""Wavetable starts in the search: scored beside the network's vector, and the searched document carries
the table (checked with vita)."""

import json
import math

import numpy as np
import pytest

from zoo.matching import Candidate, Score, SearchConfig, run_search
from zoo.matching.candidates import MODEL, MODEL_WAVETABLE, WAVETABLE, init_candidate, propose
from zoo.vital import tier1_spec

vita = pytest.importorskip("vita")

from test_vital_resynthesis import F0, SR, _additive  # noqa: E402

from zoo.notes import find_main_note  # noqa: E402
from zoo.vital.harmonics import harmonics_at  # noqa: E402
from zoo.vital.render import VitalRenderer  # noqa: E402
from zoo.vital.resynthesis import WAVETABLE_NAME, analyse_note  # noqa: E402

SPEC = tier1_spec()


@pytest.fixture(scope="module")
def analysis():
    return analyse_note(_additive(), note_seconds=1.0)


def _network() -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, SPEC.n_continuous), [rng.normal(size=n) for n in SPEC.categorical_n_options]


class PrefersTheTable:
    """A deterministic objective: the analysis's own start is closest, anything else far."""

    renders_per_candidate = 2

    def __call__(self, candidates, deadline=None):
        return [Score(0.1 if c.label == WAVETABLE else 1.0 + float(c.continuous.mean())) for c in candidates]


def test_wavetable_starts_are_scored_beside_the_network(analysis):
    continuous, logits = _network()
    proposals = propose(SPEC, continuous, logits, analysis=analysis)
    labels = [c.label for c in proposals]
    assert labels[:3] == [MODEL, MODEL_WAVETABLE, WAVETABLE] and labels.count("init") == 1
    model, mixed, table = proposals[:3]
    assert model.base is None and mixed.base is table.base is not None
    names = [p.name for p in SPEC.continuous]
    for i, name in enumerate(names):  # oscillator 1 as analysed, everything else as the network said
        expected = table.continuous[i] if name.startswith("osc_1_") else model.continuous[i]
        assert mixed.continuous[i] == pytest.approx(expected), name
    assert mixed.categorical[SPEC.categorical_names.index("osc_1_on")] == 1


def test_a_wavetable_search_result_loads_in_vita_and_plays_the_written_table(analysis):
    continuous, logits = _network()
    proposals = propose(SPEC, continuous, logits, analysis=analysis)
    result = run_search(PrefersTheTable(), proposals, SearchConfig(seconds=None, max_renders=40))
    assert result.start == WAVETABLE and result.best.base is not None
    document = result.document
    synth = vita.Synth()
    assert synth.load_json(json.dumps(document))
    assert json.loads(synth.to_json())["settings"]["wavetables"][0]["name"] == WAVETABLE_NAME
    rendered = VitalRenderer().render(document, analysis.midi)
    heard_note = find_main_note(rendered)
    assert abs(1200 * math.log2(heard_note.frequency_hz / F0)) < 5  # cents: the right pitch, tune included
    centres = heard_note.onset_sample + np.round(analysis.times * SR).astype(int)
    heard, _ = harmonics_at(rendered, analysis.f0_hz, centres)
    for k in (0, len(analysis.times) - 1):  # the first and the last keyframe of the table that was written
        written = analysis.amplitudes[k]
        audible = written > written.max() * 0.01
        ratio = heard[k, audible] / np.sqrt((heard[k] ** 2).sum() / 2) / written[audible]
        assert np.abs(20 * np.log10(ratio)).mean() < 1.0, f"keyframe {k}"


def test_without_an_analysis_no_wavetable_start():
    continuous, logits = _network()
    labels = [c.label for c in propose(SPEC, continuous, logits)]
    assert MODEL_WAVETABLE not in labels and WAVETABLE not in labels
    assert isinstance(init_candidate(SPEC), Candidate)


class SweepGoal:
    """Distance = how far the sweep's depth is from 0.3 (the vector does not matter)."""

    renders_per_candidate = 1

    def __call__(self, candidates, deadline=None):
        return [Score(abs(c.extra.values[1] - 0.3) if c.extra is not None else 5.0) for c in candidates]


@pytest.mark.parametrize("moved", [True, False])
def test_the_search_moves_the_sweep_of_a_wavetable_start_and_writes_it(analysis, moved):
    (start,) = [c for c in propose(SPEC, analysis=analysis, include_init=False)]
    assert start.extra.names == ("env_3_decay", "modulation_2_amount") and start.extra.values[1] == 1.0
    config = SearchConfig(seconds=None, max_renders=120, extra_controls=moved, flip_switches=False)
    result = run_search(SweepGoal(), [start], config)
    depth = result.document["settings"]["modulation_2_amount"]
    assert depth == pytest.approx(result.best.controls["modulation_2_amount"])
    assert (abs(depth - 0.3) < 0.1) if moved else depth == 1.0


def test_extra_controls_set_on_the_synth_are_put_back_for_the_next_candidate(analysis):
    (start,) = propose(SPEC, analysis=analysis, include_init=False)
    renderer = VitalRenderer()
    renderer.set_base(start.base)
    controls = renderer.synth.get_controls()
    renderer.set_vector(start.continuous, start.categorical, {"modulation_2_amount": 0.25})
    assert controls["modulation_2_amount"].value() == pytest.approx(0.25)
    renderer.set_vector(start.continuous, start.categorical)  # a candidate without the extra control
    assert controls["modulation_2_amount"].value() == pytest.approx(1.0)  # the base's value
