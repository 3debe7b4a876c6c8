"""The LitServe API: a recording in, a Vital preset out, with dynamic batching.

decode_request (per request, in the worker): decode, find the main note, cut its 2 s clip.
batch -> predict (one forward pass for every clip of the batch) -> unbatch.
encode_response (per request): outputs -> parameters and the ``.vital`` document (+ preview render).
A request with ``search_seconds`` > 0 leaves as a :class:`serving.search.SearchingResponse`, which runs the
preset search in the HTTP process, outside this batched loop.

LitServe decodes and encodes a whole batch inside one ``try``: an exception from one request would fail
every request batched with it. So bad input never raises here: ``decode_request`` returns a
:class:`Rejection`, which rides through the batch untouched and becomes its own 4xx JSON response.

This module must not use ``from __future__ import annotations`` (see ``serving.request_reader``).
"""

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import litserve as ls
import numpy as np
from fastapi import Depends
from fastapi.responses import JSONResponse, Response

from serving.pipeline import AudioLimits, PreparedClip, prepare_recording
from serving.request_reader import PredictPayload, read_predict_request
from zoo.artifact import Artifact
from zoo.audio import SAMPLE_RATE
from zoo.errors import AudioDecodeError, AudioTooLargeError, AudioTooLongError

log = logging.getLogger("zoo.serving")


@dataclass
class Rejection:
    """A request that cannot be served, and the answer it gets."""

    status: int
    detail: str
    error: str
    decode_ms: float = 0.0  # the worker's time spent on the recording before refusing it


@dataclass
class Decoded:
    prepared: PreparedClip
    payload: PredictPayload
    decoded_at: float


@dataclass
class Predicted:
    decoded: Decoded
    outputs: list[np.ndarray]  # this item's outputs, batch axis removed
    model_ms: float
    batch_size: int


def _rejection(e: Exception) -> Rejection:
    """The answer to a recording that cannot be used. The message is ours: an exception's class name or an
    internal message never reaches a client (an unexpected one is logged with its traceback instead)."""
    if isinstance(e, AudioTooLongError):
        return Rejection(413, str(e), "audio_too_long")
    if isinstance(e, AudioTooLargeError):
        return Rejection(413, str(e), "audio_too_large")
    if isinstance(e, AudioDecodeError):
        return Rejection(400, str(e), "bad_audio")
    return Rejection(
        400, "the audio could not be analysed (an unusual recording this server cannot handle)", "bad_audio"
    )


class PresetAPI(ls.LitAPI):
    """Audio -> Vital preset. Configured in the parent process, set up in each worker process."""

    def __init__(
        self,
        artifact: Artifact | str | Path,
        backend: str = "onnx",
        limits: AudioLimits | None = None,
        threads: int | None = None,
        max_batch_size: int = 8,
        batch_timeout: float = 0.01,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        # A bundle read and checked by the parent travels to the workers with this object (pickled), so its card
        # is parsed once; a folder is read in each worker.
        self.artifact_source = artifact if isinstance(artifact, Artifact) else Path(artifact)
        self.backend_name = backend
        self.limits = limits or AudioLimits()
        self.threads = threads

    def setup(self, device: str) -> None:
        from serving.backends import create_backend
        from serving.presets import PresetDecoder, PreviewRenderer
        from zoo.artifact import load_artifact
        from zoo.onsets import onset_probability

        source = self.artifact_source
        self.artifact = source if isinstance(source, Artifact) else load_artifact(source)
        self.backend = create_backend(self.artifact, self.backend_name, device, self.threads)
        self.presets = PresetDecoder(self.artifact.card)
        self.previewer = PreviewRenderer(self.presets.spec)
        # Warm-up passes so the first request does not pay for allocations, kernel selection and the synth.
        outputs = self.backend.run(np.zeros((1, self.artifact.n_samples), dtype=np.float32))
        warm = self.presets.decode([o[0] for o in outputs])
        self.previewer.renderer.render_vector(warm.continuous, warm.indices, 60)
        tone = np.sin(2 * np.pi * 440.0 * np.arange(self.artifact.n_samples) / SAMPLE_RATE).astype(np.float32)
        onset_probability(0.1 * tone)  # loads the note-onset network
        log.info("worker ready: %s %s on %s", self.artifact.model_name, self.backend.name, device)

    def decode_request(self, request: Annotated[PredictPayload, Depends(read_predict_request)]) -> Any:
        t0 = time.perf_counter()
        try:
            prepared = prepare_recording(request.audio, self.limits)
        except Exception as e:  # noqa: BLE001 - any failure to read the audio is the request's problem
            if not isinstance(e, AudioDecodeError):
                log.exception("unexpected error decoding a request")
            rejection = _rejection(e)
            rejection.decode_ms = (time.perf_counter() - t0) * 1e3
            return rejection
        return Decoded(prepared, request, time.time())

    def batch(self, inputs: list) -> list:
        return list(inputs)

    def predict(self, x: Any) -> Any:
        single = not isinstance(x, list)  # max_batch_size 1: LitServe passes one item and skips batch/unbatch
        items = [x] if single else x
        ready = [i for i, item in enumerate(items) if isinstance(item, Decoded)]
        results: list = list(items)
        if ready:
            clips = np.stack([items[i].prepared.clip for i in ready])  # (B, 88200)
            t0 = time.perf_counter()
            outputs = self.backend.run(clips)
            model_ms = (time.perf_counter() - t0) * 1e3
            for row, i in enumerate(ready):
                results[i] = Predicted(items[i], [o[row] for o in outputs], model_ms, len(ready))
        return results[0] if single else results

    def unbatch(self, output: list) -> list:
        return output

    def encode_response(self, output: Any) -> Any:
        if isinstance(output, Rejection):
            body = {
                "detail": output.detail,
                "error": output.error,
                "timings_ms": {"decode": round(output.decode_ms, 2)},
            }
            return JSONResponse(body, status_code=output.status)
        try:
            if output.decoded.payload.search_seconds > 0:
                return self._searching(output)
            # Serialised here, in the worker: the HTTP process then forwards bytes instead of walking a
            # 180 kB document through FastAPI's encoder.
            return Response(json.dumps(self._response(output)).encode(), media_type="application/json")
        except Exception:  # noqa: BLE001 - a failure here must not fail the other requests of the batch
            log.exception("writing the preset failed")
            return JSONResponse({"detail": "internal error while writing the preset", "error": "internal"}, 500)

    def _response(self, output: Predicted) -> dict[str, Any]:
        decoded = output.decoded
        prepared, payload = decoded.prepared, decoded.payload
        t0 = time.perf_counter()
        stem = Path(payload.filename).stem if payload.filename else "Predicted"
        prediction = self.presets.decode(output.outputs, name=f"{stem} ({self.artifact.model_name})")
        timings = dict(prepared.timings_ms)
        timings["queue"] = max(0.0, (decoded.decoded_at - payload.received_at) * 1e3 - sum(timings.values()))
        timings["model"] = output.model_ms
        timings["preset"] = (time.perf_counter() - t0) * 1e3
        response: dict[str, Any] = {
            "model": {
                "name": self.artifact.model_name,
                "version": self.artifact.version,
                "backend": self.backend.name,
                "device": self.backend.device,
            },
            "note": prepared.note.to_dict(),
            "notes": [n.summary() for n in prepared.phrase.notes] if prepared.phrase else [prepared.note.summary()],
            "recording_seconds": round(prepared.seconds, 3),
            "parameters": prediction.parameters,
            "categorical": prediction.categorical,
            "preset": prediction.document,
            "batch_size": output.batch_size,
        }
        if payload.preview and not payload.search_seconds:  # a search previews the preset it finds
            t1 = time.perf_counter()
            response["preview"] = self.previewer.preview(prediction, prepared.note.midi, prepared.clip, prepared.phrase)
            timings["preview"] = (time.perf_counter() - t1) * 1e3
        timings["total"] = (time.time() - payload.received_at) * 1e3
        response["timings_ms"] = {k: round(v, 2) for k, v in timings.items()}
        return response

    def _searching(self, output: Predicted) -> Any:
        """The fast-path answer and what the search needs, to finish in the HTTP process."""
        from serving.search import SearchingResponse, SearchRequest

        answer = self._response(output)
        document = answer.pop("preset")  # replaced by the searched preset
        prepared, payload = output.decoded.prepared, output.decoded.payload
        request = SearchRequest(
            seconds=payload.search_seconds,
            audio=prepared.audio,
            phrase=prepared.phrase,
            clip=prepared.clip,
            continuous=np.clip(output.outputs[self.presets.continuous_index], 0.0, 1.0),
            logits=[output.outputs[i] for i in self.presets.categorical_index],
            name=document["preset_name"],
            preview=payload.preview,
        )
        return SearchingResponse(answer, request, payload.received_at)
