"""``zoo serve`` (the HTTP server) and ``zoo predict`` (the same pipeline on files, no HTTP).
Heavy imports happen inside the commands."""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from zoo.console import console, err_console, user_errors
from zoo.matching import DEFAULT_SEARCH_SECONDS

app = typer.Typer(no_args_is_help=True)


class BackendChoice(str, Enum):
    onnx = "onnx"
    torchscript = "torchscript"


class DeviceChoice(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


ArtifactArg = Annotated[
    Path | None,
    typer.Argument(
        help="Artifact folder of `zoo export` (default: the newest under artifacts/, else the shipped vital-resnet18).",
        show_default=False,
    ),
]
BackendOpt = Annotated[BackendChoice, typer.Option("--backend", help="Runtime for the exported model.")]
DeviceOpt = Annotated[DeviceChoice, typer.Option("--device", help="auto: CUDA when the backend can use a GPU.")]


def _threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


@app.command("serve")
@user_errors
def serve_cmd(
    artifact: ArtifactArg = None,
    backend: BackendOpt = BackendChoice.onnx,
    device: DeviceOpt = DeviceChoice.auto,
    host: Annotated[str, typer.Option("--host", help="127.0.0.1: this machine only; 0.0.0.0: every interface.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port")] = 8000,
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", help="Requests batched into one pass.")] = 8,
    batch_timeout: Annotated[float, typer.Option("--batch-timeout", help="Seconds to wait to fill a batch.")] = 0.01,
    workers: Annotated[int, typer.Option("--workers", help="Inference worker processes per device.")] = 1,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="Longest recording accepted.")] = 30.0,
    max_payload_mb: Annotated[float, typer.Option("--max-payload-mb", help="Largest request body.")] = 32.0,
    log_level: Annotated[str, typer.Option("--log-level", help="Server log level.")] = "info",
    max_search_seconds: Annotated[
        float, typer.Option("--max-search-seconds", help="Longest preset search a request may ask for (0: none).")
    ] = 30.0,
    search_workers: Annotated[
        int | None, typer.Option("--search-workers", help="Render processes for searches (default: one per core).")
    ] = None,
) -> None:
    """Serve audio -> Vital preset over HTTP (POST /predict, GET /health, docs at /docs).

    Set ZOO_API_KEY to require that key in the X-API-Key header of every prediction."""
    from serving.backends import resolve_device
    from serving.request_reader import API_KEY_ENV
    from serving.server import ServeConfig, build_server, load_served_artifact, run_server
    from zoo.artifact import default_artifact

    config = ServeConfig(
        artifact_dir=artifact if artifact is not None else default_artifact(),
        backend=backend.value,
        device=device.value,
        host=host,
        port=port,
        max_batch_size=max_batch_size,
        batch_timeout=batch_timeout,
        workers=workers,
        max_seconds=max_seconds,
        max_payload_mb=max_payload_mb,
        log_level=log_level,
        api_key=os.environ.get(API_KEY_ENV) or None,
        max_search_seconds=max_search_seconds,
        search_workers=search_workers,
    )
    accelerator, why = resolve_device(config.backend, config.device)
    bundle = load_served_artifact(config)  # the card is read and checked once, here
    threads = _threads_per_worker(workers) if accelerator == "cpu" else None
    server = build_server(config, accelerator, threads, bundle)
    console.print(why, soft_wrap=True)
    console.print(
        f"serving [bold]{bundle.model_name}[/] {bundle.version} from {config.artifact_dir} at "
        f"http://{host}:{port}/predict  (docs /docs, health /health; "
        f"{'API key required' if config.api_key else f'no API key: set {API_KEY_ENV} to require one'})",
        highlight=False,
        soft_wrap=True,
    )
    run_server(server, config)


@app.command("predict")
@user_errors
def predict_cmd(
    audio: Annotated[
        list[Path], typer.Argument(help="Recordings (WAV, FLAC, OGG, MP3, AIFF, AU).", show_default=False)
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the .vital files.")] = Path("."),
    preview: Annotated[
        bool, typer.Option("--preview", help="Also render each preset playing the recording's notes (WAV).")
    ] = False,
    artifact: Annotated[
        Path | None,
        typer.Option(
            "--artifact", help="Artifact folder (default: the newest under artifacts/, else the shipped model)."
        ),
    ] = None,
    backend: BackendOpt = BackendChoice.onnx,
    device: DeviceOpt = DeviceChoice.auto,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="Longest recording accepted.")] = 30.0,
    search_seconds: Annotated[
        str,
        typer.Option(
            "--search-seconds",
            help="Seconds per recording to search for a closer preset, rendering candidates with Vital "
            "(0: the network's preset alone).",
        ),
    ] = f"{DEFAULT_SEARCH_SECONDS:g}",
    search_workers: Annotated[
        int | None, typer.Option("--search-workers", help="Render processes of the search (default: one per core).")
    ] = None,
) -> None:
    """Predict a Vital preset for each recording, offline: the server's pipeline without HTTP, then a search
    for a closer preset with Vital renders in the loop."""
    import base64

    from rich.markup import escape
    from rich.table import Table

    from serving.backends import create_backend, resolve_device
    from serving.pipeline import AudioLimits, prepare_recording
    from serving.presets import PresetDecoder, PreviewRenderer
    from serving.search import FileSearch, search_budget, search_cell
    from zoo.artifact import default_artifact, load_artifact

    seconds = search_budget(search_seconds)
    bundle = load_artifact(artifact if artifact is not None else default_artifact(), verify=True)
    limits = AudioLimits(max_seconds)
    presets = PresetDecoder(bundle.card)
    accelerator, why = resolve_device(backend.value, device.value)
    runtime = create_backend(bundle, backend.value, accelerator)
    previewer = PreviewRenderer(presets.spec) if preview else None
    console.print(f"{why}; model {bundle.model_name} {bundle.version}", highlight=False, soft_wrap=True)
    out.mkdir(parents=True, exist_ok=True)
    searcher = FileSearch(bundle, presets, seconds, search_workers) if seconds > 0 else None

    table = Table(title="Predicted presets")
    columns = ("recording", "note", "onset s", "notes", "preset", "spectral distance")
    for col in columns[:5] + (("distance: network -> search",) if searcher else ()) + columns[5:]:
        table.add_column(col)
    failed = 0
    used: set[str] = set()
    for path in audio:
        try:
            prepared = prepare_recording(path, limits)
            outputs = runtime.run(prepared.clip[None])
            prediction = presets.decode([o[0] for o in outputs], name=f"{path.stem} ({bundle.model_name})")
            stem = path.stem if path.stem not in used else path.name  # take.wav and take.flac both get a file
            target = out / f"{stem}.vital"
            name = prediction.document["preset_name"]
            searched = searcher.run(path.name, prepared, outputs, name) if searcher is not None else None
            target.write_text(json.dumps(searched.document if searched is not None else prediction.document))
            used.add(stem)
            distance = ""
            if previewer is not None:
                if searched is not None and searcher is not None:
                    result = searcher.preview(searched)
                else:
                    result = previewer.preview(prediction, prepared.note.midi, prepared.clip, prepared.phrase)
                (out / f"{stem}.preview.wav").write_bytes(base64.b64decode(result["wav_base64"]))
                distance = "silent" if result["spectral_distance"] is None else f"{result['spectral_distance']:.3f}"
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the others: each is reported, in one line
            failed += 1
            err_console.print(f"[bold red]Error:[/] {escape(_file_error(path, e))}", highlight=False, soft_wrap=True)
            continue
        note = prepared.note
        onset = f"{note.onset_sample / note.sample_rate:.3f}"
        melody = " ".join(n.name for n in prepared.phrase.notes) if prepared.phrase else note.name
        searched_cell = [search_cell(searched)] if searcher is not None else []
        table.add_row(path.name, f"{note.name} ({note.midi})", onset, melody, target.name, *searched_cell, distance)
    if searcher is not None:
        searcher.close()  # on an error, the workers (daemon processes) end with this process
    if table.row_count:  # nothing to show, and nothing was written, when every recording failed
        console.print(table)
        console.print(f"presets written to {out}/", soft_wrap=True)
    if failed:
        err_console.print(f"{failed} of {len(audio)} recordings failed", highlight=False)
        raise typer.Exit(code=1)


def _file_error(path: Path, e: Exception) -> str:
    """One line naming the file: the message of a user error, or the type of an unexpected one (a bug)."""
    from zoo.errors import ZooError

    if isinstance(e, (ZooError, ValueError, OSError)):
        message = str(e) or type(e).__name__
    else:
        message = f"unexpected {type(e).__name__} ({e}); please report it with the file"
    message = " ".join(message.split())
    return message if str(path) in message else f"{path}: {message}"
