"""Which search settings pay: compared at equal numbers of Vital renders on the calibration presets.

Every configuration searches every target with the same render budget (no time limit, so the figures do not
depend on how busy the machine is), starting from the init preset and, with a checkpoint, from the
network's proposals. The table gives the mean best distance after 25, 50, 100, 200 ... renders.

    python -m benchmarks.search_tuning --checkpoint runs/vital-resnet18/dev/best.pt --renders 200

Calibration presets only (``calibration.txt``): the evaluation presets are never tuned on.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.search_inputs import load_network, network_outputs, preset_targets
from benchmarks.stats import paired_interval
from zoo.matching import NeighbourIndex, RenderPool, SearchConfig, match

# The settings as first measured: population 10, no switch flips; each row changes one thing.
BASE = SearchConfig(seconds=None, max_renders=1, popsize=10, flip_switches=False)
CONFIGS = {
    "default": BASE,
    "sigma 0.2": replace(BASE, sigma=0.2),
    "sigma 0.05": replace(BASE, sigma=0.05),
    "popsize 16": replace(BASE, popsize=16),
    "popsize 6": replace(BASE, popsize=6),
    "all parameters": replace(BASE, audible_only=False),
    "flip switches": replace(BASE, flip_switches=True),
    "chosen": SearchConfig(seconds=None, max_renders=1),  # the defaults: population 6, flips when they pay
}
MODEL_CONFIGS = ("default", "all parameters", "flip switches", "chosen")


def _curve(history, marks: list[int]) -> list[float]:
    """Best distance after each mark of renders (the last generation that fits)."""
    return [min(p.best_distance for p in history if p.renders <= m) for m in marks]


def _runs(model: Any, neighbours: NeighbourIndex | None, only: list[str] | None) -> list[tuple[str, str, Any]]:
    """(start, settings name, settings) of every run asked for."""
    runs = [("init", name, config) for name, config in CONFIGS.items()]
    if model is not None:
        runs += [("model", name, CONFIGS[name]) for name in MODEL_CONFIGS]
    if model is not None and neighbours is not None:
        runs.append(("model+neighbours", "default", CONFIGS["default"]))
    return [r for r in runs if only is None or f"{r[0]}: {r[1]}" in only]


def run(
    checkpoint: Path | None, renders: int, workers: int, out: Path, neighbours: Path | None, only: list[str] | None
) -> dict:
    targets = preset_targets("calibration.txt", rotate=True)
    model = load_network(checkpoint) if checkpoint else None
    index = NeighbourIndex.load(neighbours) if neighbours else None
    marks = [m for m in (25, 50, 100, 200, 400, 800) if m < renders] + [renders]
    previous = json.loads((out / "tuning.json").read_text()) if only and (out / "tuning.json").exists() else None
    results: dict[str, dict] = dict(previous["results"]) if previous else {}
    t0 = time.time()
    with RenderPool(workers) as pool:
        for start, name, config in _runs(model, index, only):
            curves = []
            for t in targets:
                outputs = network_outputs(model, t.target.notes[0].clip) if start != "init" else (None, None)
                result = match(
                    t.target, pool, continuous=outputs[0], logits=outputs[1], seconds=None, max_renders=renders,
                    config=config, neighbours=index if start == "model+neighbours" else None,
                )  # fmt: skip
                curves.append(_curve(result.history, marks))
            mean = np.mean(curves, axis=0)
            results[f"{start}: {name}"] = {"marks": marks, "mean": mean.tolist(), "per_target": curves}
            print(f"{start}: {name:16s}", " ".join(f"{v:.3f}" for v in mean), flush=True)
    command = (
        f"python -m benchmarks.search_tuning --checkpoint {checkpoint} --renders {renders} --workers {workers}"
        + (f" --neighbours {neighbours}" if neighbours else "")
        + (f" --only '{','.join(only)}'" if only else "")
    )
    report = {
        "command": previous["command"] if previous else command,
        "reruns": (previous or {}).get("reruns", []) + ([command] if previous else []),
        "targets": [(t.preset, t.note) for t in targets],
        "configs": {k: asdict(v) for k, v in CONFIGS.items()},
        "results": results,
        "wall_seconds": round(time.time() - t0, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "tuning.json").write_text(json.dumps(report, indent=1))
    _write_table(report, out / "tuning.md")
    return report


def _write_table(report: dict, path: Path) -> None:
    results = report["results"]
    marks = next(iter(results.values()))["marks"]
    lines = [
        "# Search settings at equal render budgets (calibration presets)",
        "",
        f"{len(report['targets'])} calibration presets, one note each (48/60/72 in turn), 1 s note in a 2 s render. "
        "Mean multi-scale spectral distance of the best candidate after N renders (lower is closer).",
        "",
        "```",
        report["command"],
        *report.get("reruns", []),
        "```",
        "",
        "| start: settings | " + " | ".join(f"{m} renders" for m in marks) + " |",
        "| --- | " + " | ".join("---" for _ in marks) + " |",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in r["mean"]) + " |")
    lines += [
        "",
        "Paired differences (B - A, mean over the same targets, 95 % bootstrap interval; negative: B is closer):",
        "",
        "| B vs A | " + " | ".join(f"{m} renders" for m in marks) + " |",
        "| --- | " + " | ".join("---" for _ in marks) + " |",
    ]
    for a, b in COMPARISONS:
        if a in results and b in results:
            lines.append(f"| {b} vs {a} | " + " | ".join(_paired(results[a], results[b])) + " |")
    path.write_text("\n".join(lines) + "\n")


COMPARISONS = [
    ("init: default", "init: popsize 6"),
    ("init: default", "init: sigma 0.2"),
    ("init: default", "init: popsize 16"),
    ("init: default", "init: all parameters"),
    ("init: default", "init: flip switches"),
    ("model: default", "model: all parameters"),
    ("model: default", "model: flip switches"),
    ("init: default", "model: default"),
    ("model: default", "model+neighbours: default"),
    ("model: default", "model: chosen"),
]


def _paired(a: dict, b: dict) -> list[str]:
    mean, lo, hi = paired_interval(np.array(b["per_target"]) - np.array(a["per_target"]))  # (targets, marks)
    return [f"{d:+.3f} [{low:+.3f}, {high:+.3f}]" for d, low, high in zip(mean, lo, hi, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--renders", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search"))
    parser.add_argument("--neighbours", type=Path, default=None, help="neighbours.npz: adds model+neighbours.")
    parser.add_argument("--only", default=None, help="Comma-separated runs ('model: chosen'), added to tuning.json.")
    parser.add_argument("--report-only", action="store_true", help="Rewrite tuning.md from tuning.json.")
    args = parser.parse_args()
    if args.report_only:
        _write_table(json.loads((args.out / "tuning.json").read_text()), args.out / "tuning.md")
    else:
        only = [o.strip() for o in args.only.split(",")] if args.only else None
        run(args.checkpoint, args.renders, args.workers, args.out, args.neighbours, only)


if __name__ == "__main__":
    main()
