"""A wavetable taken from the target, and the ``single_cycle`` baseline, on human-made presets (no search).

    python -m benchmarks.wavetable_resynthesis --out benchmarks/results/wavetable

Every preset of ``evaluation.txt`` (in ``--presets-dir``: ``$ZOO_PRESETS_DIR``, else ``<repo>/../shared/presets``)
is rendered at MIDI 48, 60 and 72 (1 s note in 2 s, velocity 0.8) and loudness-normalised: that is the target.
Each method gets the target, its MIDI note and (unless said otherwise) its 1 s key-off time, and its preset
is rendered the same way; the figure is the multi-scale spectral distance to the target. Methods:

- ``init_preset``: Vital's init preset;
- ``single_cycle``: ``zoo.vital.single_cycle.single_cycle_preset``; ``single_cycle_full_envelope``: the same
  with the whole fitted ``env_1`` of the wavetable analysis (release and decay curve too), to tell what the
  envelope brings from what the table brings;
- ``wavetable``: ``zoo.vital.resynthesis.wavetable_preset`` with 8 keyframes; ``wavetable_k1``/``_k4``/``_k16``
  with 1, 4, 16; ``wavetable_keyoff_estimated`` without the key-off time (estimated from the envelope);
- ``rerender``: the target preset rendered again. Vital's renders of one preset differ (random phases, free
  LFOs, random modulation): this is the floor no method can go under.

Then three sounds that are not Vital (a Karplus-Strong plucked string, a sine sweep, a noise burst), with
nothing known but the audio: what the analysis finds and how far each method's render lands.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 44100
METHODS = (
    "init_preset",
    "single_cycle",
    "single_cycle_full_envelope",
    "wavetable",
    "wavetable_keyoff_estimated",
    "wavetable_k1",
    "wavetable_k4",
    "wavetable_k16",
    "rerender",
)


def _methods(target: np.ndarray, note: int, doc: dict, renderer) -> tuple[dict[str, np.ndarray], dict]:
    """Each method's render of one target (keyed by method) and facts about the analysis."""
    from zoo.vital.preset import init_preset
    from zoo.vital.resynthesis import analyse_note, analysis_preset
    from zoo.vital.single_cycle import single_cycle_preset

    t0 = time.perf_counter()
    analysis = analyse_note(target, midi=note, note_seconds=1.0)
    analysis_seconds = time.perf_counter() - t0
    single_cycle = single_cycle_preset(target, midi=note, note_seconds=1.0)
    full_envelope = copy.deepcopy(single_cycle)
    full_envelope["settings"].update(analysis.envelope.controls("env_1"))
    docs = {
        "init_preset": init_preset(),
        "single_cycle": single_cycle,
        "single_cycle_full_envelope": full_envelope,
        "wavetable": analysis_preset(analysis),
        "wavetable_keyoff_estimated": analysis_preset(analyse_note(target, midi=note)),
        **{f"wavetable_k{k}": analysis_preset(analyse_note(target, midi=note, n_keyframes=k, note_seconds=1.0))
           for k in (1, 4, 16)},
        "rerender": doc,
    }  # fmt: skip
    renders = {m: renderer.render(d, note) for m, d in docs.items()}
    return renders, {"pitched": analysis.pitched, "analysis_seconds": analysis_seconds, **analysis.summary()}


def evaluate_presets(presets_dir: Path, listing: str, notes: tuple[int, ...], limit: int | None = None) -> dict:
    from tqdm.auto import tqdm

    from zoo.audio import normalize_loudness
    from zoo.errors import ZooError
    from zoo.spectral import multiscale_spectral_distance
    from zoo.vital.preset import load_preset_file
    from zoo.vital.render import VitalRenderer

    renderer = VitalRenderer()
    names = [line.strip() for line in (presets_dir / listing).read_text().splitlines() if line.strip()][:limit]
    clips, skipped, render_seconds = [], [], []
    for name in tqdm(names, desc="presets"):
        doc = load_preset_file(presets_dir / name)
        for note in notes:
            t0 = time.perf_counter()
            raw = renderer.render(doc, note)
            render_seconds.append(time.perf_counter() - t0)
            try:
                target = normalize_loudness(raw)
                renders, facts = _methods(target, note, doc, renderer)
            except ZooError as e:  # a silent render: no target to match
                skipped.append(f"{name} at MIDI {note}: {e}")
                continue
            distances = {}
            for method, audio in renders.items():
                try:
                    distances[method] = multiscale_spectral_distance(target, audio)
                except ZooError:  # a silent render is as far as it gets
                    distances[method] = float("nan")
            clips.append({"preset": name, "note": note, "distance": distances, "analysis": facts})
    return {
        "clips": clips,
        "skipped": skipped,
        "median_render_seconds": float(np.median(render_seconds)),
        "n_presets": len(names),
    }


def summarise(clips: list[dict]) -> dict:
    """Mean and median per method over the clips where every method made sound, and head-to-head shares."""
    table = np.array([[c["distance"][m] for m in METHODS] for c in clips])  # (clips, methods)
    paired = ~np.isnan(table).any(axis=1)
    t = table[paired]
    col = {m: t[:, i] for i, m in enumerate(METHODS)}
    out = {"n_clips": int(len(clips)), "n_paired": int(paired.sum()), "methods": {}}
    for m in METHODS:
        out["methods"][m] = {
            "mean": float(col[m].mean()),
            "median": float(np.median(col[m])),
            "closer_than_init_share": float(np.mean(col[m] < col["init_preset"])),
            "closer_than_single_cycle_share": float(np.mean(col[m] < col["single_cycle"])),
            "silent_renders": int(np.isnan(table[:, METHODS.index(m)]).sum()),
        }
    out["wavetable_vs_single_cycle_mean_reduction"] = float(1 - col["wavetable"].mean() / col["single_cycle"].mean())
    out["unpitched_clips"] = int(sum(not c["analysis"]["pitched"] for c in clips))
    out["median_analysis_seconds"] = float(np.median([c["analysis"]["analysis_seconds"] for c in clips]))
    return out


# --------------------------------------------------------------------------------------------------
# Sounds that are not Vital


def karplus_strong(f0: float = 196.0, seconds: float = 2.0, decay: float = 0.996, seed: int = 0) -> np.ndarray:
    """A plucked string: a burst of noise in a delay line of one period with a two-point average."""
    rng = np.random.default_rng(seed)
    period = int(round(SR / f0))
    out = np.zeros(int(seconds * SR))
    out[:period] = rng.uniform(-1, 1, period)
    for i in range(period, len(out)):
        out[i] = decay * 0.5 * (out[i - period] + out[i - period - 1])
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def sine_sweep(f_start: float = 110.0, f_end: float = 880.0, seconds: float = 1.5) -> np.ndarray:
    """An exponential sine sweep held ``seconds`` in 2 s, 10 ms fades."""
    t = np.arange(int(seconds * SR)) / SR
    k = np.log(f_end / f_start) / seconds
    sweep = np.sin(2 * np.pi * f_start * np.expm1(k * t) / k)
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)
    return np.pad(0.5 * sweep * fade, (0, 2 * SR - len(t))).astype(np.float32)


def noise_burst(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """White noise with a 5 ms attack and a 0.3 s exponential decay."""
    t = np.arange(int(seconds * SR)) / SR
    noise = np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * noise * np.minimum(t / 0.005, 1.0) * np.exp(-t / 0.3)).astype(np.float32)


def other_sounds() -> list[dict]:
    from zoo.audio import normalize_loudness
    from zoo.notes import find_main_note
    from zoo.spectral import multiscale_spectral_distance
    from zoo.vital.preset import init_preset
    from zoo.vital.render import VitalRenderer
    from zoo.vital.resynthesis import analyse_note, analysis_preset
    from zoo.vital.single_cycle import single_cycle_preset

    renderer = VitalRenderer()
    rows = []
    for name, audio in (("karplus_strong_G3", karplus_strong()), ("sine_sweep_110_880", sine_sweep()),
                        ("noise_burst", noise_burst())):  # fmt: skip
        target = normalize_loudness(audio)
        note = find_main_note(target)
        analysis = analyse_note(target, note=note)
        held = float(min(max(analysis.note_seconds, 0.05), 2.0))
        docs = {"init_preset": init_preset(), "single_cycle": single_cycle_preset(target, note_seconds=held),
                "wavetable": analysis_preset(analysis)}  # fmt: skip
        renders = {m: renderer.render(d, analysis.midi, note_seconds=held) for m, d in docs.items()}
        heard = find_main_note(renders["wavetable"])
        rows.append({
            "sound": name,
            "note_found": note.to_dict(),
            "analysis": analysis.summary(),
            "distance": {m: multiscale_spectral_distance(target, a) for m, a in renders.items()},
            "wavetable_render_note": {"midi": heard.midi, "frequency_hz": round(heard.frequency_hz, 2),
                                      "pitched": heard.pitched},
        })  # fmt: skip
    return rows


# --------------------------------------------------------------------------------------------------


def _markdown(summary: dict, others: list[dict], command: str, meta: dict) -> str:
    lines = [
        "# Wavetable from the target vs `single_cycle` vs the init preset (no search)",
        "",
        f"Command (from the repository root, under the CPU lock): `{command}`",
        "",
        f"{summary['n_paired']} clips where every method made sound ({summary['n_clips']} targets, "
        f"{len(meta['skipped'])} skipped as silent): the {meta['n_presets']} presets of `{meta['list']}` at MIDI "
        f"{meta['notes']}, 1 s note in 2 s, velocity 0.8. Multi-scale spectral distance to the target "
        "(lower is closer).",
        "",
        "| method | mean | median | closer than init | closer than single_cycle |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m, s in summary["methods"].items():
        lines.append(
            f"| {m} | {s['mean']:.3f} | {s['median']:.3f} | {100 * s['closer_than_init_share']:.0f} % "
            f"| {100 * s['closer_than_single_cycle_share']:.0f} % |"
        )
    lines += [
        "",
        f"- wavetable vs single_cycle: {100 * summary['wavetable_vs_single_cycle_mean_reduction']:.0f} % lower mean.",
        f"- unpitched (noise fallback): {summary['unpitched_clips']} clips.",
        f"- analysis time (median): {summary['median_analysis_seconds']:.3f} s, "
        f"{summary['median_analysis_seconds'] / meta['median_render_seconds']:.1f}x one 2 s render "
        f"({meta['median_render_seconds']:.3f} s) in the same run; machine shared (load {meta['load']}).",
        "",
        "## Sounds that are not Vital (nothing known but the audio)",
        "",
        "| sound | pitched | f0 found (Hz) | MIDI | key-off (s) | init | single_cycle | wavetable "
        "| wavetable plays at (Hz) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in others:
        a, d, h = r["analysis"], r["distance"], r["wavetable_render_note"]
        lines.append(
            f"| {r['sound']} | {a['pitched']} | {a['f0_hz']} | {a['midi']} | {a['note_seconds']} "
            f"| {d['init_preset']:.3f} | {d['single_cycle']:.3f} | {d['wavetable']:.3f} "
            f"| {h['frequency_hz'] if h['pitched'] else 'unpitched'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_dir = Path(os.environ.get("ZOO_PRESETS_DIR") or ROOT.parent / "shared" / "presets")
    parser.add_argument("--presets-dir", type=Path, default=default_dir)
    parser.add_argument("--list", default="evaluation.txt")
    parser.add_argument("--notes", default="48,60,72")
    parser.add_argument("--limit", type=int, default=None, help="only the first N presets (a quick check)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "wavetable")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    notes = tuple(int(n) for n in args.notes.split(","))
    load_before = os.getloadavg()
    result = evaluate_presets(args.presets_dir, args.list, notes, args.limit)
    summary = summarise(result["clips"])
    others = other_sounds()
    load = f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    meta = {"skipped": result["skipped"], "median_render_seconds": result["median_render_seconds"], "load": load}
    meta |= {"n_presets": result["n_presets"], "list": args.list, "notes": args.notes}
    command = f"python -m benchmarks.wavetable_resynthesis --list {args.list} --notes {args.notes}"
    command += f" --limit {args.limit}" if args.limit else ""
    command += f" --out {args.out.resolve().relative_to(ROOT)}" if args.out.resolve().is_relative_to(ROOT) else ""
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"command": command, "summary": summary, "non_vital": others, **meta, "clips": result["clips"]}
    (args.out / "wavetable.json").write_text(json.dumps(report, indent=1))
    (args.out / "wavetable.md").write_text(_markdown(summary, others, command, meta))
    print((args.out / "wavetable.md").read_text())


if __name__ == "__main__":
    main()
