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
    typer.Argument(help="Artifact folder of `zoo export` (default: the newest under artifacts/).", show_default=False),
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
    from serving.server import ServeConfig, build_server, run_server
    from zoo.artifact import latest_artifact, load_artifact

    config = ServeConfig(
        artifact_dir=artifact if artifact is not None else latest_artifact(),
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
    server = build_server(config, accelerator, _threads_per_worker(workers) if accelerator == "cpu" else None)
    bundle = load_artifact(config.artifact_dir, verify=False)
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
    audio: Annotated[list[Path], typer.Argument(help="Recordings (WAV, FLAC, OGG).", show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the .vital files.")] = Path("."),
    preview: Annotated[bool, typer.Option("--preview", help="Also render each preset with Vital (WAV).")] = False,
    artifact: Annotated[
        Path | None, typer.Option("--artifact", help="Artifact folder (default: the newest under artifacts/).")
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

    from rich.table import Table

    from serving.backends import create_backend, resolve_device
    from serving.pipeline import AudioLimits, prepare_recording
    from serving.presets import PresetDecoder, PreviewRenderer
    from zoo.artifact import latest_artifact, load_artifact
    from zoo.errors import ZooError

    seconds = _search_budget(search_seconds)
    bundle = load_artifact(artifact if artifact is not None else latest_artifact(), verify=True)
    limits = AudioLimits(max_seconds)
    presets = PresetDecoder(bundle.card)
    accelerator, why = resolve_device(backend.value, device.value)
    runtime = create_backend(bundle, backend.value, accelerator)
    previewer = PreviewRenderer(presets.spec) if preview else None
    console.print(f"{why}; model {bundle.model_name} {bundle.version}", highlight=False, soft_wrap=True)
    out.mkdir(parents=True, exist_ok=True)
    searcher = _FileSearch(bundle, presets, seconds, search_workers) if seconds > 0 else None

    table = Table(title="Predicted presets")
    columns = ("recording", "note", "onset s", "preset", "spectral distance")
    for col in columns[:4] + (("distance: network -> search",) if searcher else ()) + columns[4:]:
        table.add_column(col)
    failed = 0
    used: set[str] = set()
    try:
        for path in audio:
            try:
                prepared = prepare_recording(path, limits)
            except (ZooError, ValueError, OSError) as e:
                err_console.print(f"[bold red]Error:[/] {e}", highlight=False, soft_wrap=True)  # names the file
                failed += 1
                continue
            outputs = runtime.run(prepared.clip[None])
            prediction = presets.decode([o[0] for o in outputs], name=f"{path.stem} ({bundle.model_name})")
            stem = path.stem if path.stem not in used else path.name  # take.wav and take.flac both get a file
            used.add(stem)
            target = out / f"{stem}.vital"
            searched = (
                searcher.run(path.name, prepared, outputs, prediction.document["preset_name"]) if searcher else None
            )
            target.write_text(json.dumps(searched.document if searched else prediction.document))
            distance = ""
            if previewer is not None:
                if searched is not None and searcher is not None:
                    result = searcher.preview(searched)
                else:
                    result = previewer.preview(prediction, prepared.note.midi, prepared.clip)
                (out / f"{stem}.preview.wav").write_bytes(base64.b64decode(result["wav_base64"]))
                distance = "silent" if result["spectral_distance"] is None else f"{result['spectral_distance']:.3f}"
            note = prepared.note
            onset = f"{note.onset_sample / note.sample_rate:.3f}"
            row = [path.name, f"{note.name} ({note.midi})", onset, target.name]
            table.add_row(*row, *([_search_cell(searched)] if searcher else []), distance)
    finally:
        if searcher is not None:
            searcher.close()
    console.print(table)
    console.print(f"presets written to {out}/", soft_wrap=True)
    if failed:
        raise typer.Exit(code=1)


def _search_budget(text: str) -> float:
    """``--search-seconds`` as a number of seconds (0 .. 3600); a one-line error otherwise."""
    import math

    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 <= seconds <= 3600):
        raise ValueError(f"`--search-seconds` must be a number of seconds from 0 to 3600, got {text!r}")
    return seconds


def _search_cell(result) -> str:
    if result is None:
        return ""
    network = dict(result.proposals).get("model")
    start = f"{network.distance:.3f}" if network is not None and not network.failed else "silent"
    return f"{start} -> {result.distance_end:.3f} ({result.renders} renders)"


class _FileSearch:
    """``zoo predict``'s search: one render pool for every file, a progress bar showing the best distance."""

    def __init__(self, bundle, presets, seconds: float, workers: int | None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from zoo.matching import NeighbourIndex

        self.presets, self.seconds = presets, seconds
        self.neighbours = NeighbourIndex.from_artifact(bundle, presets.spec)
        # The workers start (a few seconds) while the first recording is decoded and predicted.
        self._starter = ThreadPoolExecutor(1)
        self._pool = self._starter.submit(_start_pool, workers, presets.spec)

    @property
    def pool(self):
        if not self._pool.done():
            with console.status("starting the render workers of the search ..."):
                self._pool.exception()
        return self._pool.result()

    def run(self, label: str, prepared, outputs, name: str):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from zoo.matching import Target, match
        from zoo.matching.target import note_target

        pool = self.pool

        self.note = note_target(prepared.clip, prepared.note)
        continuous = outputs[self.presets.continuous_index][0]
        logits = [outputs[i][0] for i in self.presets.categorical_index]
        columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"searching {label}", total=self.seconds)

            def show(progress, best) -> None:
                bar.update(task, completed=progress.seconds, description=f"{label}: best {progress.best_distance:.3f}")

            return match(
                Target((self.note,)),
                pool,
                continuous=continuous,
                logits=logits,
                neighbours=self.neighbours,
                seconds=self.seconds,
                on_progress=show,
                name=name,
            )

    def preview(self, result) -> dict:
        from serving.search import preview

        return preview(self.pool, result.best, self.note)

    def close(self) -> None:
        self._starter.shutdown()
        if self._pool.exception() is None:
            self._pool.result().close()


def _start_pool(workers: int | None, spec):
    import zoo.matching.matcher  # noqa: F401 - its imports (cma) take seconds: here, not in the first search
    from zoo.matching import RenderPool

    return RenderPool(workers, spec)
