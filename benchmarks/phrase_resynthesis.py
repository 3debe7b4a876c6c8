"""Resynthesising whole phrases: ``single_cycle`` vs Tier-1 search vs wavetable + Tier-1 search, at one budget.

    nohup flock /tmp/zoo-cpu.lock python -m benchmarks.phrase_resynthesis \\
        --checkpoint /work/i12/runs/vital-resnet18/dev/best.pt --renders 80 --notes 4 \\
        --out benchmarks/results/phrases > phrase_resynthesis.log 2>&1 &

One phrase per preset of ``evaluation.txt`` (``benchmarks.phrase_set``; phrase index = the preset's position
modulo 3, so legato, staccato and mixed phrases take turns), rendered by Vital: that is the target. Each
method sees only the audio. The recording's notes are found (``zoo.notes.find_phrase``, scored against the
notes played with ``mir_eval`` as ``benchmarks.note_finding`` does) and the search inputs built as the server
builds them (``zoo.matching.recording.search_inputs``: the ``--notes`` most prominent notes, each clip as
long as its note plus 1 s of release, and the wavetable analysis of the main note). Methods:

- ``single_cycle``: ``zoo.vital.single_cycle.single_cycle_preset`` of the main note (its audio up to the next
  note, its MIDI note and held length): what the public tool does; no search, one document;
- ``tier1_search``: ``zoo.matching.match`` from the network's proposals (prediction, 3 variants, init preset),
  ``--renders`` Vital renders;
- ``wavetable_search``: the same plus the wavetable starts (``model+wavetable``, ``wavetable``), same renders.

No neighbour index (both searches start from the same network proposals). Every method's preset then plays
the whole phrase: the notes found, each at its onset, held length and velocity (what the preview plays), 3 s
of release at most, as long as the target. Two distances to the target phrase, both on loudness-normalised
mono audio: ``zoo.spectral.multiscale_spectral_distance`` (the search's objective, on the whole phrase) and
``zoo.spectral.mfcc_distance`` (20 MFCCs as librosa computes them, mean Euclidean distance over frames),
which the search never sees. The same for three inputs that are not Vital
(``benchmarks.phrase_set.non_vital_phrases``). Rows are appended to ``rows.jsonl`` as phrases finish; a rerun
continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import cpu_model, load_average
from benchmarks.note_finding import _pooled, score_phrase
from benchmarks.phrase_set import RenderedPhrase, non_vital_phrases, preset_paths, preset_phrases
from benchmarks.search_inputs import load_network, network_outputs

METHODS = ("single_cycle", "tier1_search", "wavetable_search")
PHRASE_RELEASE_SECONDS = 3.0  # as the targets are rendered (benchmarks.phrase_set)


def _distances(target: np.ndarray, audio: np.ndarray) -> dict[str, float | None]:
    from zoo.errors import AudioDecodeError
    from zoo.spectral import mfcc_distance, multiscale_spectral_distance

    try:
        return {"spectral": multiscale_spectral_distance(target, audio), "mfcc": mfcc_distance(target, audio)}
    except AudioDecodeError:  # a silent render: no distance
        return {"spectral": None, "mfcc": None}


def _single_cycle(audio: np.ndarray, phrase: Any) -> Any:
    """The single_cycle document of the main note, as a candidate: its own Tier-1 vector on it as base."""
    from zoo.matching import Candidate
    from zoo.vital.preset import vector_from_preset
    from zoo.vital.single_cycle import single_cycle_preset

    main = phrase.main
    segment = audio[main.onset_sample : max(main.end_sample, main.onset_sample + 2048)]
    doc = single_cycle_preset(segment, midi=main.midi, note_seconds=max(main.duration_seconds, 0.05))
    return Candidate(*vector_from_preset(doc), "single_cycle", doc)


def resynthesise(item: RenderedPhrase, model: Any, pool: Any, renderer: Any, args: argparse.Namespace) -> dict:
    """Every method on one phrase: distances of the whole phrase, what the search did, the notes found."""
    from zoo.errors import AudioDecodeError
    from zoo.matching import SearchConfig, match
    from zoo.matching.recording import search_inputs
    from zoo.notes import prepare_phrase
    from zoo.vital.phrase import render_phrase

    row: dict[str, Any] = {"preset": item.preset, "style": item.style, "notes_played": len(item.notes)}
    try:
        clip, phrase = prepare_phrase(item.audio)
    except AudioDecodeError as e:
        return {**row, "skipped": str(e)}
    row["note_finding"] = score_phrase(item, list(phrase.notes))
    t0 = time.perf_counter()
    inputs = search_inputs(item.audio, phrase, args.notes)
    row["inputs_seconds"] = round(time.perf_counter() - t0, 3)
    row["notes_matched"] = len(inputs.target.notes)
    row["analysis"] = inputs.analysis.summary()
    continuous, logits = network_outputs(model, clip)
    presets = {"single_cycle": _single_cycle(item.audio, phrase)}
    row["search"] = {}
    config = SearchConfig(extra_controls=args.extra_controls)
    for method, analysis in (("tier1_search", None), ("wavetable_search", inputs.analysis)):
        result = match(
            inputs.target, pool, continuous=continuous, logits=logits, seconds=None,
            max_renders=args.renders, seed=args.seed, analysis=analysis, config=config,
        )  # fmt: skip
        presets[method] = result.best
        row["search"][method] = {**result.summary(), "proposals": {k: s.distance for k, s in result.proposals if s}}
        row["search"][method]["extra_controls"] = result.best.controls
    row["distance"] = {}
    for method, candidate in presets.items():
        renderer.set_base(candidate.base)
        renderer.set_vector(candidate.continuous, candidate.categorical, candidate.controls)
        audio = render_phrase(renderer, phrase.notes, item.seconds, release_seconds=PHRASE_RELEASE_SECONDS)
        row["distance"][method] = _distances(item.audio, audio)
    return row


def _phrases(list_name: str, seed: int, limit: int | None, done: set[str]):
    from zoo.vital.render import VitalRenderer

    renderer = VitalRenderer()
    for k, name in enumerate(preset_paths(list_name)[:limit]):
        if name not in done:
            yield from preset_phrases(renderer, name, seed, indices=(k % 3,))


def run(args: argparse.Namespace) -> None:
    import torch
    from tqdm.auto import tqdm

    from zoo.matching import RenderPool
    from zoo.vital.render import VitalRenderer

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    rows_file = args.out / "rows.jsonl"
    done = {json.loads(line)["preset"] for line in rows_file.read_text().splitlines()} if rows_file.exists() else set()
    model = load_network(args.checkpoint)
    renderer = VitalRenderer()
    total = len(preset_paths(args.list)[: args.limit]) + 3
    with RenderPool(args.workers) as pool, tqdm(total=total, initial=len(done), desc="phrases") as bar:
        others = [p for p in non_vital_phrases(args.seed) if p.preset not in done]
        for item in [*_phrases(args.list, args.seed, args.limit, done), *others]:
            t0 = time.perf_counter()
            row = resynthesise(item, model, pool, renderer, args)
            row["seconds"] = round(time.perf_counter() - t0, 2)
            row["not_vital"] = item.preset.startswith("numpy/")
            with rows_file.open("a") as f:
                f.write(json.dumps(row) + "\n")
            bar.update(1)


# --------------------------------------------------------------------------------------------------
# Summary


def summarise(rows: list[dict]) -> dict:
    """Per method mean and median of both distances over the phrases where every method made sound, the
    share of phrases where wavetable + search beats the others, and the targets."""
    paired = [r for r in rows if "distance" in r and all(r["distance"][m]["spectral"] is not None for m in METHODS)]
    out: dict[str, Any] = {"phrases": len(rows), "paired": len(paired), "methods": {}}
    for measure in ("spectral", "mfcc"):
        table = np.array([[r["distance"][m][measure] for m in METHODS] for r in paired])  # (phrases, methods)
        col = dict(zip(METHODS, table.T, strict=True))
        out["methods"][measure] = {m: {"mean": float(c.mean()), "median": float(np.median(c))} for m, c in col.items()}
        wt, sc, t1 = col["wavetable_search"], col["single_cycle"], col["tier1_search"]
        out[measure] = {
            "wavetable_beats_single_cycle_share": float(np.mean(wt < sc)),
            "wavetable_vs_single_cycle_mean_reduction": float(1 - wt.mean() / sc.mean()),
            "wavetable_beats_tier1_share": float(np.mean(wt < t1)),
            "wavetable_vs_tier1_mean_reduction": float(1 - wt.mean() / t1.mean()),
        }
    s = out["spectral"]
    out["targets"] = {
        "closer_than_single_cycle_on_80pct": s["wavetable_beats_single_cycle_share"] >= 0.8,
        "mean_30pct_under_single_cycle": s["wavetable_vs_single_cycle_mean_reduction"] >= 0.3,
        "closer_than_tier1_on_average": s["wavetable_vs_tier1_mean_reduction"] > 0,
    }
    starts: dict[str, int] = {}
    for r in paired:
        start = r["search"]["wavetable_search"]["start"]
        starts[start] = starts.get(start, 0) + 1
    out["wavetable_search_starts"] = starts
    out["unpitched_analyses"] = sum(not r["analysis"]["pitched"] for r in paired)
    out["note_finding"] = _pooled([r["note_finding"] for r in rows if "note_finding" in r])
    return out


def markdown(summary: dict, others: list[dict], meta: dict) -> str:
    lines = [
        "# Whole phrases: single_cycle vs Tier-1 search vs wavetable + Tier-1 search",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"{summary['paired']} phrases where every method made sound ({summary['phrases']} rendered), one per "
        f"preset of `{meta['list']}`; searches of {meta['renders']} Vital renders each over the "
        f"{meta['notes']} most prominent notes. Distance of the whole phrase played by each preset to the "
        "target phrase (lower is closer).",
        "",
        "| method | spectral mean | spectral median | MFCC mean | MFCC median |",
        "| --- | --- | --- | --- | --- |",
    ]
    sp, mf = summary["methods"]["spectral"], summary["methods"]["mfcc"]
    for m in METHODS:
        lines.append(
            f"| {m} | {sp[m]['mean']:.3f} | {sp[m]['median']:.3f} | {mf[m]['mean']:.2f} | {mf[m]['median']:.2f} |"
        )
    lines += ["", "| wavetable_search against | measure | closer on | mean lower by |", "| --- | --- | --- | --- |"]
    for measure in ("spectral", "mfcc"):
        x = summary[measure]
        lines.append(
            f"| single_cycle | {measure} | {100 * x['wavetable_beats_single_cycle_share']:.0f} % "
            f"| {100 * x['wavetable_vs_single_cycle_mean_reduction']:.0f} % |"
        )
        lines.append(
            f"| tier1_search | {measure} | {100 * x['wavetable_beats_tier1_share']:.0f} % "
            f"| {100 * x['wavetable_vs_tier1_mean_reduction']:.0f} % |"
        )
    nf = summary["note_finding"]
    lines += [
        "",
        f"Targets (spectral): {json.dumps(summary['targets'])}. Wavetable search started from: "
        f"{json.dumps(summary['wavetable_search_starts'])}; unpitched analyses: {summary['unpitched_analyses']}.",
        "",
        f"Note finding on these phrases (mir_eval, 50 ms): onset F {nf['onset_f']:.3f} (precision "
        f"{nf['onset_precision']:.3f}, recall {nf['onset_recall']:.3f}), pitch accuracy "
        f"{100 * (nf['pitch_accuracy'] or 0):.1f} % over {nf['pitch_scored_notes']} matched notes of pitched presets.",
        "",
        "## Inputs that are not Vital",
        "",
        "| input | notes played | found | pitched analysis | single_cycle | tier1_search | wavetable_search | start |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in others:
        d = {m: r["distance"][m]["spectral"] for m in METHODS}
        cells = " | ".join("silent" if d[m] is None else f"{d[m]:.3f}" for m in METHODS)
        lines.append(
            f"| {r['preset']} | {r['notes_played']} | {r['note_finding']['n_est']} | {r['analysis']['pitched']} "
            f"| {cells} | {r['search']['wavetable_search']['start']} |"
        )
    lines += ["", f"Machine: {meta['machine']}."]
    return "\n".join(lines) + "\n"


def report(args: argparse.Namespace, command: str) -> None:
    rows = [json.loads(line) for line in (args.out / "rows.jsonl").read_text().splitlines()]
    vital = [r for r in rows if not r.get("not_vital")]
    others = [r for r in rows if r.get("not_vital") and "distance" in r]
    summary = summarise(vital)
    meta = {"command": command, "list": args.list, "renders": args.renders, "notes": args.notes}
    meta["machine"] = f"{cpu_model()}, load average {load_average()} at the end, shared with a model training run"
    meta["seconds_per_phrase_median"] = float(np.median([r["seconds"] for r in rows]))
    (args.out / "phrase_resynthesis.json").write_text(json.dumps({"summary": summary, **meta}, indent=1) + "\n")
    (args.out / "phrase_resynthesis.md").write_text(markdown(summary, others, meta))
    _plot(vital, args.out / "phrase_resynthesis.png")
    print((args.out / "phrase_resynthesis.md").read_text())


PAIRED_MEASURES = {
    "the network's proposal on the matched notes (the search's objective)": ("tier1_search", "proposal"),
    "the best start after scoring the proposals and the search (objective)": ("tier1_search", "end"),
    "whole phrase, Tier-1 search (spectral)": ("tier1_search", "spectral"),
    "whole phrase, wavetable + search (spectral)": ("wavetable_search", "spectral"),
}


def _paired_value(row: dict, method: str, what: str) -> float | None:
    if what == "proposal":
        return row["search"][method]["proposals"].get("model")
    if what == "end":
        return row["search"][method]["distance_end"]
    return row["distance"][method][what]


def compare_runs(out: Path, other: Path) -> str:
    """Markdown: two runs of the same phrases (e.g. two checkpoints), paired per phrase, ``out``'s closer by."""
    from benchmarks.stats import paired_interval

    def vital_rows(folder: Path) -> dict[str, dict]:
        rows = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]
        return {r["preset"]: r for r in rows if not r.get("not_vital") and "search" in r}

    a, b = vital_rows(out), vital_rows(other)
    names = sorted(set(a) & set(b))
    lines = [
        f"# {out.name} against {other.name}: the same {len(names)} phrases, paired",
        "",
        f"Closer by: the mean of (`{other.name}` - `{out.name}`) over phrases where both made sound, with its 95 % "
        "bootstrap interval (> 0: "
        f"`{out.name}` is closer). A silent render counts as distance 100 in the search's objective.",
        "",
        f"| distance | {out.name} mean / median | {other.name} mean / median | closer by | {out.name} closer on |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, (method, what) in PAIRED_MEASURES.items():
        pairs = [(_paired_value(a[n], method, what), _paired_value(b[n], method, what)) for n in names]
        x, y = np.array([p for p in pairs if None not in p], dtype=np.float64).reshape(-1, 2).T
        mean, lo, hi = paired_interval(y - x)
        lines.append(
            f"| {label} | {x.mean():.3f} / {np.median(x):.3f} | {y.mean():.3f} / {np.median(y):.3f} "
            f"| {mean:+.3f} [{lo:+.3f}, {hi:+.3f}] | {np.mean(x < y):.0%} of {x.size} |"
        )
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if "distance" in r and all(r["distance"][m]["spectral"] is not None for m in METHODS)]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    wt = np.array([r["distance"]["wavetable_search"]["spectral"] for r in rows])
    for other, marker in (("single_cycle", "o"), ("tier1_search", "x")):
        ax.scatter([r["distance"][other]["spectral"] for r in rows], wt, marker=marker, label=other, alpha=0.7)
    lo, hi = ax.get_xlim()
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("other method's distance to the target phrase")
    ax.set_ylabel("wavetable_search's distance")
    ax.set_title("Whole phrases (under the diagonal: wavetable + search closer)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="a vital-resnet18 checkpoint (best.pt)")
    parser.add_argument("--list", default="evaluation", choices=("evaluation", "calibration"))
    parser.add_argument("--renders", type=int, default=80, help="Vital renders per search")
    parser.add_argument("--notes", type=int, default=4, help="most prominent notes matched")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N presets (a quick check)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/phrases"))
    parser.add_argument("--extra-controls", action="store_true", help="search the wavetable's sweep time and depth")
    parser.add_argument("--report-only", action="store_true", help="summarise rows.jsonl without running")
    parser.add_argument(
        "--paired-with", type=Path, default=None, help="another run's --out on the same phrases: compare, paired"
    )
    args = parser.parse_args(argv)
    if args.paired_with is not None:
        table = compare_runs(args.out, args.paired_with)
        (args.out / f"paired_with_{args.paired_with.name}.md").write_text(table)
        print(table)
        return
    if args.checkpoint is None:
        parser.error("--checkpoint is required to run or report")
    command = (
        f"python -m benchmarks.phrase_resynthesis --checkpoint {args.checkpoint} --list {args.list} "
        f"--renders {args.renders} --notes {args.notes} --workers {args.workers} --seed {args.seed} --out {args.out}"
        + (f" --limit {args.limit}" if args.limit else "")
        + (" --extra-controls" if args.extra_controls else "")
    )
    if not args.report_only:
        run(args)
    report(args, command)


if __name__ == "__main__":
    main()
