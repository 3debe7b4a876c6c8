"""The render pool against raw Vita, in one run: candidates scored per second, and the render-to-render noise
of the distance.

Four ways to get through the same candidates (random Tier-1 presets of the sampler, against one target),
interleaved over several rounds so that a change in the machine's load hits them alike:

- ``raw vita``: one process, set the vector and render (``VitalRenderer.set_vector`` + ``render_current``);
- ``inline scoring``: the same plus the distance, one process (what a worker does per candidate);
- ``pool, 1 worker`` and ``pool, 2 workers``: ``RenderPool.score``.

Noise: one candidate rendered and scored repeatedly against a fixed target; Vital's renders of one patch
differ (oscillator phases, free-running effect LFOs), so its distance does too.

    python -m benchmarks.search_pool --candidates 60 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import cpu_model, load_average
from zoo.matching import Candidate, RenderPool, Target
from zoo.matching.objective import score_candidate
from zoo.vital.render import VitalRenderer
from zoo.vital.sampler import PresetSampler


def _candidates(n: int, renderer: VitalRenderer) -> tuple[list[Candidate], Target]:
    """``n`` audible sampler presets, and the target: the render of one more."""
    out, sampler, index = [], PresetSampler(renderer.spec, seed=0), 0
    while len(out) < n + 1:
        continuous, categorical = sampler.sample(index)
        index += 1
        audio = renderer.render_vector(continuous, categorical, 60)
        if np.sqrt(np.mean(audio**2)) > 1e-3:
            out.append((continuous, categorical, audio))
    target = Target.from_clip(out[-1][2], 60, note_seconds=1.0)
    return [Candidate(c, k, f"sampler {i}") for i, (c, k, _) in enumerate(out[:-1])], target


def _raw(renderer: VitalRenderer, candidates: list[Candidate], target: Target) -> None:
    note = target.notes[0]
    for c in candidates:
        renderer.set_vector(c.continuous, c.categorical)
        renderer.render_current(note.midi, note.velocity, note.note_seconds, note.render_seconds)


def _inline(renderer: VitalRenderer, candidates: list[Candidate], target: Target) -> None:
    for c in candidates:
        score_candidate(renderer, c, target)


def _noise(renderer: VitalRenderer, candidates: list[Candidate], target: Target, repeats: int) -> dict:
    """Spread of one candidate's distance over repeated renders, for the first few candidates."""
    spreads = []
    for c in candidates[:8]:
        d = [score_candidate(renderer, c, target).distance for _ in range(repeats)]
        spreads.append({"mean": float(np.mean(d)), "std": float(np.std(d)), "range": float(np.ptp(d))})
    return {
        "repeats": repeats,
        "per_candidate": spreads,
        "mean_std": float(np.mean([s["std"] for s in spreads])),
        "mean_relative_std": float(np.mean([s["std"] / s["mean"] for s in spreads])),
    }


def run(n: int, rounds: int, out: Path) -> dict:
    import torch

    torch.set_num_threads(1)  # as in a worker
    renderer = VitalRenderer()
    candidates, target = _candidates(n, renderer)
    pools = {1: RenderPool(1), 2: RenderPool(2)}
    for pool in pools.values():
        pool.score(candidates[:4], target)  # the target reaches the workers before timing
    ways = {
        "raw vita": lambda: _raw(renderer, candidates, target),
        "inline scoring": lambda: _inline(renderer, candidates, target),
        "pool, 1 worker": lambda: pools[1].score(candidates, target),
        "pool, 2 workers": lambda: pools[2].score(candidates, target),
    }
    seconds: dict[str, list[float]] = {k: [] for k in ways}
    load_before = load_average()
    for _ in range(rounds):
        for name, fn in ways.items():
            t0 = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - t0)
    for pool in pools.values():
        pool.close()
    rate = {k: n / float(np.median(v)) for k, v in seconds.items()}
    report = {
        "command": f"python -m benchmarks.search_pool --candidates {n} --rounds {rounds}",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load": [load_before, load_average()]},
        "candidates": n,
        "rounds": rounds,
        "seconds": seconds,
        "candidates_per_second": rate,
        "pool_2_over_pool_1": rate["pool, 2 workers"] / rate["pool, 1 worker"],
        "pool_1_overhead_over_raw_vita": rate["raw vita"] / rate["pool, 1 worker"] - 1.0,
        "pool_1_overhead_over_inline_scoring": rate["inline scoring"] / rate["pool, 1 worker"] - 1.0,
        "noise": _noise(renderer, candidates, target, repeats=10),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "pool.json").write_text(json.dumps(report, indent=1))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search"))
    args = parser.parse_args()
    report = run(args.candidates, args.rounds, args.out)
    for k, v in report["candidates_per_second"].items():
        print(f"{k:16s} {v:6.1f} candidates/s")
    print(f"2 workers / 1 worker: {report['pool_2_over_pool_1']:.2f}x")
    print(f"pool (1 worker) overhead: {report['pool_1_overhead_over_raw_vita']:+.1%} over raw vita, "
          f"{report['pool_1_overhead_over_inline_scoring']:+.1%} over inline scoring")  # fmt: skip
    print(f"distance noise: std {report['noise']['mean_std']:.3f} ({report['noise']['mean_relative_std']:.1%})")


if __name__ == "__main__":
    main()
