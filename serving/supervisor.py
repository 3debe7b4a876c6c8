"""Keeping ``zoo serve`` serving when an inference worker dies (killed, out of memory, a crash in native code).

LitServe runs the inference workers as processes of the main process and answers HTTP in forked API server
processes. Left alone, LitServe 0.2 either shuts the whole server down when a worker dies, or, with
``restart_workers=True``, starts a new worker but leaves the requests the dead one had taken waiting forever (it
marks them in the main process's response buffer, while they wait in the API servers' own copies). So:

- :class:`SupervisedLitServer` (main process) checks its workers every ``RESTART_POLL_S`` and restarts a dead one
  with LitServe's ``launch_single_inference_worker``, which marks it STARTING: ``GET /health`` answers 503 until
  the new worker's setup is done, and requests queued meanwhile are served by the new worker. It stops restarting
  once the server shuts down, and waits longer between restarts of a worker that keeps dying at once.
- :func:`watch_in_flight` (every API server process) reads the workers' setup status every ``WATCH_INTERVAL_S``:
  when a worker that was READY is not any more, every request it had taken is answered 503 at once. A request
  the dying worker took off the queue before it could say so is tied to no worker: one that arrived before the
  death and is still not taken ``ORPHAN_GRACE_S`` after it, once every worker is ready again, is answered 503
  too (a request still queued behind a long queue may get it: the client retries). A request with no answer
  after ``deadline_s`` gets a 504, so nothing waits forever, whatever a worker does.

``restart_workers=True`` stays on: it makes a worker report which requests it takes (LitServe's START
message), which is how a request is tied to its worker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import asynccontextmanager
from typing import Any

import litserve as ls
from fastapi import HTTPException
from litserve.utils import LitAPIStatus, WorkerSetupStatus

log = logging.getLogger("zoo.serving")

RESTART_POLL_S = 0.5
WATCH_INTERVAL_S = 0.25
QUICK_DEATH_S = 60.0  # a worker dying this soon after its start is restarted after a growing pause
MAX_BACKOFF_S = 30.0
ORPHAN_GRACE_S = 15.0  # after a worker's death, how long a request taken by no worker may wait before a 503
WORKER_DIED = "the inference worker handling this request stopped; it is being restarted: retry in a few seconds"


class SupervisedLitServer(ls.LitServer):
    """A ``litserve.LitServer`` that restarts dead inference workers and answers their requests (module docstring).

    ``request_deadline_s``: the longest a request may wait for its answer before it gets a 504."""

    def __init__(self, *args: Any, request_deadline_s: float, **kwargs: Any) -> None:
        super().__init__(*args, restart_workers=True, **kwargs)
        self._stopping = False
        inner = self.app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app: Any):  # runs in each API server process
            async with inner(app) as state:
                task = asyncio.create_task(watch_in_flight(self, request_deadline_s), name="zoo-in-flight-watch")
                try:
                    yield state
                finally:
                    task.cancel()

        self.app.router.lifespan_context = lifespan

    # LitServe calls this once the workers and the API servers run (instead of its own monitor).
    def _start_worker_monitoring(self, manager: Any, uvicorn_workers: dict) -> None:
        threading.Thread(target=self._supervise, daemon=True, name="zoo-worker-supervisor").start()

    def _perform_graceful_shutdown(self, *args: Any, **kwargs: Any) -> None:
        self._stopping = True  # workers terminated from here on are not restarted
        super()._perform_graceful_shutdown(*args, **kwargs)

    def _worker_owners(self) -> list[tuple[Any, int]]:
        """(LitAPI, worker id) of each entry of ``self.inference_workers``, in LitServe's launch order."""
        owners = []
        for api in self.litapi_connector:
            n = len(self._inference_workers_config_for_api(api.api_path))
            owners += [(api, worker_id) for worker_id in range(n)]
        return owners

    def _supervise(self) -> None:
        owners = self._worker_owners()
        started: dict[int, float] = {}
        backoff: dict[int, float] = {}
        not_before: dict[int, float] = {}
        while not self._stopping:
            time.sleep(RESTART_POLL_S)
            for idx, proc in enumerate(list(self.inference_workers)):
                now = time.monotonic()
                if self._stopping or proc.is_alive() or now < not_before.get(idx, 0.0):
                    continue
                api, worker_id = owners[idx]
                quick = now - started.get(idx, -QUICK_DEATH_S) < QUICK_DEATH_S
                backoff[idx] = min(MAX_BACKOFF_S, 2 * backoff.get(idx, 0.5)) if quick else 0.0
                log.warning(
                    "inference worker %d (pid %s) died (exit code %s); starting a new one",
                    worker_id,
                    proc.pid,
                    proc.exitcode,
                )
                try:
                    self.inference_workers[idx] = self.launch_single_inference_worker(api, worker_id)
                except Exception:  # noqa: BLE001 - e.g. the manager is gone during shutdown: try again later
                    log.exception("restarting inference worker %d failed", worker_id)
                started[idx] = now
                not_before[idx] = now + backoff[idx]


def _answer(item: Any, status: int, detail: str) -> None:
    """Answer a waiting request of LitServe's response buffer with an HTTP error (its handler raises it)."""
    if item.event.is_set():
        return
    item.response = (HTTPException(status, detail), LitAPIStatus.ERROR)
    item.event.set()


async def watch_in_flight(server: Any, deadline_s: float) -> None:
    """In an API server process: answer 503 to the requests of a worker that stopped being ready, and 504 to any
    request without an answer after ``deadline_s`` (module docstring)."""
    was_ready: set[int] = set()
    first_seen: dict[str, float] = {}
    last_loss = -1.0  # when a worker last stopped being ready (monotonic)
    while True:
        await asyncio.sleep(WATCH_INTERVAL_S)
        try:
            status = server.workers_setup_status.copy()  # a Manager dict: {"predict_0": "ready", ...}
        except Exception:  # noqa: BLE001 - the manager is gone: the server is shutting down
            return
        ready = {int(key.rsplit("_", 1)[1]) for key, value in status.items() if value == WorkerSetupStatus.READY}
        lost, was_ready = was_ready - ready, ready
        now = time.monotonic()
        if lost:
            last_loss = now
        all_ready = bool(status) and len(ready) == len(status)
        orphans_due = last_loss >= 0 and all_ready and now - last_loss > ORPHAN_GRACE_S
        buffer = server.response_buffer
        for uid in list(first_seen):
            if uid not in buffer:
                del first_seen[uid]
        for uid, item in list(buffer.items()):
            seen = first_seen.setdefault(uid, now)
            if item.worker_id is not None and item.worker_id in lost:
                _answer(item, 503, WORKER_DIED)
            elif orphans_due and item.worker_id is None and seen < last_loss:
                _answer(item, 503, WORKER_DIED)
            elif now - seen > deadline_s:
                _answer(item, 504, f"no answer from the inference worker within {deadline_s:g} s")
