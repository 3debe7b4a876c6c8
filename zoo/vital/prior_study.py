"""What human-made presets look like on Tier 1, and the sampler prior estimated from them.

Each preset of a set (the calibration list, never the evaluation list) is projected onto the spec with
:func:`zoo.vital.preset.vector_from_preset`. The study counts how often each switch is on and each option is
chosen, and summarises every continuous control over the presets where its module is on. The prior keeps
marginals only (no preset's joint vector), in the normalized space:

- a switch: P(on) with add-one smoothing;
- a categorical choice: option frequencies with add-0.25 smoothing, over the presets where it is heard;
- a continuous control: values shared by at least ``ATOM_SHARE`` of the presets become atoms (Vital's
  defaults, mostly: people leave many knobs where they are), the rest is summarised by 11 quantiles drawn
  from by inverse CDF; a control heard in fewer than ``MIN_PRESETS`` presets has no entry (the sampler
  falls back on its broad prior). So does ``wave_frame``: people's presets play their own wavetables, so
  their frame positions say nothing about Tier 1's sine-triangle-saw-square table.

Regenerate the packaged prior and the committed summary with::

    python -m zoo.vital.prior_study ../shared/presets/calibration.txt \\
        --prior zoo/vital/data/human_prior.json --summary benchmarks/results/preset_study/README.md
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.vital.preset import vector_from_preset
from zoo.vital.preset_sets import preset_paths
from zoo.vital.spec import VitalParamSpec
from zoo.vital.tier1 import tier1_spec

ATOM_SHARE = 0.2
CHOICE_SMOOTHING = 0.25
MIN_PRESETS = 5
QUANTILES = np.linspace(0.0, 1.0, 11)


@dataclass
class PresetStudy:
    """Tier-1 projections of a preset set: continuous (n, n_continuous) in [0, 1], categorical (n, n_categorical)."""

    spec: VitalParamSpec
    names: list[str]
    continuous: np.ndarray
    categorical: np.ndarray

    @classmethod
    def from_files(cls, paths: Sequence[Path], spec: VitalParamSpec | None = None) -> PresetStudy:
        spec = spec or tier1_spec()
        vectors = [vector_from_preset(p, spec) for p in paths]
        return cls(
            spec,
            [Path(p).stem for p in paths],
            np.stack([c for c, _ in vectors]),
            np.stack([k for _, k in vectors]),
        )

    def heard(self, gate: str | None) -> np.ndarray:
        """(n,) bool: presets where a control gated by ``gate`` is heard (all of them when ungated)."""
        if gate is None:
            return np.ones(len(self.names), dtype=bool)
        return self.categorical[:, self.spec.categorical_names.index(gate)] == 1


def _continuous_entry(values: np.ndarray) -> dict[str, Any] | None:
    if values.size < MIN_PRESETS:
        return None
    rounded = np.round(values.astype(np.float64), 5)
    unique, counts = np.unique(rounded, return_counts=True)
    atoms = [(float(v), c / values.size) for v, c in zip(unique, counts, strict=True) if c / values.size >= ATOM_SHARE]
    atom_values = {v for v, _ in atoms}
    rest = np.array([v for v in rounded if float(v) not in atom_values])
    return {
        "n": int(values.size),
        "atoms": [[v, round(p, 4)] for v, p in atoms],
        "quantiles": [round(float(q), 5) for q in np.quantile(rest, QUANTILES)] if rest.size else [],
    }


def estimate_prior(study: PresetStudy, source: str) -> dict[str, Any]:
    """The human prior of :class:`zoo.vital.sampler.PresetSampler` as JSON-able data (see the module doc)."""
    spec = study.spec
    switches, choices, continuous = {}, {}, {}
    for i, p in enumerate(spec.categorical):
        column = study.categorical[study.heard(p.gate), i]
        if p.is_switch:
            switches[p.name] = round((int(column.sum()) + 1) / (column.size + 2), 4)
        else:
            counts = np.bincount(column, minlength=len(p.options)) + CHOICE_SMOOTHING
            choices[p.name] = [round(float(c), 4) for c in counts / counts.sum()]
    for i, p in enumerate(spec.continuous):
        transfers = not p.name.endswith("_wave_frame")
        continuous[p.name] = _continuous_entry(study.continuous[study.heard(p.gate), i]) if transfers else None
    return {
        "source": source,
        "spec_version": spec.version,
        "n_presets": len(study.names),
        "switches": switches,
        "categorical": choices,
        "continuous": continuous,
    }


def prior_json(prior: dict[str, Any]) -> str:
    """The prior as JSON text with one line per parameter (readable diffs)."""
    text = json.dumps(prior, indent=1)
    for pattern in (r"\[[^\[\]{}]*\]", r"\[(\s*\[[^\[\]]*\],?)+\s*\]"):  # lists of numbers, then lists of those
        text = re.sub(pattern, lambda m: json.dumps(json.loads(m.group(0))), text)
    return text + "\n"


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _display(spec: VitalParamSpec, name: str, x: np.ndarray) -> tuple[np.ndarray, str]:
    """Normalized values -> what a person reads on the knob (Hz for cutoffs, seconds for envelope times)."""
    p = spec.continuous[spec.continuous_names.index(name)]
    raw = p.min + np.asarray(x, np.float64) * (p.max - p.min)
    raw = np.round(raw) if p.integer else raw
    if name.endswith("_cutoff"):
        return 440.0 * 2.0 ** ((raw - 69.0) / 12.0), "Hz"
    shown = np.array([p.display(float(v)) for v in raw])
    if p.scale == "quartic":
        return shown, "s"
    if name.endswith("_level"):
        return shown, "amplitude"
    return shown, "Hz" if name == "delay_frequency" else p.unit


def summary_markdown(study: PresetStudy, source: str) -> str:
    """A readable summary: switches, choices, and every continuous control's distribution in display units."""
    spec, n = study.spec, len(study.names)
    lines = [
        "# Human-made presets on Tier 1",
        "",
        f"{n} presets of `{source}`, each projected onto Tier 1 (`{spec.version}`) with "
        "`zoo.vital.preset.vector_from_preset`. Presets by Instatetragrammaton (CC BY 4.0). Written by "
        "`python -m zoo.vital.prior_study` (command in its module docstring).",
        "",
        "## How often each module is on",
        "",
        "| switch | on in | share |",
        "| --- | --- | --- |",
    ]
    for i, p in enumerate(spec.categorical):
        if p.is_switch:
            on = int(study.categorical[:, i].sum())
            lines.append(f"| `{p.name}` | {on}/{n} | {on / n:.0%} |")
    oscs = [spec.categorical_names.index(f"osc_{k}_on") for k in (1, 2, 3)]
    n_osc = np.bincount(study.categorical[:, oscs].sum(axis=1), minlength=4)
    effects = [i for i, p in enumerate(spec.categorical) if p.is_switch and not p.name.startswith(("osc_", "filter_"))]
    n_fx = study.categorical[:, effects].sum(axis=1)
    lines += [
        "",
        f"Oscillators on per preset: {', '.join(f'{k}: {c}' for k, c in enumerate(n_osc))}. "
        f"Effects on per preset: median {np.median(n_fx):g}, range {n_fx.min()}..{n_fx.max()}.",
        "",
        "## Choices (over the presets where the choice is heard)",
        "",
        "| parameter | heard in | options chosen |",
        "| --- | --- | --- |",
    ]
    for i, p in enumerate(spec.categorical):
        if not p.is_switch:
            column = study.categorical[study.heard(p.gate), i]
            counts = np.bincount(column, minlength=len(p.options))
            chosen = ", ".join(f"{p.options[k]} {c}" for k, c in enumerate(counts) if c)
            lines.append(f"| `{p.name}` | {column.size} | {chosen} |")
    lines += [
        "",
        "## Continuous controls (over the presets where the module is on)",
        "",
        "Quantiles in the unit Vital displays. *Most common* is the most frequent exact value and its share "
        "(often Vital's default: people leave many knobs where they are).",
        "",
        "| parameter | heard in | unit | 10 % | 25 % | median | 75 % | 90 % | most common |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, p in enumerate(spec.continuous):
        x = study.continuous[study.heard(p.gate), i]
        if not x.size:
            lines.append(f"| `{p.name}` | 0 | | | | | | | |")
            continue
        shown, unit = _display(spec, p.name, x)
        q = np.quantile(shown, [0.1, 0.25, 0.5, 0.75, 0.9])
        values, counts = np.unique(np.round(shown, 6), return_counts=True)
        top = int(counts.argmax())
        common = f"{_fmt(values[top])} ({counts[top] / x.size:.0%})"
        lines.append(f"| `{p.name}` | {x.size} | {unit} | " + " | ".join(_fmt(v) for v in q) + f" | {common} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Study human-made presets on Tier 1 and estimate the sampler prior.")
    parser.add_argument("presets", type=Path, help="A folder of .vital files or a list file (calibration.txt).")
    parser.add_argument("--prior", type=Path, help="Write the prior JSON here (zoo/vital/data/human_prior.json).")
    parser.add_argument("--summary", type=Path, help="Write the Markdown summary here.")
    args = parser.parse_args(argv)
    study = PresetStudy.from_files(preset_paths(args.presets))
    source = "/".join(args.presets.resolve().parts[-3:])
    if args.prior:
        args.prior.write_text(prior_json(estimate_prior(study, source)), encoding="utf-8")
    text = summary_markdown(study, source)
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(text, encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    main()
