"""Tables and the plot of ``benchmarks.search_quality``: reads ``quality.jsonl``, writes ``quality.md`` and
``quality.png``.

    python -m benchmarks.search_report benchmarks/results/search
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.stats import paired_interval

METHODS = ("model+search", "init+search")
MEASURES = {"distance": "multi-scale spectral distance", "mfcc": "MFCC distance (independent)"}


def _table(rows: list[dict], method: str, measure: str) -> np.ndarray:
    """(targets, budgets) with NaN for silent renders."""
    return np.array([[np.nan if v is None else v for v in r[method][measure]] for r in rows], dtype=np.float64)


def summarise(rows: list[dict], budgets: list[float]) -> dict:
    """Means over the targets every method at every budget rendered audibly (paired), per measure."""
    out: dict = {}
    for measure in MEASURES:
        tables = {m: _table(rows, m, measure) for m in METHODS}
        paired = ~np.isnan(np.concatenate(list(tables.values()), axis=1)).any(axis=1)
        out[measure] = {
            m: {
                "mean": np.nanmean(t[paired], axis=0).tolist(),
                "median": np.nanmedian(t[paired], axis=0).tolist(),
                "silent": np.isnan(t).sum(axis=0).tolist(),
            }
            for m, t in tables.items()
        }
        out[measure]["n_paired"] = int(paired.sum())
        m, i = tables["model+search"][paired], tables["init+search"][paired]
        out[measure]["model_not_worse_share"] = np.mean(m <= i, axis=0).tolist()
        out[measure]["model_minus_init"] = _paired_ci(m - i)
    return out


def _paired_ci(diff: np.ndarray) -> list[list[float]]:
    """Per budget: mean of the paired differences (targets, budgets) and its 95 % bootstrap interval."""
    mean, lo, hi = paired_interval(diff)
    return [[float(d), float(a), float(b)] for d, a, b in zip(mean, lo, hi, strict=True)]


def targets_check(summary: dict, budgets: list[float]) -> list[str]:
    """The issue's quality targets, each with its measured ratio."""
    d = summary["distance"]
    model, init = d["model+search"]["mean"], d["init+search"]["mean"]
    network, init_preset = model[budgets.index(0)], init[budgets.index(0)]
    lines = []
    for b, limit, against, value in (
        (10, 0.4, "the init preset", init_preset),
        (10, 0.4, "the network alone", network),
        (3, 0.6, "the init preset", init_preset),
    ):
        if b in budgets:
            ratio = model[budgets.index(b)] / value
            verdict = "met" if ratio <= limit else "NOT met"
            lines.append(f"- model+search at {b:g} s: {ratio:.2f}x {against} (target <= {limit}x): {verdict}")
    for b in budgets:
        if b > 0:
            j = budgets.index(b)
            diff, lo, hi = d["model_minus_init"][j]
            verdict = "met" if model[j] <= init[j] else "NOT met: the network adds nothing as a start here"
            if lo <= 0 <= hi:
                verdict += ", but the paired difference is within its 95 % interval of 0"
            paired = f"({diff:+.3f} [{lo:+.3f}, {hi:+.3f}])"
            lines.append(f"- {b:g} s: model+search {model[j]:.3f} vs init+search {init[j]:.3f} {paired}: {verdict}")
    return lines


def _plot(summary: dict, budgets: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (measure, title) in zip(axes, MEASURES.items(), strict=True):
        for method, style in zip(METHODS, ("o-", "s--"), strict=True):
            ax.plot(budgets, summary[measure][method]["mean"], style, label=method)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xticks(budgets)
        ax.set_xticklabels([f"{b:g}" for b in budgets])
        ax.set_xlabel("search budget (s, 2 render workers)")
        ax.set_ylabel(f"mean {title}")
        ax.set_title(f"{title}\n(budget 0: network alone / init preset)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(folder: Path) -> dict:
    rows = [json.loads(line) for line in (folder / "quality.jsonl").read_text().splitlines()]
    meta = json.loads((folder / "quality_run.json").read_text())
    budgets = meta["budgets"]
    summary = summarise(rows, budgets)
    (folder / "quality_summary.json").write_text(json.dumps({"budgets": budgets, **summary}, indent=1))
    _plot(summary, budgets, folder / "quality.png")
    lines = ["# Preset search: quality against budget (evaluation presets)", "", "```", meta["command"], "```", ""]
    lines += [f"{len(rows)} targets (presets x MIDI 48/60/72). Budget 0 = no search: the network's prediction "
              "(model+search) or the init preset (init+search).", ""]  # fmt: skip
    for measure, title in MEASURES.items():
        s = summary[measure]
        lines += [f"## {title}, mean (median) over {s['n_paired']} targets rendered audibly by every method", ""]
        lines += ["| method | " + " | ".join(f"{b:g} s" for b in budgets) + " |"]
        lines += ["| --- |" + " --- |" * len(budgets)]
        for m in METHODS:
            cells = [f"{a:.3f} ({b:.3f})" for a, b in zip(s[m]["mean"], s[m]["median"], strict=True)]
            lines += [f"| {m} | " + " | ".join(cells) + " |"]
        share = " | ".join(f"{v:.0%}" for v in s["model_not_worse_share"])
        gain = " | ".join(f"{d:+.3f} [{a:+.3f}, {b:+.3f}]" for d, a, b in s["model_minus_init"])
        lines += [f"| model+search <= init+search on | {share} |"]
        lines += [f"| model+search - init+search, 95 % CI | {gain} |", ""]
    lines += ["## Targets", "", *targets_check(summary, budgets), ""]
    (folder / "quality.md").write_text("\n".join(lines) + "\n")
    return summary


if __name__ == "__main__":
    write_report(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/search"))
