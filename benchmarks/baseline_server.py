"""The unbatched baseline of ``zoo bench --http --baseline``: the same model served one request at a time.

Plain FastAPI and uvicorn in one process: ``POST /predict`` reads the request with the server's own dependency
(``serving.request_reader.read_predict_request``) and runs ``serving.api.PresetAPI``'s ``decode_request``,
``predict`` (a batch of one) and ``encode_response`` under a lock, so requests are served strictly one after
another through the same code path and the same artifact as ``zoo serve``. ``GET /health`` answers ``ok``.

    python -m benchmarks.baseline_server ARTIFACT_DIR --port 8100 [--backend onnx] [--threads 2]

No ``from __future__ import annotations`` here: FastAPI reads the endpoint's annotations as live objects.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 180.0


def build_app(artifact_dir: str | Path, backend: str = "onnx", threads: int | None = None, device: str = "cpu") -> Any:
    """The FastAPI app, with the model loaded and warmed up (``PresetAPI.setup``)."""
    from fastapi import Depends, FastAPI
    from fastapi.responses import PlainTextResponse

    from serving.api import PresetAPI
    from serving.request_reader import PredictPayload, RequestLimits, read_predict_request

    api = PresetAPI(artifact_dir, backend=backend, threads=threads, max_batch_size=1, batch_timeout=0.0)
    api.setup(device)
    lock = threading.Lock()
    app = FastAPI(title="audio model zoo: unbatched baseline")
    app.state.request_limits = RequestLimits(max_payload_bytes=32 * 2**20, api_key=None)

    @app.get("/health")
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.post("/predict")
    def predict(payload: PredictPayload = Depends(read_predict_request)) -> Any:  # noqa: B008 - FastAPI style
        with lock:  # one request at a time: no batching, no overlap
            return api.encode_response(api.predict(api.decode_request(payload)))

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BaselineServer:
    """Starts the baseline in a subprocess on a free loopback port; a context manager that stops it."""

    def __init__(
        self, artifact_dir: str | Path, backend: str = "onnx", threads: int | None = None, device: str = "cpu"
    ) -> None:
        self.artifact_dir = Path(artifact_dir)
        self.backend = backend
        self.threads = threads
        self.device = device
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._log: Any = None

    def __enter__(self) -> "BaselineServer":
        import tempfile

        import requests

        from benchmarks.http_load import ServerUnavailableError

        cmd = [sys.executable, "-m", "benchmarks.baseline_server", str(self.artifact_dir), "--port", str(self.port)]
        cmd += ["--backend", self.backend, "--device", self.device]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.seek(0)
                tail = self._log.read().decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
                raise ServerUnavailableError(f"the baseline server exited with {self.process.returncode}: {tail[0]}")
            try:
                if requests.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.__exit__(None, None, None)
        raise ServerUnavailableError(f"the baseline server did not answer within {STARTUP_SECONDS:g} s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve an artifact one request at a time (no batching).")
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--backend", default="onnx", choices=("onnx", "torchscript"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (as the batched server's worker)")
    args = parser.parse_args(argv)
    app = build_app(args.artifact, args.backend, args.threads, args.device)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
