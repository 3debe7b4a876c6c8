"""The render pool with real Vital renders: scores, failures that crash nothing, and a short real search."""

import os
import time

import numpy as np
import pytest

from zoo.matching import FAILED_DISTANCE, Candidate, RenderPool, SearchConfig, Target, match
from zoo.matching.candidates import init_candidate
from zoo.matching.objective import score_candidate
from zoo.vital import tier1_spec
from zoo.vital.render import VitalRenderer

SPEC = tier1_spec()


def misbehaving_scorer(renderer, candidate, target):
    """The real scorer, except that label "crash" kills the worker and "raise" raises."""
    if candidate.label == "crash":
        os._exit(3)
    if candidate.label == "raise":
        raise RuntimeError("engine exploded")
    return score_candidate(renderer, candidate, target)


@pytest.fixture(scope="module")
def pool():
    with RenderPool(workers=2, scorer=misbehaving_scorer) as p:
        yield p


@pytest.fixture(scope="module")
def sound():
    """A target rendered from a known vector, and that vector."""
    init = init_candidate(SPEC)
    continuous = init.continuous.copy()
    continuous[SPEC.continuous_names.index("osc_1_wave_frame")] = 0.7  # a saw-like wave, not init's
    continuous[SPEC.continuous_names.index("filter_1_cutoff")] = 0.55
    categorical = init.categorical.copy()
    categorical[SPEC.categorical_names.index("filter_1_on")] = 1
    candidate = Candidate(continuous, categorical, "truth")
    audio = VitalRenderer(SPEC).render_vector(continuous, categorical, 57, note_seconds=0.5, render_seconds=1.0)
    return Target.from_clip(audio, 57, note_seconds=0.5), candidate


def _silent(candidate: Candidate) -> Candidate:
    categorical = candidate.categorical.copy()
    for i in (1, 2, 3):
        categorical[SPEC.categorical_names.index(f"osc_{i}_on")] = 0
    return candidate.replace(categorical=categorical, label="silent")


def test_pool_scores_the_true_preset_closest(pool, sound):
    target, truth = sound
    scores = pool.score([truth, init_candidate(SPEC)], target)
    assert not scores[0].failed and not scores[1].failed
    assert scores[0].distance < 0.6 * scores[1].distance
    # The same as scoring in this process (renders differ by oscillator phases only).
    local = score_candidate(VitalRenderer(SPEC), truth, target)
    assert local.distance == pytest.approx(scores[0].distance, abs=0.15)


def test_silent_raising_and_crashing_candidates_score_worst_and_crash_nothing(pool, sound):
    target, truth = sound
    replaced = pool.replaced
    batch = [truth, _silent(truth), truth.replace(label="raise"), truth.replace(label="crash"), truth]
    scores = pool.score(batch, target)
    assert [s.failed for s in scores] == [False, True, True, True, False]
    assert all(s.distance == FAILED_DISTANCE for s in scores[1:4])
    assert "silent" in scores[1].error and "engine exploded" in scores[2].error and "lost" in scores[3].error
    assert pool.replaced == replaced + 1
    again = pool.score([truth, truth], target)  # the replacement works
    assert not any(s.failed for s in again)


def test_a_base_vital_refuses_fails_that_candidate_only(pool, sound):
    target, truth = sound
    refused = truth.replace(base={"settings": {"volume": 1.0, "wavetables": "not a wavetable"}}, label="refused")
    scores = pool.score([refused, truth, refused, truth], target)
    assert [s.failed for s in scores] == [True, False, True, False]
    assert "Vital rejected" in scores[0].error


def test_deadline_drops_candidates_no_worker_has_started(pool, sound):
    target, truth = sound
    t0 = time.monotonic()
    scores = pool.score([truth] * 40, target, deadline=t0 + 0.3)
    assert scores[0] is not None and scores[-1] is None
    assert time.monotonic() - t0 < 2.0


def test_base_documents_travel_to_the_workers(pool, sound):
    from zoo.matching import document_for

    target, truth = sound
    base = document_for(init_candidate(SPEC), SPEC)
    base["settings"]["volume"] = base["settings"]["volume"] * 0.999  # a different document, same sound
    on_base = truth.replace(base=base, label="on base")
    scores = pool.score([truth, on_base, on_base, init_candidate(SPEC)], target)
    # The same sound on either base: as close as the truth (renders differ by unison phases, ~0.1 here), and
    # much closer than the init preset.
    assert scores[1].distance == pytest.approx(scores[0].distance, abs=0.3)
    assert scores[1].distance < 0.6 * scores[3].distance
    audio = pool.render(on_base, target.notes[0])
    assert audio.shape == target.notes[0].clip.shape and np.abs(audio).max() > 0.01


def test_the_spec_base_still_renders_after_many_other_bases(pool, sound):
    """Workers cache a few base documents; the spec's own base preset is never evicted from that cache."""
    from zoo.matching import document_for
    from zoo.matching.pool import CACHE_SIZE

    target, truth = sound
    base = document_for(init_candidate(SPEC), SPEC)
    others = []
    for i in range(3 * CACHE_SIZE):  # more than one worker caches, whichever takes them
        doc = {**base, "preset_name": f"base {i}"}  # a different document each time
        others.append(truth.replace(base=doc, label=f"base {i}"))
    replaced = pool.replaced
    scores = pool.score([*others, truth, truth], target)
    assert not any(s.failed for s in scores) and pool.replaced == replaced


def test_match_never_ends_worse_than_its_start(pool, sound):
    target, _ = sound
    seen = []
    result = match(target, pool, seconds=1.5, on_progress=lambda p, best: seen.append(p))
    assert result.start == "init"
    assert result.distance_end <= result.distance_start
    assert result.renders > 2 and seen and seen[-1].best_distance == result.distance_end
    assert result.seconds <= 1.5 * 1.1 + 1.0  # plus the renders already running at the deadline
    assert result.document["settings"]["filter_1_on"] in (0.0, 1.0)


def test_a_render_budget_counts_every_note(pool, sound):
    target, truth = sound
    two = Target(target.notes * 2)
    result = match(two, pool, seconds=None, max_renders=9, config=SearchConfig(popsize=4))
    assert result.renders <= 9 and result.renders % 2 == 0
