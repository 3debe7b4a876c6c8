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

import numpy as np

from benchmarks.search_inputs import load_network, network_outputs, preset_targets
from zoo.matching import RenderPool, SearchConfig, match

BASE = SearchConfig(seconds=None, max_renders=1)
CONFIGS = {
    "default": BASE,
    "sigma 0.2": replace(BASE, sigma=0.2),
    "sigma 0.05": replace(BASE, sigma=0.05),
    "popsize 16": replace(BASE, popsize=16),
    "popsize 6": replace(BASE, popsize=6),
    "all parameters": replace(BASE, audible_only=False),
    "flip switches": replace(BASE, flip_switches=True),
}
MODEL_CONFIGS = ("default", "all parameters", "flip switches")


def _curve(history, marks: list[int]) -> list[float]:
    """Best distance after each mark of renders (the last generation that fits)."""
    return [min(p.best_distance for p in history if p.renders <= m) for m in marks]


def run(checkpoint: Path | None, renders: int, workers: int, out: Path) -> dict:
    targets = preset_targets("calibration.txt", rotate=True)
    model = load_network(checkpoint) if checkpoint else None
    marks = [m for m in (25, 50, 100, 200, 400, 800) if m < renders] + [renders]
    starts = ["init"] + (["model"] if model is not None else [])
    results: dict[str, dict] = {}
    t0 = time.time()
    with RenderPool(workers) as pool:
        for start in starts:
            for name, config in CONFIGS.items():
                if start == "model" and name not in MODEL_CONFIGS:
                    continue
                curves = []
                for t in targets:
                    outputs = network_outputs(model, t.target.notes[0].clip) if start == "model" else (None, None)
                    result = match(
                        t.target, pool, continuous=outputs[0], logits=outputs[1], seconds=None,
                        max_renders=renders, config=config,
                    )  # fmt: skip
                    curves.append(_curve(result.history, marks))
                mean = np.mean(curves, axis=0)
                results[f"{start}: {name}"] = {"marks": marks, "mean": mean.tolist(), "per_target": curves}
                print(f"{start}: {name:16s}", " ".join(f"{v:.3f}" for v in mean), flush=True)
    report = {
        "command": f"python -m benchmarks.search_tuning --checkpoint {checkpoint} --renders {renders} "
        f"--workers {workers}",
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
        "```",
        "",
        "| start: settings | " + " | ".join(f"{m} renders" for m in marks) + " |",
        "| --- | " + " | ".join("---" for _ in marks) + " |",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in r["mean"]) + " |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--renders", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search"))
    args = parser.parse_args()
    run(args.checkpoint, args.renders, args.workers, args.out)


if __name__ == "__main__":
    main()
