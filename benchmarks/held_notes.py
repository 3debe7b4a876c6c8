"""Single held notes of the human-made presets through the serving path, with no search.

    python -m benchmarks.held_notes --presets evaluation --out benchmarks/results/phrases/held_notes

Each preset of the list plays MIDI 48, 60 and 72 held 1 s within 2 s (as ``zoo evaluate --presets`` renders
them); the render is sent as a WAV through ``serving.pipeline.prepare_recording`` (note finding and the
model's clip, as the server and ``zoo predict`` do) and the shipped bundle, and the network's preset is
rendered at the same note and compared with the whole target (``zoo.spectral.multiscale_spectral_distance``),
beside Vital's init preset at the same note (the baseline every method must beat).
Reports, per note, how many notes were found in the held note and where the model's clip started. To compare
two versions of the note finder, run it from each checkout (``PYTHONPATH=<checkout>``) and pair the JSON files
with ``--paired-with``.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np

NOTES = (48, 60, 72)


def run(list_name: str) -> list[dict]:
    import soundfile as sf

    from benchmarks.phrase_set import preset_paths, presets_dir
    from serving.backends import create_backend
    from serving.pipeline import AudioLimits, prepare_recording
    from serving.presets import PresetDecoder
    from zoo.artifact import default_artifact, load_artifact
    from zoo.spectral import multiscale_spectral_distance
    from zoo.vital.preset import init_preset
    from zoo.vital.render import VitalRenderer

    bundle = load_artifact(default_artifact(), verify=True)
    presets, runtime = PresetDecoder(bundle.card), create_backend(bundle, "onnx", "cpu")
    renderer, limits, rows, init = VitalRenderer(), AudioLimits(30.0), [], init_preset()
    for name in preset_paths(list_name):
        document = json.loads((presets_dir() / name).read_text())
        for midi in NOTES:
            target = renderer.render(document, midi, 0.8, 1.0, 2.0)
            if np.sqrt(np.mean(np.square(target))) < 1e-4:
                continue  # silent at this note
            wav = io.BytesIO()
            sf.write(wav, target, 44100, format="WAV")
            prepared = prepare_recording(wav.getvalue(), limits)
            outputs = runtime.run(prepared.clip[None])
            prediction = presets.decode([o[0] for o in outputs], name="held note")
            audio = renderer.render(prediction.document, midi, 0.8, 1.0, 2.0)
            distance = multiscale_spectral_distance(target, audio) if np.abs(audio).max() > 0 else None
            init_distance = multiscale_spectral_distance(target, renderer.render(init, midi, 0.8, 1.0, 2.0))
            rows.append(
                {
                    "preset": name,
                    "midi": midi,
                    "notes_found": len(prepared.phrase.notes),
                    "clip_onset_seconds": round(prepared.note.onset_sample / 44100, 4),
                    "distance": distance,
                    "init_distance": init_distance,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    from benchmarks.stats import paired_interval

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="evaluation", choices=("evaluation", "calibration"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/phrases/held_notes"))
    parser.add_argument("--paired-with", type=Path, default=None, help="another run's held_notes.json to pair with")
    args = parser.parse_args(argv)
    rows = run(args.presets)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "held_notes.json").write_text(json.dumps(rows, indent=1))
    d = np.array([r["distance"] for r in rows if r["distance"] is not None])
    init = np.array([r["init_distance"] for r in rows])
    lines = [
        f"# Held notes of the {args.presets} presets through the serving path (no search)",
        "",
        f"Command: `python -m benchmarks.held_notes --presets {args.presets} --out {args.out}`",
        "",
        f"{len(rows)} notes; distance of the network's preset to the target: mean {d.mean():.3f}, median "
        f"{np.median(d):.3f} (Vital's init preset: mean {init.mean():.3f}, median {np.median(init):.3f}); more than"
        f" one note found in {sum(r['notes_found'] > 1 for r in rows)}.",
    ]
    if args.paired_with is not None:
        other = {(r["preset"], r["midi"]): r["distance"] for r in json.loads(args.paired_with.read_text())}
        pairs = [(other[(r["preset"], r["midi"])], r["distance"]) for r in rows if other.get((r["preset"], r["midi"]))]
        pairs = [(a, b) for a, b in pairs if b is not None]
        mean, low, high = paired_interval(np.array([a - b for a, b in pairs]))
        lines.append(f"\nPaired with {args.paired_with} ({len(pairs)} notes): closer here by {mean:+.3f} "
                     f"[{low:+.3f}, {high:+.3f}].")  # fmt: skip
    (args.out / "held_notes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
