"""Note finding (``zoo.notes.find_notes``) on phrases rendered from human-made Vital presets, scored with mir_eval.

    flock /tmp/zoo-cpu.lock python -m benchmarks.note_finding --presets evaluation --seed 0 \\
        --out benchmarks/results/phrases

The phrases come from :func:`benchmarks.phrase_set.phrase_set` (2 per preset: one legato, one staccato). For
every phrase, the notes found are matched to the notes played:

- **onset F-measure**: ``mir_eval.onset.f_measure`` with a 50 ms window; pooled over all phrases by summing
  the matches of ``mir_eval.util.match_events`` (the per-phrase mean is reported beside it);
- **pitch accuracy**: over the played notes whose onset was matched, the share whose MIDI note is the pitch
  the preset sounds at (the note played plus the preset's transposition, measured with pYIN); presets
  without a steady pitch are left out of it (and said so); the share right up to octaves is given too;
- **note F-measure** (``mir_eval.transcription``, onsets within 50 ms and pitch within 50 cents, offsets
  ignored) and, for the held lengths, the same with offsets (within 20 % of the note or 50 ms).

Writes ``note_finding_<presets>.json`` (every figure, per preset and per phrase), ``note_finding_<presets>.md``
(tables) and ``phrases_<presets>.json`` (the notes played: the ground truth, without audio). With
``--cache DIR`` the rendered phrases are kept as ``.npz`` there and reused (not committed).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.phrase_set import (
    RenderedPhrase,
    ScoreNote,
    non_vital_phrases,
    phrase_set,
    preset_paths,
    preset_phrases,
)
from zoo.optional import import_optional

WINDOW_S = 0.05


def _midi_hz(midi: np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69) / 12)


def score_phrase(phrase: RenderedPhrase, found: list[Any]) -> dict[str, Any]:
    """Counts and figures for one phrase: ``found`` are :class:`zoo.notes.Note` objects."""
    mir_eval = import_optional("mir_eval")
    import_optional("mir_eval.transcription")

    ref_on = np.array([n.onset_seconds for n in phrase.notes])
    est_on = np.array([n.onset_seconds for n in found])
    matches = mir_eval.util.match_events(ref_on, est_on, WINDOW_S) if len(est_on) else []
    out: dict[str, Any] = {
        "preset": phrase.preset,
        "index": phrase.index,
        "style": phrase.style,
        "n_ref": len(ref_on),
        "n_est": len(est_on),
        "onset_matches": len(matches),
        "onset_f": float(mir_eval.onset.f_measure(ref_on, est_on, window=WINDOW_S)[0]) if len(est_on) else 0.0,
        "pitched_preset": phrase.transpose is not None,
    }
    if phrase.transpose is None:
        return out
    truth = np.array([n.midi + phrase.transpose for n in phrase.notes])
    est_midi = np.array([n.midi for n in found])
    right = [int(est_midi[j] == truth[i]) for i, j in matches]
    octave = [int((est_midi[j] - truth[i]) % 12 == 0) for i, j in matches]
    ref_iv = np.array([[n.onset_seconds, n.onset_seconds + n.duration_seconds] for n in phrase.notes])
    est_iv = np.array([[n.onset_seconds, n.onset_seconds + max(n.duration_seconds, 1e-3)] for n in found])
    kw = {"onset_tolerance": WINDOW_S, "pitch_tolerance": 50.0}
    note = mir_eval.transcription.precision_recall_f1_overlap(
        ref_iv, _midi_hz(truth), est_iv, _midi_hz(est_midi), offset_ratio=None, **kw
    )
    offsets = mir_eval.transcription.precision_recall_f1_overlap(
        ref_iv, _midi_hz(truth), est_iv, _midi_hz(est_midi), offset_ratio=0.2, offset_min_tolerance=0.05, **kw
    )
    out.update(pitch_right=sum(right), pitch_octave=sum(octave), note_f=float(note[2]), note_offset_f=float(offsets[2]))
    out["errors"] = [
        {"onset": round(float(ref_on[i]), 3), "truth": int(truth[i]), "found": int(est_midi[j])}
        for (i, j), ok in zip(matches, right, strict=True)
        if not ok
    ]
    return out


def _pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    tp = sum(r["onset_matches"] for r in rows)
    n_ref, n_est = sum(r["n_ref"] for r in rows), sum(r["n_est"] for r in rows)
    p, r = tp / max(n_est, 1), tp / max(n_ref, 1)
    pitched = [x for x in rows if x["pitched_preset"]]
    matched = sum(x["onset_matches"] for x in pitched)
    return {
        "phrases": len(rows),
        "notes_played": n_ref,
        "notes_found": n_est,
        "onset_precision": round(p, 4),
        "onset_recall": round(r, 4),
        "onset_f": round(2 * p * r / max(p + r, 1e-12), 4),
        "onset_f_mean_per_phrase": round(float(np.mean([x["onset_f"] for x in rows])), 4),
        "pitch_accuracy": round(sum(x["pitch_right"] for x in pitched) / max(matched, 1), 4) if pitched else None,
        "pitch_accuracy_up_to_octave": round(sum(x["pitch_octave"] for x in pitched) / max(matched, 1), 4)
        if pitched
        else None,
        "pitch_scored_notes": matched,
        "note_f_mean": round(float(np.mean([x["note_f"] for x in pitched])), 4) if pitched else None,
        "note_with_offset_f_mean": round(float(np.mean([x["note_offset_f"] for x in pitched])), 4) if pitched else None,
    }


def _phrases(list_name: str, seed: int, per_preset: int, cache: Path | None) -> Iterator[RenderedPhrase]:
    """The phrase set, preset by preset; with ``cache``, each preset's phrases are kept there (.npz) and
    read back instead of rendered when they hold the same score."""
    if cache is None:
        yield from phrase_set(list_name, seed, per_preset)
        return
    from zoo.vital.render import VitalRenderer

    cache.mkdir(parents=True, exist_ok=True)
    renderer = None
    for name in preset_paths(list_name):
        file = cache / f"{Path(name).stem}_{seed}_{per_preset}.npz"
        if file.is_file():
            stored = np.load(file)
            scores = json.loads(str(stored["scores"]))
            for k, item in enumerate(scores):
                notes = tuple(ScoreNote(**n) for n in item.pop("notes"))
                yield RenderedPhrase(notes=notes, audio=stored[f"audio_{k}"], **item)
            continue
        renderer = renderer or VitalRenderer()
        phrases = preset_phrases(renderer, name, seed, per_preset)
        audio = {f"audio_{k}": p.audio for k, p in enumerate(phrases)}
        np.savez_compressed(file, scores=json.dumps([p.score() for p in phrases]), **audio)
        yield from phrases


def run(list_name: str, seed: int, per_preset: int, cache: Path | None) -> dict[str, Any]:
    """Render (or read) the phrases, find their notes, score them; everything as plain data."""
    from zoo.errors import AudioDecodeError
    from zoo.notes import find_notes

    rows, scores, seconds_audio, seconds_finding = [], [], 0.0, 0.0
    for phrase in _phrases(list_name, seed, per_preset, cache):
        t0 = time.perf_counter()
        try:
            found = find_notes(phrase.audio)
        except AudioDecodeError:  # the preset is silent at these notes: every note is missed
            found = []
        seconds_finding += time.perf_counter() - t0
        seconds_audio += phrase.seconds
        rows.append(score_phrase(phrase, found))
        rows[-1]["found"] = [n.summary() for n in found]
        scores.append(phrase.score())
    by_preset: dict[str, list] = defaultdict(list)
    by_style: dict[str, list] = defaultdict(list)
    for r in rows:
        by_preset[r["preset"]].append(r)
        by_style[r["style"]].append(r)
    transposes = {s["preset"]: s["transpose"] for s in scores}
    groups = {}
    if list_name == "calibration":  # the note-onset network trained on two thirds of these presets
        from training.data.note_onsets import held_out

        kept_back = set(held_out(preset_paths(list_name)))
        groups = {
            "held out of the onset network's training": [r for r in rows if r["preset"] in kept_back],
            "in the onset network's training (other melodies)": [r for r in rows if r["preset"] not in kept_back],
        }
    others = []
    for phrase in non_vital_phrases(seed):
        found = find_notes(phrase.audio)
        others.append({**score_phrase(phrase, found), "played": phrase.score()["notes"]})
        others[-1]["found"] = [n.summary() for n in found]
    return {
        "presets": list_name,
        "seed": seed,
        "phrases_per_preset": per_preset,
        "overall": _pooled(rows),
        "by_style": {k: _pooled(v) for k, v in by_style.items()},
        "by_group": {k: _pooled(v) for k, v in groups.items()},
        "by_preset": {k: {**_pooled(v), "transpose": transposes[k]} for k, v in by_preset.items()},
        "phrases": rows,
        "not_vital": others,
        "scores": scores,
        "note_finding_seconds_per_audio_second": round(seconds_finding / seconds_audio, 4),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def markdown(result: dict[str, Any], command: str) -> str:
    """The tables of a run: overall, per style, per preset (worst onset F first)."""
    o = result["overall"]
    lines = [
        f"# Note finding on phrases of the {result['presets']} presets",
        "",
        f"Command: `{command}`",
        "",
        f"{o['phrases']} phrases, {o['notes_played']} notes played, {o['notes_found']} found. Onsets match within "
        f"{int(WINDOW_S * 1000)} ms; pitch is the sounding pitch (note played + the preset's transposition).",
        "",
        "| | onset F | precision | recall | pitch accuracy | up to octave | note F (no offsets) | note F (offsets) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [("all", o)] + sorted(result["by_style"].items()) + list(result.get("by_group", {}).items())
    for name, x in rows:
        lines.append(
            f"| {name} | {x['onset_f']:.3f} | {x['onset_precision']:.3f} | {x['onset_recall']:.3f} | "
            f"{_pct(x['pitch_accuracy'])} | {_pct(x['pitch_accuracy_up_to_octave'])} | "
            f"{x['note_f_mean'] if x['note_f_mean'] is not None else '-'} | "
            f"{x['note_with_offset_f_mean'] if x['note_with_offset_f_mean'] is not None else '-'} |"
        )
    lines += [
        "",
        "Per preset (worst onset F first); transpose: sounding minus played, `-` without a steady pitch.",
        "",
        "| preset | transpose | played | found | onset F | pitch accuracy |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, x in sorted(result["by_preset"].items(), key=lambda kv: (kv[1]["onset_f"], kv[0])):
        t = "-" if x["transpose"] is None else f"{x['transpose']:+d}"
        lines.append(
            f"| {Path(name).stem} | {t} | {x['notes_played']} | {x['notes_found']} | {x['onset_f']:.3f} | "
            f"{_pct(x['pitch_accuracy'])} |"
        )
    lines += ["", "Inputs that are not Vital (`benchmarks.phrase_set.non_vital_phrases`):", ""]
    for x in result["not_vital"]:
        played = " ".join(f"{n['midi']}@{n['onset_seconds']:.2f}" for n in x["played"])
        found = " ".join(f"{n['midi']}{'' if n['pitched'] else '?'}@{n['onset_seconds']:.2f}" for n in x["found"])
        lines.append(f"- {x['preset']}: played {played}; found {found} (onset F {x['onset_f']:.2f}; ? = unpitched)")
    lines.append(f"\nNote finding ran at {result['note_finding_seconds_per_audio_second']} s per second of audio.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="evaluation", choices=("evaluation", "calibration"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phrases-per-preset", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/phrases"))
    parser.add_argument("--cache", type=Path, default=None, help="keep rendered phrases here (.npz) and reuse them")
    args = parser.parse_args(argv)
    result = run(args.presets, args.seed, args.phrases_per_preset, args.cache)
    command = (
        f"python -m benchmarks.note_finding --presets {args.presets} --seed {args.seed} "
        f"--phrases-per-preset {args.phrases_per_preset} --out {args.out}"
    )
    result["command"] = command
    args.out.mkdir(parents=True, exist_ok=True)
    scores = result.pop("scores")
    (args.out / f"phrases_{args.presets}.json").write_text(json.dumps(scores, indent=1) + "\n")
    (args.out / f"note_finding_{args.presets}.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / f"note_finding_{args.presets}.md").write_text(markdown(result, command))
    print(markdown(result, command))


if __name__ == "__main__":
    main()
