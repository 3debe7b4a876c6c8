"""Search for the preset that sounds closest to a target, with Vital renders in the loop.

1. Every proposal (``zoo.matching.candidates``) is scored; the best is the start.
2. One discrete step, when the budget is large enough for it to pay: each on/off switch of the start
   flipped once; the best flip replaces the start if it is closer.
3. CMA-ES (``cma``) searches the start's continuous vector within [0, 1], over the parameters that are
   audible in it (a parameter whose module switch is off has no effect on the sound) except oscillator 1's
   transpose and tune (``PITCH_PARAMETERS``: the note's pitch is known, and one step of 0.1 moves a transpose
   by ~10 semitones: a preset at another pitch could win by the distance's render noise), with the start's
   categorical parameters; with ``extra_controls``, also the start's extra controls (a wavetable's sweep
   time and depth) as more dimensions within their ranges. Population 6, step size 0.1: chosen at equal
   render budgets on the calibration presets (``benchmarks/results/search/tuning.md``).
4. It stops when the budget is spent (seconds and/or renders), when the best has not improved for
   ``patience`` generations, or when CMA-ES converges.

The result is the best candidate ever scored, so it is never worse than the start. The budget holds within
the renders already running when it ends (at most one per worker). With the same seed, the same proposals
and the same scores, the same candidates are asked for; Vital's renders are not bit-identical, so with a
real objective two runs differ slightly.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cma  # imported here, not in the budget: it takes seconds (scipy.stats)
import numpy as np

from zoo.matching.candidates import Candidate, document_for
from zoo.matching.objective import FAILED_DISTANCE, Objective, Score
from zoo.vital.spec import VitalParamSpec
from zoo.vital.tier1 import tier1_spec

warnings.filterwarnings("ignore", module="cma")

# The switch flips pay from about 50 renders on and cost below (benchmarks/results/search/tuning.md): they run
# when the budget left holds this many times their own renders.
FLIP_BUDGET_FACTOR = 4  # flat-fitness and boundary notes: the search handles both
PITCH_PARAMETERS = ("osc_1_transpose", "osc_1_tune")  # never searched: see the module docstring


@dataclass(frozen=True)
class SearchConfig:
    """How long and how a search runs. ``seconds`` None: no time limit (then ``max_renders`` is needed)."""

    seconds: float | None = 5.0
    max_renders: int | None = None
    seed: int = 0
    popsize: int = 6
    sigma: float = 0.1
    patience: int = 15  # generations without a relative improvement of min_improvement
    min_improvement: float = 0.002
    audible_only: bool = True
    flip_switches: bool = True  # when the budget holds FLIP_BUDGET_FACTOR times the flips' renders
    # CMA-ES also moves the start's extra controls (a wavetable's sweep time and depth). Off: on the calibration
    # phrases it lowered the search's own distance 1 % but not the whole phrase's (benchmarks/results/phrases).
    extra_controls: bool = False

    def __post_init__(self) -> None:
        if self.seconds is None and self.max_renders is None:
            raise ValueError("a search needs a budget: seconds, max_renders or both")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"the search budget must be a positive number of seconds, got {self.seconds}")
        if self.max_renders is not None and self.max_renders < 1:
            raise ValueError(f"the search's render budget must be at least 1, got {self.max_renders}")
        if self.popsize < 2 or not 0 < self.sigma <= 1 or self.patience < 1:
            raise ValueError("popsize must be at least 2, sigma in (0, 1] and patience at least 1")


@dataclass(frozen=True)
class Progress:
    """The best distance after a generation (0: after scoring the proposals), for a plot."""

    generation: int
    seconds: float
    renders: int
    best_distance: float


@dataclass
class SearchResult:
    """What a search found. ``distance_start``: the best proposal's distance (where the search started)."""

    best: Candidate
    document: dict[str, Any]
    distance_start: float
    distance_end: float
    renders: int
    seconds: float
    start: str
    history: list[Progress]
    proposals: list[tuple[str, Score | None]]
    failed_renders: int
    stop_reason: str

    def summary(self) -> dict[str, Any]:
        """The short form (the HTTP answer's ``search``)."""
        return {
            "distance_start": round(self.distance_start, 5),
            "distance_end": round(self.distance_end, 5),
            "renders": self.renders,
            "seconds": round(self.seconds, 3),
            "start": self.start,
            "stop_reason": self.stop_reason,
        }


ProgressCallback = Callable[[Progress, Candidate], None]


@dataclass
class _Run:
    """The state of one search: budget, best so far, counts."""

    config: SearchConfig
    per_candidate: int
    on_progress: ProgressCallback | None
    t0: float = field(default_factory=time.monotonic)
    renders: int = 0
    failed: int = 0
    generation: int = 0
    best: Candidate | None = None
    best_distance: float = math.inf
    history: list[Progress] = field(default_factory=list)

    @property
    def deadline(self) -> float | None:
        return None if self.config.seconds is None else self.t0 + self.config.seconds

    def candidates_left(self) -> int:
        """How many more candidates the budget allows (0: spent)."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return 0
        if self.config.max_renders is None:
            return 1 << 30
        return max(0, (self.config.max_renders - self.renders) // self.per_candidate)

    def affordable(self) -> int:
        """Candidates the rest of the budget holds: the render budget, and the time left at the rate seen so far."""
        left = self.candidates_left()
        elapsed = time.monotonic() - self.t0
        if self.deadline is None or not left or not self.renders or elapsed <= 0:
            return left
        rate = self.renders / self.per_candidate / elapsed  # candidates per second (the pool's parallelism included)
        return min(left, int(rate * (self.deadline - time.monotonic())))

    def score(self, objective: Objective, candidates: Sequence[Candidate]) -> list[Score | None]:
        scores = objective(list(candidates), self.deadline)
        for c, s in zip(candidates, scores, strict=True):
            if s is None:
                continue
            self.renders += self.per_candidate
            self.failed += int(s.failed)
            if s.distance < self.best_distance:
                self.best, self.best_distance = c, s.distance
        return scores

    def record(self) -> None:
        assert self.best is not None
        p = Progress(self.generation, time.monotonic() - self.t0, self.renders, self.best_distance)
        self.history.append(p)
        if self.on_progress is not None:
            self.on_progress(p, self.best)


def searched_parameters(candidate: Candidate, spec: VitalParamSpec, audible_only: bool = True) -> np.ndarray:
    """Indices of the continuous parameters the search moves: all, or those audible in ``candidate``; never
    ``PITCH_PARAMETERS`` (the start sets the pitch)."""
    gates = np.array(spec.continuous_gate_ids())
    on = np.concatenate([candidate.categorical, [1]])[gates]  # gate -1 (always heard) reads the appended 1
    moved = np.ones(spec.n_continuous, dtype=bool) if not audible_only else on == 1
    moved &= ~np.isin(np.array(spec.continuous_names), PITCH_PARAMETERS)
    return np.flatnonzero(moved)


def run_search(
    objective: Objective,
    proposals: Sequence[Candidate],
    config: SearchConfig | None = None,
    spec: VitalParamSpec | None = None,
    on_progress: ProgressCallback | None = None,
    name: str = "Zoo match",
) -> SearchResult:
    """Score ``proposals``, then refine the best with CMA-ES within the budget; see the module docstring.

    ``on_progress(progress, best)`` is called after the proposals and after every generation."""
    config = config or SearchConfig()
    spec = spec or tier1_spec()
    if not proposals:
        raise ValueError("a search needs at least one proposal")
    run = _Run(config, max(1, int(getattr(objective, "renders_per_candidate", 1))), on_progress)
    proposal_scores = _score_proposals(objective, list(proposals), run)
    start, distance_start = run.best, run.best_distance
    assert start is not None
    run.record()
    reason = "budget"
    switches = [i for i, p in enumerate(spec.categorical) if p.is_switch]
    if config.flip_switches and run.affordable() >= FLIP_BUDGET_FACTOR * len(switches):
        _flip_switches(objective, run, spec, switches)
    if run.candidates_left():
        reason = _cma_es(objective, run, spec)
    best = run.best
    assert best is not None
    return SearchResult(
        best=best,
        document=document_for(best, spec, name=name),
        distance_start=distance_start,
        distance_end=run.best_distance,
        renders=run.renders,
        seconds=time.monotonic() - run.t0,
        start=start.label,
        history=run.history,
        proposals=[(c.label, s) for c, s in zip(proposals, proposal_scores, strict=True)],
        failed_renders=run.failed,
        stop_reason=reason,
    )


def _score_proposals(objective: Objective, proposals: list[Candidate], run: _Run) -> list[Score | None]:
    """Score the proposals within the budget; the first is always scored (a result needs one)."""
    n = max(1, min(len(proposals), run.candidates_left()))
    scores = run.score(objective, proposals[:n]) + [None] * (len(proposals) - n)
    if scores[0] is None:  # the deadline passed before any worker took it
        scores[0] = objective([proposals[0]], None)[0]
        assert scores[0] is not None
        run.renders += run.per_candidate
        run.failed += int(scores[0].failed)
        if scores[0].distance < run.best_distance or run.best is None:
            run.best, run.best_distance = proposals[0], scores[0].distance
    return scores


def _flip_switches(objective: Objective, run: _Run, spec: VitalParamSpec, switches: list[int]) -> None:
    """One step over the on/off switches: each flipped once from the best; the best flip is kept if it helps."""
    best = run.best
    assert best is not None
    flips = []
    for i in switches:
        categorical = best.categorical.copy()
        categorical[i] = 1 - categorical[i]
        flips.append(best.replace(categorical=categorical, label=f"{best.label}, {spec.categorical[i].name} flipped"))
    run.score(objective, flips[: run.candidates_left()])
    run.generation += 1
    run.record()


def _cma_es(objective: Objective, run: _Run, spec: VitalParamSpec) -> str:
    """CMA-ES from the best so far over its audible continuous parameters; returns why it stopped."""
    config, start = run.config, run.best
    assert start is not None
    dims = searched_parameters(start, spec, config.audible_only)
    extra = start.extra if config.extra_controls else None
    n_extra = 0 if extra is None else len(extra.names)
    if dims.size + n_extra < 2:
        return "nothing to search"
    rng = np.random.default_rng(config.seed)
    options = {
        "bounds": [0.0, 1.0],
        "popsize": config.popsize,
        "seed": np.nan,  # cma would reseed numpy's global generator; ours is local to this search
        "randn": lambda lam, n: rng.standard_normal((lam, n)),
        "verbose": -9,
        "verb_log": 0,
        "verb_disp": 0,
        "tolflatfitness": 1 << 30,  # a flat generation (all failed renders) is not convergence
    }
    x0 = np.concatenate([start.continuous[dims], extra.values if extra is not None else []])
    es = cma.CMAEvolutionStrategy(x0, config.sigma, options)
    last_gain, best_at_gain = run.generation, run.best_distance
    while True:
        n = min(config.popsize, run.candidates_left())
        if n == 0:
            return "budget"
        xs = es.ask()
        batch = []
        for x in xs[:n]:
            continuous = start.continuous.copy()
            continuous[dims] = x[: dims.size]
            changes = {"continuous": continuous, "label": f"{start.label}, CMA-ES"}
            if extra is not None:
                changes["extra"] = extra.with_values(x[dims.size :])
            batch.append(start.replace(**changes))
        scores = run.score(objective, batch)
        run.generation += 1
        run.record()
        if n < len(xs) or any(s is None for s in scores):
            return "budget"
        es.tell(xs, [s.distance if s is not None else FAILED_DISTANCE for s in scores])
        if run.best_distance < best_at_gain * (1 - config.min_improvement):
            last_gain, best_at_gain = run.generation, run.best_distance
        if run.generation - last_gain >= config.patience:
            return "no improvement"
        if es.stop():
            return "converged (" + ", ".join(es.stop()) + ")"
