"""Quality of the preset search against its budget, on the evaluation presets, scored by two measures.

Each preset of ``evaluation.txt`` is rendered at MIDI 48, 60 and 72 (a 1 s note in a 2 s render, velocity 0.8,
as ``zoo evaluate --presets`` does); that render is the target. Two searches per target, ``--seconds`` each:

- ``model+search``: from the network's proposals (its prediction and variants), the init preset and the
  bundle's neighbours when given;
- ``init+search``: from the init preset alone: what the search does without the network.

The search does not adapt to its budget (same population, same step size, same early stop at any budget), so
one run of ``--seconds`` records the best candidate after every generation and the smaller budgets are read
off that record: the best found within 1, 3, 10 ... seconds. Budget 0 is the start without search: the
network's prediction, or the init preset. Every candidate read off is rendered again and scored by the
multi-scale spectral distance (what the search minimises) and by an MFCC distance it never saw
(``zoo.spectral.mfcc_distance``).

    python -m benchmarks.search_quality --checkpoint runs/vital-resnet18/dev/best.pt --seconds 30

Per-target results are appended to ``quality.jsonl`` as they finish; a rerun continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.machine import cpu_model, load_average
from benchmarks.search_inputs import load_network, network_outputs, preset_targets
from zoo.errors import AudioDecodeError
from zoo.matching import Candidate, RenderPool, match
from zoo.matching.candidates import init_candidate, model_candidates
from zoo.spectral import mfcc_distance, multiscale_spectral_distance

METHODS = ("model+search", "init+search")
FAILED = None  # a silent render has no distance: reported as such, counted apart


def _checkpoints(start: Candidate, budgets: list[float], trace: list) -> list[Candidate]:
    """The best candidate within each budget (budget 0: ``start``, the unsearched preset)."""
    chosen = []
    for b in budgets:
        if b == 0:
            chosen.append(start)
            continue
        within = [best for seconds, best in trace if seconds <= b]
        chosen.append(within[-1] if within else trace[0][1])
    return chosen


def _recorder(trace: list):
    """A progress callback that appends (seconds, best candidate) to ``trace``."""
    return lambda progress, best: trace.append((progress.seconds, best))


def _best_within(history, budget: float) -> float:
    """The search's own best distance within ``budget`` seconds (the proposals' best if none fits)."""
    within = [p.best_distance for p in history if p.seconds <= budget]
    return within[-1] if within else history[0].best_distance


def _score(pool: RenderPool, candidate: Candidate, note) -> tuple[float | None, float | None]:
    audio = pool.render(candidate, note)
    try:
        return multiscale_spectral_distance(note.clip, audio), mfcc_distance(note.clip, audio)
    except AudioDecodeError:
        return FAILED, FAILED


def _one_target(pool, model, t, seconds: float, budgets: list[float], seed: int) -> dict:
    note = t.target.notes[0]
    continuous, logits = network_outputs(model, note.clip)
    starts = {"model+search": model_candidates(continuous, logits, pool.spec, 0)[0], "init+search": init_candidate()}
    row: dict = {"preset": t.preset, "note": t.note}
    for method in METHODS:
        trace: list = []
        kwargs = {"continuous": continuous, "logits": logits} if method == "model+search" else {}
        result = match(t.target, pool, seconds=seconds, seed=seed, on_progress=_recorder(trace), **kwargs)
        picks = _checkpoints(starts[method], budgets, trace)
        scored = [_score(pool, c, note) for c in picks]
        row[method] = {
            "distance": [s[0] for s in scored],
            "mfcc": [s[1] for s in scored],
            "search_distance": [_best_within(result.history, b) for b in budgets],
            "start": result.start,
            "renders": result.renders,
            "seconds": result.seconds,
            "stop_reason": result.stop_reason,
            "history": [(p.seconds, p.renders, p.best_distance) for p in result.history],
        }  # fmt: skip
    return row


def run(checkpoint: Path, seconds: float, budgets: list[float], workers: int, seed: int, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    log = out / "quality.jsonl"
    done = {(r["preset"], r["note"]) for r in map(json.loads, log.read_text().splitlines())} if log.exists() else set()
    targets = preset_targets("evaluation.txt")
    model = load_network(checkpoint)
    t0, load_before = time.time(), load_average()
    with RenderPool(workers) as pool:
        for i, t in enumerate(targets):
            if (t.preset, t.note) in done:
                continue
            row = _one_target(pool, model, t, seconds, budgets, seed)
            with open(log, "a") as f:
                f.write(json.dumps(row) + "\n")
            m = row["model+search"]["distance"]
            print(f"[{i + 1}/{len(targets)}] {t.preset} @ {t.note}: model+search {m}", flush=True)
    meta = {
        "command": f"python -m benchmarks.search_quality --checkpoint {checkpoint} --seconds {seconds:g} "
        f"--budgets {','.join(f'{b:g}' for b in budgets)} --workers {workers} --seed {seed}",
        "checkpoint": str(checkpoint),
        "budgets": budgets,
        "targets": len(targets),
        "machine": {"cpu": cpu_model(), "load": [load_before, load_average()]},
        "wall_seconds_this_run": round(time.time() - t0, 1),
    }
    (out / "quality_run.json").write_text(json.dumps(meta, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--budgets", default="0,1,3,10,30")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search"))
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    run(args.checkpoint, args.seconds, budgets, args.workers, args.seed, args.out)
    from benchmarks.search_report import write_report

    write_report(args.out)


if __name__ == "__main__":
    main()
