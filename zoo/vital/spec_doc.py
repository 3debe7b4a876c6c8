"""The spec as a Markdown document (``docs/vital_tier1.md`` is this module's output; a test keeps them equal).

Regenerate with ``python -m zoo.vital.spec_doc docs/vital_tier1.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from zoo.vital.spec import VitalParamSpec
from zoo.vital.tier1 import tier1_spec

_SCALE_DOC = {
    "linear": "x = (v - min) / (max - min); Vital shows v",
    "quadratic": "x = (v - min) / (max - min); Vital shows v^2 (amplitude, detune)",
    "quartic": "x = (v - min) / (max - min); Vital shows v^4 seconds",
    "exponential": "x = (v - min) / (max - min); Vital shows 2^v (Hz or seconds)",
    "indexed": "x = (v - min) / (max - min); v is whole, rounded when denormalized",
}


def _num(v: float) -> str:
    return f"{v:.6g}"


def spec_markdown(spec: VitalParamSpec | None = None) -> str:
    """A Markdown description of ``spec`` (Tier 1 by default): mapping, fixed settings, both tables."""
    spec = spec or tier1_spec()
    lines = [
        f"# Vital parameter spec `{spec.version}`",
        "",
        "Generated from `zoo/vital/tier1.py` and `zoo/vital/sampler.py` by `python -m zoo.vital.spec_doc "
        "docs/vital_tier1.md`; do not edit.",
        "",
        f"{spec.n_continuous} continuous and {spec.n_categorical} categorical parameters in "
        f"{len(spec.groups)} groups ({', '.join(spec.groups)}). Ranges are the ones vita "
        "0.1.0 reports for each control (a test checks them against the live engine).",
        "",
        "## The space the network predicts in",
        "",
        "Every continuous parameter is predicted as x in [0, 1], linear in the value v that Vital stores "
        "(the number in the `.vital` file), which is the knob's own position on its curve:",
        "",
        "| scale | mapping |",
        "| --- | --- |",
    ]
    lines += [f"| {scale} | {doc} |" for scale, doc in _SCALE_DOC.items()]
    lines += [
        "",
        "Denormalizing clips x to [0, 1] first. Categorical parameters are option indices; for an `*_on` switch "
        "index 1 is On. A parameter's *gate* is the switch without which it has no effect; losses can mask it.",
        "",
        "## What every written preset has",
        "",
        f"- wavetable `{spec.wavetable}` in oscillators 1-3"
        + (" (sine, triangle, saw, square at frames 0, 85, 170, 256)" if spec.wavetable == "basic_shapes" else ""),
    ]
    lines += [f"- fixed control `{name}` = {_num(value)}" for name, value in spec.fixed.items()]
    lines += [f"- modulation slot {slot}: `{src}` -> `{dst}`" for slot, (src, dst) in enumerate(spec.modulations, 1)]
    lines += [
        "- everything else as in Vital's init preset (routing: osc 1 -> filter 1, osc 2 -> filter 2, "
        "osc 3 -> effects; env 1 is the amplitude envelope)",
        "",
        "## Continuous parameters",
        "",
        "| # | name | group | min | max | scale | unit | gate |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, p in enumerate(spec.continuous):
        name = f"`{p.name}`" + (f" ({p.modulation[0]} -> {p.modulation[1]})" if p.modulation else "")
        lines.append(
            f"| {i} | {name} | {p.group} | {_num(p.min)} | {_num(p.max)} | {p.scale} | {p.unit} | {p.gate or ''} |"
        )
    lines += [
        "",
        "## Categorical parameters",
        "",
        "| # | name | group | options | gate |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, p in enumerate(spec.categorical):
        options = ", ".join(f"{j}: {o}" for j, o in enumerate(p.options))
        lines.append(f"| {i} | `{p.name}` | {p.group} | {options} | {p.gate or ''} |")
    return "\n".join(lines + [""] + sampler_markdown()) + "\n"


def sampler_markdown() -> list[str]:
    """The preset sampler's section: its components, the named mixes, and each switch's probability."""
    from zoo.vital import sampler

    prior = sampler.human_prior()
    lines = [
        "## The preset sampler (`zoo.vital.sampler`)",
        "",
        "The synthetic dataset's presets are drawn per preset from one of three components (the module "
        "docstring has the details):",
        "",
        "- **broad**: ranges a sound designer would use, every effect on with probability 0.15-0.3;",
        f"- **human**: the marginals of the {prior['n_presets']} presets of `{prior['source']}` projected onto "
        "Tier 1 (`zoo/vital/data/human_prior.json`, written with a readable summary by `python -m "
        "zoo.vital.prior_study`; the summary is in `benchmarks/results/preset_study/README.md`);",
        "- **simple**: a human draw cut down to a starting patch: oscillator 1 alone and plain, filter 1 on "
        "sometimes, filter 2 off, at most a reverb, chorus or delay.",
        "",
        "Named mixes (`zoo data generate --prior NAME`, or three weights `broad,human,simple`); the default is "
        f"`{sampler.DEFAULT_PRIOR}`:",
        "",
        "| prior | broad | human | simple |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| `{name}` | {m.broad:g} | {m.human:g} | {m.simple:g} |" for name, m in sampler.PRIORS.items()]
    lines += [
        "",
        "The shipped model trained on `0.4,0.4,0.2` (the `shipped` recipe of `zoo train vital-resnet18`). The "
        "weights were chosen by measurement among three mixes, each trained with the shipped recipe's other "
        "settings (augmentations, every layer training, 1,500 presets x 3 notes, 4 epochs) and scored by the "
        "network's rendered preset on the calibration presets at MIDI 48/60/72: `0.4,0.4,0.2` 1.876 mean "
        "distance, `0.2,0.6,0.2` 2.040 (0.4/0.4/0.2 closer by +0.134 [-0.002, +0.276]), `0.6,0.2,0.2` 2.115 "
        "(+0.211 [+0.089, +0.333]). The human prior alone (conv1..layer2 frozen, no augmentation) was 0.177 "
        "[-0.012, +0.372] farther than the mixture under the same settings. The human component is estimated "
        "from the calibration presets, the same presets these decisions are scored on, which favours it if "
        "anything; the evaluation presets were scored after (`benchmarks/results/proposal/README.md`). "
        "`broad` stays the default of `zoo data generate` and of the default recipe, so earlier datasets and "
        "figures can be made again.",
        "",
        "Probability that each switch is on, per component:",
        "",
        "| switch | broad | human | simple |",
        "| --- | --- | --- | --- |",
    ]
    for name, probs in sampler.switch_probabilities().items():
        lines.append(f"| `{name}` | " + " | ".join(f"{probs[c]:.2f}" for c in ("broad", "human", "simple")) + " |")
    lines += [
        "",
        "At least one oscillator is always on. Every preset is a pure function of (seed, index, attempt); "
        "`broad` alone draws exactly the presets of the sampler before the other components existed.",
    ]
    return lines


if __name__ == "__main__":
    text = spec_markdown()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
