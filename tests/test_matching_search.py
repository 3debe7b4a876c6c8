"""The search and its proposals, on injected deterministic objectives (no Vital renders)."""

import time

import numpy as np
import pytest

from zoo.matching import (
    FAILED_DISTANCE,
    Candidate,
    Score,
    SearchConfig,
    Target,
    document_for,
    init_candidate,
    model_candidates,
    propose,
    run_search,
)
from zoo.matching.search import PITCH_PARAMETERS, searched_parameters
from zoo.vital import tier1_spec
from zoo.vital.preset import preset_from_vector

SPEC = tier1_spec()


class Quadratic:
    """Distance = squared error to a hidden vector, optionally slow; honours the deadline like the pool."""

    renders_per_candidate = 1

    def __init__(self, goal: np.ndarray, seconds_per_render: float = 0.0, noise: float = 0.0) -> None:
        self.goal, self.delay, self.noise = goal, seconds_per_render, noise
        self.asked: list[np.ndarray] = []
        self.rng = np.random.default_rng(123)

    def __call__(self, candidates, deadline=None):
        out = []
        for c in candidates:
            if deadline is not None and time.monotonic() >= deadline:
                out.append(None)
                continue
            time.sleep(self.delay)
            self.asked.append(c.continuous.copy())
            d = float(np.sum((c.continuous - self.goal) ** 2)) + self.noise * float(self.rng.random())
            out.append(Score(d))
        return out


def _start(value: float = 0.5) -> Candidate:
    init = init_candidate(SPEC)
    categorical = init.categorical.copy()
    categorical[[SPEC.categorical_names.index(n) for n in ("osc_1_on", "filter_1_on")]] = 1
    return Candidate(np.full(SPEC.n_continuous, value), categorical, "start")


def test_search_improves_and_never_returns_worse_than_the_start():
    goal = np.random.default_rng(0).uniform(0.2, 0.8, SPEC.n_continuous)
    start = _start()
    pitch = [SPEC.continuous_names.index(name) for name in PITCH_PARAMETERS]
    goal[pitch] = start.continuous[pitch]  # the pitch is the start's: the search does not move it
    objective = Quadratic(goal)
    result = run_search(objective, [start], SearchConfig(seconds=None, max_renders=300))
    assert result.start == "start"
    assert result.distance_end < 0.7 * result.distance_start
    assert [p.best_distance for p in result.history] == sorted((p.best_distance for p in result.history), reverse=True)
    assert result.renders == 300

    # An objective where everything but the start is far worse: the start comes back.
    class OnlyStart(Quadratic):
        def __call__(self, candidates, deadline=None):
            return [Score(0.1 if c.label == "start" else 5.0) for c in candidates]

    result = run_search(OnlyStart(goal), [start], SearchConfig(seconds=None, max_renders=60))
    assert result.best is start and result.distance_end == result.distance_start == 0.1


def test_search_starts_from_the_best_proposal_and_keeps_every_proposal_score():
    goal = np.full(SPEC.n_continuous, 0.3)
    near, far = _start(0.32), _start(0.9).replace(label="far")
    result = run_search(Quadratic(goal), [far, near], SearchConfig(seconds=None, max_renders=2))
    assert result.start == "start"
    assert [label for label, _ in result.proposals] == ["far", "start"]
    assert result.proposals[1][1].distance == pytest.approx(result.distance_start)


def test_same_seed_and_scores_give_the_same_candidates():
    goal = np.random.default_rng(1).uniform(0, 1, SPEC.n_continuous)
    runs = []
    for seed in (3, 3, 4):
        objective = Quadratic(goal)
        result = run_search(objective, [_start()], SearchConfig(seconds=None, max_renders=120, seed=seed))
        runs.append((np.array(objective.asked), result.distance_end))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert not np.array_equal(runs[0][0], runs[2][0])


@pytest.mark.parametrize("budget", [0.3, 1.0])
def test_the_time_budget_holds(budget):
    render = 0.02
    objective = Quadratic(np.full(SPEC.n_continuous, 0.3), seconds_per_render=render)
    t0 = time.monotonic()
    result = run_search(objective, [_start(), _start(0.6)], SearchConfig(seconds=budget, patience=10**6))
    wall = time.monotonic() - t0
    assert result.stop_reason == "budget"
    assert result.seconds <= budget * 1.1 + render + 0.01
    assert wall <= budget * 1.1 + render + 0.05
    assert result.seconds >= budget - 2 * render  # it used its budget


def test_the_render_budget_holds_and_counts_renders_per_note():
    class TwoNotes(Quadratic):
        renders_per_candidate = 2

    objective = TwoNotes(np.full(SPEC.n_continuous, 0.3))
    result = run_search(objective, [_start()], SearchConfig(seconds=None, max_renders=51))
    assert result.renders <= 51 and result.renders == 2 * len(objective.asked)


def test_early_stop_when_the_best_stops_improving():
    class NoBetter(Quadratic):  # nothing beats the start
        def __call__(self, candidates, deadline=None):
            return [Score(1.0 if c.label == "start" else 1.0 + self.rng.random()) for c in candidates]

    config = SearchConfig(seconds=None, max_renders=10_000, patience=4, flip_switches=False)
    result = run_search(NoBetter(np.zeros(1)), [_start()], config)
    assert result.stop_reason == "no improvement"
    assert result.renders == 1 + 4 * SearchConfig().popsize


def test_switch_flips_run_when_the_budget_affords_them_and_keep_the_best_flip():
    reverb = SPEC.categorical_names.index("reverb_on")

    class WantsReverb(Quadratic):
        def __call__(self, candidates, deadline=None):
            scores = super().__call__(candidates, deadline)
            pairs = zip(candidates, scores, strict=True)
            return [Score(s.distance + (0.0 if c.categorical[reverb] else 1.0)) for c, s in pairs]

    switches = sum(p.is_switch for p in SPEC.categorical)
    goal = np.full(SPEC.n_continuous, 0.5)
    result = run_search(WantsReverb(goal), [_start()], SearchConfig(seconds=None, max_renders=200))
    assert result.best.categorical[reverb] == 1 and "reverb_on flipped" in result.best.label
    assert result.history[1].renders == 1 + switches  # the flips come right after the proposals
    small = WantsReverb(goal)
    result = run_search(small, [_start()], SearchConfig(seconds=None, max_renders=4 * switches - 1))
    assert result.best.categorical[reverb] == 0  # too small a budget for the flips to pay


def test_failed_candidates_rank_last_and_are_counted():
    goal = np.full(SPEC.n_continuous, 0.3)

    class HalfFail(Quadratic):
        def __call__(self, candidates, deadline=None):
            scores = super().__call__(candidates, deadline)
            return [Score(FAILED_DISTANCE, "silent render") if i % 2 else s for i, s in enumerate(scores)]

    result = run_search(HalfFail(goal), [_start()], SearchConfig(seconds=None, max_renders=100))
    assert result.failed_renders > 0
    assert result.distance_end < FAILED_DISTANCE


def test_search_moves_only_audible_parameters():
    start = _start()
    dims = searched_parameters(start, SPEC)
    names = [SPEC.continuous[i].name for i in dims]
    assert "osc_1_level" in names and "filter_1_cutoff" in names and "env_1_attack" in names
    assert "osc_2_level" not in names and "reverb_size" not in names
    assert "osc_1_transpose" not in names and "osc_1_tune" not in names  # the pitch stays the start's
    objective = Quadratic(np.full(SPEC.n_continuous, 0.3))
    run_search(objective, [start], SearchConfig(seconds=None, max_renders=40))
    moved = np.flatnonzero(np.ptp(np.array(objective.asked), axis=0) > 0)
    assert set(moved) <= set(dims)


def test_search_config_refuses_bad_budgets():
    for bad in (dict(seconds=0), dict(seconds=-1), dict(seconds=float("nan")), dict(seconds=None)):
        with pytest.raises(ValueError):
            SearchConfig(**bad)


def test_model_candidates_flip_the_least_confident_audible_heads():
    rng = np.random.default_rng(0)
    logits = [rng.normal(size=n) * 5 for n in SPEC.categorical_n_options]
    on = {"osc_1_on": 1, "osc_2_on": 0, "filter_1_on": 1}
    for name, value in on.items():
        logits[SPEC.categorical_names.index(name)] = np.array([0.0, 9.0]) if value else np.array([9.0, 0.0])
    # osc 2 is off, so its distortion type is inaudible however unsure the network is about it.
    logits[SPEC.categorical_names.index("osc_2_distortion_type")] = np.zeros(len(SPEC.categorical[7].options))
    continuous = rng.uniform(size=SPEC.n_continuous)
    cands = model_candidates(continuous, logits, SPEC, n_variants=3)
    assert [c.label for c in cands][0] == "model"
    assert len(cands) == 4
    argmax = np.array([int(np.argmax(lg)) for lg in logits])
    np.testing.assert_array_equal(cands[0].categorical, argmax)
    for c in cands[1:]:
        changed = np.flatnonzero(c.categorical != argmax)
        assert changed.size == 1
        i = int(changed[0])
        assert c.categorical[i] == np.argsort(-logits[i])[1]  # the second choice
        assert SPEC.categorical[i].name != "osc_2_distortion_type"
        assert SPEC.categorical[i].name in c.label


def test_propose_orders_model_init_neighbours():
    logits = [np.eye(n)[0] for n in SPEC.categorical_n_options]
    neighbour = _start().replace(label="neighbour 1")
    labels = [c.label for c in propose(SPEC, np.full(SPEC.n_continuous, 0.5), logits, [neighbour], n_variants=2)]
    assert labels[0] == "model" and labels[3] == "init" and labels[4] == "neighbour 1" and len(labels) == 5
    assert [c.label for c in propose(SPEC)] == ["init"]


def test_document_for_writes_the_vector_onto_the_base():
    c = _start(0.25)
    plain = document_for(c, SPEC, name="x")
    assert plain == preset_from_vector(c.continuous, c.categorical, SPEC, name="x")
    base = preset_from_vector(np.full(SPEC.n_continuous, 0.9), c.categorical, SPEC)
    base["settings"]["osc_1_wave_frame"] = 17.0  # stands for anything the vector does not set
    base["settings"]["lfo_1_frequency"] = 3.0
    doc = document_for(c.replace(base=base), SPEC, name="y")
    assert doc["preset_name"] == "y" and doc["settings"]["lfo_1_frequency"] == 3.0
    for p in ("osc_1_level", "filter_1_cutoff", "osc_1_wave_frame"):
        assert doc["settings"][p] == plain["settings"][p]
    assert base["settings"]["osc_1_wave_frame"] == 17.0  # the base itself is untouched


def test_target_from_clip_normalises_and_checks():
    from zoo.errors import AudioDecodeError

    t = np.arange(44100) / 44100
    target = Target.from_clip(0.01 * np.sin(2 * np.pi * 220 * t), midi=57, note_seconds=5.0)
    (note,) = target.notes
    assert note.note_seconds == pytest.approx(1.0)  # held no longer than the clip lasts
    assert 20 * np.log10(np.sqrt(np.mean(note.clip**2))) == pytest.approx(-20.0, abs=0.01)
    same = Target.from_clip(0.01 * np.sin(2 * np.pi * 220 * t), midi=57, note_seconds=5.0)
    assert target.key == same.key != Target.from_clip(note.clip, 58, 1.0).key  # workers cache targets by key
    with pytest.raises(AudioDecodeError):
        Target.from_clip(np.zeros(44100), 60)
    with pytest.raises(ValueError):
        Target.from_clip(note.clip, 130)


def test_target_from_recording_takes_the_main_note():
    sr = 44100
    t = np.arange(int(0.8 * sr)) / sr
    tone = np.sin(2 * np.pi * 440 * t) * np.exp(-t * 2)
    audio = np.concatenate([np.zeros(sr // 4), tone, np.zeros(sr)]).astype(np.float32) * 0.3
    (note,) = Target.from_recording(audio).notes
    assert note.midi == 69
    assert 0.15 < note.note_seconds <= 0.8
    assert 0.7 * sr < note.clip.size <= 0.85 * sr  # the note and its release, not the silence after it


def _melody(midis, seconds=0.35, gap=0.1, sr=44100):
    t = np.arange(int(seconds * sr)) / sr
    out = [np.zeros(sr // 5)]
    for i, m in enumerate(midis):
        f = 440.0 * 2 ** ((m - 69) / 12)
        level = 0.3 if i != 2 else 0.1  # one quiet note
        tone = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 8)) * np.minimum(1, (seconds - t) / 0.02)
        out += [level * tone, np.zeros(int(gap * sr))]
    return np.concatenate(out + [np.zeros(sr // 2)]).astype(np.float32)


@pytest.mark.parametrize("n", [1, 4, 6])
def test_phrase_target_uses_at_most_n_prominent_notes_each_at_its_pitch(n):
    from zoo.notes import find_phrase

    midis = [60, 62, 64, 65, 67, 69]
    audio = _melody(midis)
    phrase = find_phrase(audio)
    assert [x.midi for x in phrase.notes] == midis
    target = Target.from_phrase(audio, phrase, n_notes=n)
    assert len(target.notes) == min(n, len(midis)) and target.renders_per_candidate == len(target.notes)
    assert [x.midi for x in target.notes] == sorted(x.midi for x in target.notes)  # in time order
    if n == 4:
        assert 64 not in [x.midi for x in target.notes]  # the quiet note is the least prominent
    for note in target.notes:
        assert 0.3 < note.note_seconds < 0.4 and note.clip.size / 44100 < 0.5  # never into the next note
    assert target.notes[0].velocity == pytest.approx(0.8, abs=0.05)  # the loudest notes play at 0.8
