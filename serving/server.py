"""Building and running the LitServe server for an artifact bundle (``zoo serve``)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.backends import BACKENDS
from serving.pipeline import DEFAULT_MAX_PAYLOAD_MB, DEFAULT_MAX_SECONDS, AudioLimits
from serving.request_reader import API_KEY_ENV, RequestLimits
from zoo.artifact import Artifact, load_artifact
from zoo.errors import ArtifactError

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class ServeConfig:
    """Everything ``zoo serve`` takes; validated here so the error names the flag."""

    artifact_dir: Path
    backend: str = "onnx"
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 8
    batch_timeout: float = 0.01
    workers: int = 1
    max_seconds: float = DEFAULT_MAX_SECONDS
    max_payload_mb: float = DEFAULT_MAX_PAYLOAD_MB
    timeout: float = 60.0
    log_level: str = "info"
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"`--backend` must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.host not in ("127.0.0.1", "0.0.0.0", "::"):
            raise ValueError(f"`--host` must be 127.0.0.1 (local), 0.0.0.0 or :: (all interfaces), got {self.host}")
        if not 1024 <= self.port <= 65535:
            raise ValueError(f"`--port` must be in 1024..65535, got {self.port}")
        if self.max_batch_size < 1:
            raise ValueError(f"`--max-batch-size` must be at least 1, got {self.max_batch_size}")
        if not 0 <= self.batch_timeout < self.timeout:
            raise ValueError(f"`--batch-timeout` must be in [0, {self.timeout:g}) seconds, got {self.batch_timeout}")
        if self.workers < 1:
            raise ValueError(f"`--workers` must be at least 1, got {self.workers}")
        if not self.max_payload_mb > 0:
            raise ValueError(f"`--max-payload-mb` must be positive, got {self.max_payload_mb}")
        AudioLimits(self.max_seconds)  # validates --max-seconds


def _document_predict_route(app: Any, artifact: Artifact) -> None:
    """LitServe registers ``POST /predict`` with a bare request; describe its bodies and answers for /docs."""
    for route in app.routes:
        if getattr(route, "path", None) != "/predict":
            continue
        route.summary = "Recording of a synth sound -> Vital preset"
        route.description = (
            f"Model **{artifact.model_name}** version `{artifact.version}`. Send a WAV, FLAC or OGG recording (any "
            "sample rate, any number of channels, up to the server's length limit). The main note is found "
            "(onset and pitch), its 2 s window is normalised like the training data and the model predicts "
            "every Tier-1 parameter. The answer holds the parameters by Vital name, the complete `.vital` "
            "document (save `preset` as JSON to a `.vital` file), the detected note, the model version and "
            "timings; `?preview=true` adds a Vital render of the prediction (WAV, base64) and its multi-scale "
            "spectral distance to the input."
        )
        audio_file = {"type": "string", "format": "binary", "description": "WAV, FLAC or OGG file"}
        route.openapi_extra = {
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["audio"],
                            "properties": {"audio": audio_file, "preview": {"type": "boolean"}},
                        }
                    },
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["audio_base64"],
                            "properties": {
                                "audio_base64": {"type": "string", "description": "the file, base64 encoded"},
                                "preview": {"type": "boolean"},
                            },
                        }
                    },
                    "audio/*": {"schema": audio_file},
                },
            }
        }
        error = {"content": {"application/json": {"example": {"detail": "what was wrong"}}}}
        route.responses = {
            200: {"description": "The predicted preset"},
            400: {"description": "Empty body, not audio, corrupt or truncated file, NaN samples, silence", **error},
            401: {"description": f"Missing or wrong API key (when {API_KEY_ENV} is set)", **error},
            413: {"description": "Body over the payload limit, or recording over the length limit", **error},
            415: {"description": "Unsupported content type", **error},
        }
    app.openapi_schema = None


def load_served_artifact(config: ServeConfig) -> Artifact:
    """Read the bundle once, in the parent, and refuse in one line what the workers could not serve: a card that
    is not valid, files that do not match their checksums or lie outside the bundle, a graph that does not take
    a waveform, outputs that cannot make a preset, and a model file the backend cannot load."""
    from serving.backends import check_loadable
    from serving.presets import PresetDecoder

    artifact = load_artifact(config.artifact_dir, verify=True)
    if not artifact.takes_waveform:
        raise ArtifactError(
            f"{artifact.path} holds {artifact.model_name}, whose graph does not take a waveform; the server "
            "serves audio-to-preset bundles (models on the log-mel, exported with the front end in the graph)"
        )
    PresetDecoder(artifact.card)
    check_loadable(artifact, config.backend)
    return artifact


def build_server(
    config: ServeConfig, accelerator: str, threads: int | None = None, artifact: Artifact | None = None
) -> Any:
    """A ready-to-run ``litserve.LitServer`` for ``config`` on ``accelerator`` (``cpu`` or ``cuda``); ``artifact``:
    the bundle of :func:`load_served_artifact` (read here when not given). Its workers receive the parsed bundle."""
    import litserve as ls

    from serving.api import PresetAPI

    artifact = artifact if artifact is not None else load_served_artifact(config)
    api = PresetAPI(
        artifact,
        backend=config.backend,
        limits=AudioLimits(config.max_seconds),
        threads=threads,
        max_batch_size=config.max_batch_size,
        batch_timeout=config.batch_timeout,
    )
    server = ls.LitServer(
        api,
        accelerator=accelerator,
        devices="auto",
        workers_per_device=config.workers,
        timeout=config.timeout,
        model_metadata={
            "model": artifact.model_name,
            "version": artifact.version,
            "backend": config.backend,
            "artifact": str(artifact.path),
        },
    )
    server.app.state.request_limits = RequestLimits(
        max_payload_bytes=int(config.max_payload_mb * 2**20), api_key=config.api_key
    )
    server.app.title = "audio model zoo: audio -> Vital preset"
    _document_predict_route(server.app, artifact)
    return server


def run_server(server: Any, config: ServeConfig) -> None:
    """Serve until Ctrl+C or SIGTERM (both shut the workers down cleanly)."""

    main_pid = os.getpid()

    def _terminate(signum: int, frame: Any) -> None:
        if os.getpid() != main_pid:  # a forked helper inherited this handler: die the default way
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    server.run(
        host=config.host,
        port=config.port,
        generate_client_file=False,
        log_level=config.log_level,
        num_api_servers=None,
    )
