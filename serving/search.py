"""The preset search in the server and in ``zoo predict``.

Searching requests (``search_seconds`` > 0): the search runs in the HTTP process, outside the batch.

The inference worker answers a searching request like any other (one batched model step), but instead of
the final JSON it returns a :class:`SearchingResponse`: the fast-path answer plus what the search needs (the
recording and its notes, the network's outputs). That object travels back to the HTTP process, where Starlette calls
it; it builds the search's inputs (``zoo.matching.recording.search_inputs``: the most prominent notes of the
phrase, and the wavetable its main note proposes), runs the search (``zoo.matching.match``) in a thread on
the process's render pool (:class:`SearchService`) and only then sends the answer, whose preview plays the
whole phrase with the searched preset. The batched loop of the inference worker is never
held up, and the render workers run at a lower CPU priority, so the fast path keeps its share of the cores.

This module must not use ``from __future__ import annotations`` (its objects cross processes by pickle and
LitServe inspects the API's annotations).
"""

import asyncio
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.responses import JSONResponse, Response

log = logging.getLogger("zoo.serving")

DEFAULT_MAX_SEARCH_SECONDS = 30.0
RENDER_NICE = 10  # render workers yield the cores to the model step and the HTTP loop


@dataclass
class SearchRequest:
    """What the search of one request needs; built in the inference worker, pickled to the HTTP process."""

    seconds: float
    audio: np.ndarray  # the whole recording, mono float32 at 44.1 kHz
    phrase: Any  # zoo.notes.Phrase: every note of the recording
    clip: np.ndarray  # the main note's 2 s model input (the preview's distance is measured against it)
    continuous: np.ndarray  # (n_continuous,) the network's prediction
    logits: list  # one (n_options,) array per categorical head
    name: str
    preview: bool


class SearchService:
    """The render pool of one HTTP process: started in the background when the server starts, shared by
    every searching request, closed at shutdown."""

    def __init__(self, artifact_dir: Path, workers: int | None = None, nice: int = RENDER_NICE) -> None:
        self.artifact_dir, self.workers, self.nice = Path(artifact_dir), workers, nice
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        self.pool: Any = None
        self.neighbours: Any = None
        self.spec: Any = None
        self.error: str | None = None
        self._previewer: Any = None
        self._preview_lock = threading.Lock()

    def start(self) -> None:
        """Start the pool in a background thread (idempotent)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._start, name="search-service", daemon=True).start()

    def _start(self) -> None:
        try:
            from zoo.artifact import load_artifact
            from zoo.matching import NeighbourIndex, RenderPool
            from zoo.vital.spec import VitalParamSpec

            artifact = load_artifact(self.artifact_dir, verify=False)  # verified at start-up
            self.spec = VitalParamSpec.from_dict(artifact.card.spec)
            self.neighbours = NeighbourIndex.from_artifact(artifact, self.spec)
            self.pool = RenderPool(self.workers, self.spec, nice=self.nice)
            log.info("search ready: %d render workers", self.pool.n_workers)
        except Exception as e:  # noqa: BLE001 - kept and reported by every searching request
            log.exception("the search's render pool could not start")
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self._ready.set()

    def run(self, request: SearchRequest) -> tuple[Any, Any]:
        """Search for one request (blocking: call it from a thread). Returns the ``SearchResult`` and the
        ``SearchInputs`` it matched."""
        from zoo.matching import match
        from zoo.matching.recording import search_inputs

        self.start()
        self._ready.wait()
        if self.pool is None:
            raise RuntimeError(f"the search is unavailable: {self.error}")
        inputs = search_inputs(request.audio, request.phrase)
        result = match(
            inputs.target,
            self.pool,
            continuous=request.continuous,
            logits=request.logits,
            neighbours=self.neighbours,
            seconds=request.seconds,
            name=request.name,
            analysis=inputs.analysis,
        )
        return result, inputs

    def preview(self, result: Any, request: SearchRequest) -> dict:
        """The searched preset playing the request's phrase (one renderer per process, one request at a time)."""
        from serving.presets import PreviewRenderer

        with self._preview_lock:
            if self._previewer is None:
                self._previewer = PreviewRenderer(self.spec)
            return preview(self._previewer, result.best, request.phrase, request.clip)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


_service: SearchService | None = None


def configure(artifact_dir: Path, workers: int | None = None) -> SearchService:
    """Set this process's search service (the server does it before its HTTP processes fork)."""
    global _service
    _service = SearchService(artifact_dir, workers)
    return _service


def service() -> SearchService:
    if _service is None:
        raise RuntimeError("the search is not configured on this server")
    return _service


def search_workers(api_processes: int) -> int:
    """Render workers per HTTP process: the cores shared among them."""
    return max(1, (os.cpu_count() or 1) // max(1, api_processes))


class SearchingResponse(Response):
    """An answer that finishes itself: Starlette calls it in the HTTP process, it runs the search there and
    sends the fast-path answer updated with the searched preset and its ``search`` summary."""

    def __init__(self, answer: dict, request: SearchRequest, received_at: float) -> None:
        super().__init__(b"", media_type="application/json")
        self.answer, self.request, self.received_at = answer, request, received_at

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            body = await asyncio.to_thread(self._search)
            response: Response = Response(body, media_type="application/json")
        except Exception as e:  # noqa: BLE001 - one request's failed search is its own 503, never a crash
            log.exception("a search failed")
            detail = str(e) if str(e).startswith("the search is unavailable") else "internal error while searching"
            response = JSONResponse({"detail": detail, "error": "search_failed"}, status_code=503)
        await response(scope, receive, send)

    def _search(self) -> bytes:
        t0 = time.perf_counter()
        svc = service()
        result, inputs = svc.run(self.request)
        answer, timings = self.answer, self.answer["timings_ms"]
        answer.update(_describe(result, self.request, svc.spec))
        answer["search"] = search_summary(result, inputs)
        timings["search"] = round((time.perf_counter() - t0) * 1e3, 2)
        if self.request.preview:
            t1 = time.perf_counter()
            answer["preview"] = svc.preview(result, self.request)
            timings["preview"] = round((time.perf_counter() - t1) * 1e3, 2)
        timings["total"] = round((time.time() - self.received_at) * 1e3, 2)
        return json.dumps(answer).encode()


def _describe(result: Any, request: SearchRequest, spec: Any) -> dict:
    """The answer's ``parameters``, ``categorical`` and ``preset`` for the searched preset; a categorical
    option's probability is the network's for that option."""
    from zoo.matching.candidates import softmax

    settings = result.document["settings"]
    parameters = {p.name: float(settings[p.name]) for p in (*spec.continuous, *spec.categorical)}
    categorical = {}
    for p, k, logits in zip(spec.categorical, result.best.categorical, request.logits, strict=True):
        probability = float(softmax(logits)[k])
        categorical[p.name] = {"option": p.options[k], "index": int(k), "probability": round(probability, 4)}
    return {"parameters": parameters, "categorical": categorical, "preset": result.document}


def search_summary(result: Any, inputs: Any) -> dict:
    """The answer's ``search``: ``SearchResult.summary`` (``start``: the proposal the search went on from),
    the notes matched, and whether the preset plays the wavetable taken from the recording."""
    from zoo.matching.candidates import MODEL_WAVETABLE, WAVETABLE

    summary = result.summary()
    summary["notes_matched"] = len(inputs.target.notes)
    summary["wavetable"] = result.start in (MODEL_WAVETABLE, WAVETABLE)
    if inputs.analysis is not None:
        summary["analysis"] = {k: inputs.analysis.summary()[k] for k in ("pitched", "f0_hz", "midi", "keyframes")}
    return summary


def preview(previewer: Any, candidate: Any, phrase: Any, clip: np.ndarray) -> dict:
    """A searched candidate playing every note of ``phrase`` (``PreviewRenderer.play`` on the candidate's
    base: the wavetable it found, if any), and the multi-scale spectral distance of its main note to the
    main note's 2 s ``clip``."""
    vector = (candidate.continuous, candidate.categorical)
    return previewer.play(*vector, phrase.main.midi, clip, phrase, candidate.base, candidate.controls)


def attach(app: Any, svc: SearchService) -> None:
    """Start ``svc`` with each HTTP process of ``app`` and close it at shutdown (wraps the app's lifespan)."""
    import contextlib

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> Any:
        svc.start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            svc.close()

    app.router.lifespan_context = lifespan


# ------------------------------------------------------------------------------------------------------
# zoo predict


def search_budget(text: str) -> float:
    """``--search-seconds`` as a number of seconds (0 .. 3600); a one-line error otherwise."""
    import math

    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 <= seconds <= 3600):
        raise ValueError(f"`--search-seconds` must be a number of seconds from 0 to 3600, got {text!r}")
    return seconds


def search_cell(result: Any) -> str:
    """``zoo predict``'s table cell: the network's distance -> the search's, and the renders it took."""
    if result is None:
        return ""
    network = dict(result.proposals).get("model")
    start = f"{network.distance:.3f}" if network is not None and not network.failed else "silent"
    return f"{start} -> {result.distance_end:.3f} ({result.renders} renders)"


class FileSearch:
    """``zoo predict``'s search: one render pool for every file, a progress bar showing the best distance."""

    def __init__(self, bundle: Any, presets: Any, seconds: float, workers: int | None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from zoo.matching import NeighbourIndex

        self.presets, self.seconds = presets, seconds
        self._previewer: Any = None
        self._prepared: Any = None
        self.neighbours = NeighbourIndex.from_artifact(bundle, presets.spec)
        # The workers start (a few seconds) while the first recording is decoded and predicted.
        self._starter = ThreadPoolExecutor(1)
        self._pool = self._starter.submit(_start_pool, workers, presets.spec)

    @property
    def pool(self) -> Any:
        if not self._pool.done():
            from zoo.console import console

            with console.status("starting the render workers of the search ..."):
                self._pool.exception()
        return self._pool.result()

    def run(self, label: str, prepared: Any, outputs: list, name: str) -> Any:
        """Search the preset of one recording (``serving.pipeline.PreparedClip`` and the model's outputs)."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from zoo.console import console
        from zoo.matching import match
        from zoo.matching.recording import search_inputs

        pool = self.pool
        self._prepared = prepared
        inputs = search_inputs(prepared.audio, prepared.phrase)
        continuous = outputs[self.presets.continuous_index][0]
        logits = [outputs[i][0] for i in self.presets.categorical_index]
        columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"searching {label}", total=self.seconds)

            def show(progress: Any, best: Any) -> None:
                bar.update(task, completed=progress.seconds, description=f"{label}: best {progress.best_distance:.3f}")

            return match(
                inputs.target,
                pool,
                continuous=continuous,
                logits=logits,
                neighbours=self.neighbours,
                seconds=self.seconds,
                on_progress=show,
                name=name,
                analysis=inputs.analysis,
            )

    def preview(self, result: Any) -> dict:
        """The searched preset playing the last searched recording's phrase (as the HTTP answer's preview)."""
        from serving.presets import PreviewRenderer

        if self._previewer is None:
            self._previewer = PreviewRenderer(self.presets.spec)
        return preview(self._previewer, result.best, self._prepared.phrase, self._prepared.clip)

    def close(self) -> None:
        """Stop the render workers."""
        self._starter.shutdown()
        if self._pool.exception() is None:
            self._pool.result().close()


def _start_pool(workers: int | None, spec: Any) -> Any:
    import zoo.matching.matcher  # noqa: F401 - its imports (cma) take seconds: here, not in the first search
    from zoo.matching import RenderPool

    return RenderPool(workers, spec)
