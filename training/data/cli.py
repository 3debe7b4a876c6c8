"""`zoo data ...`: generate the Vital dataset, precompute its mels, inspect it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.console import console, err_console, user_errors

app = typer.Typer(help="The Vital dataset: generate with the Vital engine, precompute mels, inspect.",
                  no_args_is_help=True)  # fmt: skip


def _parse_notes(text: str) -> tuple[int, ...]:
    try:
        notes = tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise ValueError(f"--notes must be comma-separated MIDI notes such as 48,60,72, got {text!r}") from None
    if not notes:
        raise ValueError("--notes needs at least one MIDI note")
    return notes


def _parse_shard(text: str) -> tuple[int, int]:
    parts = text.split("/")
    try:
        index, count = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    return index, count


@app.command("generate")
@user_errors
def generate_cmd(
    n_presets: Annotated[int, typer.Option("--n-presets", help="Presets to draw (over all shards).")],
    out: Annotated[Path, typer.Option("--out", help="HDF5 file to write, e.g. data/vital.h5.")],
    workers: Annotated[int, typer.Option(help="Rendering processes, one Vital synth each.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the preset stream; same seed and shard, same presets.")] = 0,
    notes: Annotated[str, typer.Option(help="MIDI notes each preset is rendered at, comma-separated.")] = "48,60,72",
    shard: Annotated[str, typer.Option(help="Render only shard i of n (presets i, i+n, ...), as i/n.")] = "0/1",
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run's <out>.partial.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    prior: Annotated[
        str | None,
        typer.Option(
            help="Sampler prior: broad, human, simple, mixture, or weights broad,human,simple such as 0.4,0.4,0.2 "
            "(default: the sampler's, see docs/vital_tier1.md)."
        ),
    ] = None,
    vary_notes: Annotated[
        bool, typer.Option("--vary-notes", help="Draw each render's velocity and held length instead of 0.8 and 1 s.")
    ] = False,
) -> None:
    """Render random Tier-1 presets with Vital (each at every note, 1 s held in 2 s, mono) into HDF5."""
    from training.data.generate import generate_dataset, partial_path
    from zoo.vital.sampler import DEFAULT_PRIOR, PriorMix

    note_tuple = _parse_notes(notes)
    shard_pair = _parse_shard(shard)
    try:
        report = generate_dataset(
            out, n_presets, workers=workers, seed=seed, notes=note_tuple, shard=shard_pair, resume=resume,
            progress=progress, prior=PriorMix.parse(prior or DEFAULT_PRIOR), vary_notes=vary_notes,
        )  # fmt: skip
    except KeyboardInterrupt:
        err_console.print(
            f"[yellow]Interrupted.[/] Finished presets are kept in {partial_path(out)}; "
            "run the same command with --resume to continue."
        )
        raise typer.Exit(code=130) from None
    console.print(report.summary(), highlight=False)
    console.print(f"rejection rate: {100 * report.rejection_rate:.1f} % of renders", highlight=False)


@app.command("precompute-mels")
@user_errors
def precompute_cmd(
    path: Annotated[Path, typer.Argument(help="A dataset file written by `zoo data generate`.")],
    batch_size: Annotated[int, typer.Option(help="Clips per front-end batch.")] = 64,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Compute the log-mel of every clip into features/mel_spectrogram (running it again is harmless)."""
    import torch

    from training.data.precompute import precompute_mels

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    precompute_mels(path, batch_size=batch_size, progress=progress)
    console.print(f"mel spectrograms ready in {path}", highlight=False)


@app.command("inspect")
@user_errors
def inspect_cmd(
    path: Annotated[Path, typer.Argument(help="A dataset file (or an interrupted run's .partial file).")],
    plots: Annotated[
        Path | None, typer.Option(help="Folder for the PNGs (default: <file name>_inspect next to the file).")
    ] = None,
    n_spectrograms: Annotated[int, typer.Option(help="Spectrograms to draw.")] = 6,
) -> None:
    """Counts, schema, rejection rate; parameter histograms and a few spectrograms as PNG."""
    from rich.table import Table

    from training.data.inspect_file import plot_parameters, plot_spectrograms, summarize

    s = summarize(path)
    table = Table(title=f"{path}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    c = s.counters
    rejected = c["n_rejected_silent"] + c["n_rejected_non_finite"] + c["n_rejected_clipped"]
    rows = [
        ("complete", "yes" if s.complete else "no (resume it with `zoo data generate ... --resume`)"),
        ("renders stored", f"{s.n_rows:,}"),
        ("presets", f"{s.n_presets:,} ({c['n_presets_failed']} failed every attempt)"),
        ("notes", ", ".join(map(str, s.notes))),
        ("parameters", f"{s.n_continuous} continuous, {s.n_categorical} categorical"),
        ("rejected renders", f"{rejected:,} of {c['n_renders_total']:,} ({100 * s.rejection_rate:.1f} %): "
                             f"silent {c['n_rejected_silent']}, non-finite {c['n_rejected_non_finite']}, "
                             f"clipped {c['n_rejected_clipped']}"),
        ("mel spectrograms", "yes" if s.has_mels else f"no (run `zoo data precompute-mels {path}`)"),
    ]  # fmt: skip
    rows += [(k, str(v)) for k, v in s.attrs.items()]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    folder = plots or path.with_name(path.name.split(".")[0] + "_inspect")
    folder.mkdir(parents=True, exist_ok=True)
    if s.n_rows:
        plot_parameters(path, folder / "params.png")
        plot_spectrograms(path, folder / "spectrograms.png", n=n_spectrograms)
        console.print(f"plots: {folder / 'params.png'}, {folder / 'spectrograms.png'}", highlight=False)


@app.command("songs")
@user_errors
def songs_cmd(
    out: Annotated[Path, typer.Option("--out", help="HDF5 file to write, e.g. data/songs.h5.")],
    n_songs: Annotated[int, typer.Option("--n-songs", help="Songs to render (24 s each).")] = 192,
    workers: Annotated[int, typer.Option(help="Rendering processes, one Vital synth each.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the songs and their presets.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Render verse/chorus songs with Vital, labelled per frame, for chorus-cnn (`zoo train chorus-cnn --data`)."""
    from training.data.songs import generate_songs

    path = generate_songs(out, n_songs, seed=seed, workers=workers, progress=progress)
    console.print(f"{n_songs} songs written to {path}", highlight=False)


@app.command("onsets")
@user_errors
def onsets_cmd(
    out: Annotated[Path, typer.Option("--out", help="HDF5 file to write, e.g. data/note-onsets.h5.")],
    n_phrases: Annotated[int, typer.Option("--n-phrases", help="Phrases to render (12 s each).")] = 3000,
    presets: Annotated[
        Path | None,
        typer.Option(
            "--presets",
            help="A folder of .vital presets, or a text file listing them (one path per line, relative to the "
            "file), that play half of the phrases; the Tier-1 sampler plays the rest. Without it, the sampler "
            "plays every phrase.",
        ),
    ] = None,
    hold_out: Annotated[
        bool,
        typer.Option(help="Leave every third preset of the list out (kept to decide on the note finder)."),
    ] = True,
    workers: Annotated[int, typer.Option(help="Rendering processes, one Vital synth each.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the melodies and sampled presets (not 0: the benchmark's).")] = 1,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Render phrases with Vital, labelled with their onsets per frame, for note-onset-cnn
    (`zoo train note-onset-cnn --data`)."""
    from training.data.note_onsets import generate_phrases, preset_files

    files = preset_files(presets, hold_out=hold_out) if presets is not None else []
    path = generate_phrases(out, n_phrases, seed=seed, presets=files, workers=workers, progress=progress)
    console.print(f"{n_phrases} phrases ({len(files)} human-made presets) written to {path}", highlight=False)
