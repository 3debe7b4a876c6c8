"""A pool of render worker processes, one warm Vital synth each, that score candidates against targets.

Each worker owns one :class:`~zoo.vital.render.VitalRenderer` and computes the distance itself
(``zoo.matching.objective.score_candidate``), so renders and STFTs both run in parallel. The pool starts
once (about a second per worker, in parallel) and serves any number of searches and requests, from any
number of threads: tasks go to the first free worker in the order they were submitted.

A target (its clips) and a base document travel to a worker once and are cached there under a digest; a
task carries only the vector. A worker that crashes, stops answering or cannot start is replaced, and the
candidate it held scores as failed: neither the pool nor the search that asked fails.

Workers are started with ``spawn`` (safe from a process that runs threads, such as the HTTP server) and
run with one torch thread each; ``nice`` lowers their CPU priority so that a server's fast path keeps its
share of the cores while searches run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.errors import ZooError
from zoo.matching.candidates import Candidate
from zoo.matching.objective import Score, failed, render_note, score_candidate
from zoo.matching.target import Target, TargetNote
from zoo.vital.spec import VitalParamSpec
from zoo.vital.tier1 import tier1_spec

log = logging.getLogger("zoo.matching")

Scorer = Callable[[Any, Candidate, Target], Score]
CACHE_SIZE = 8  # targets and base documents a worker keeps
START_TIMEOUT_S = 120.0
TASK_TIMEOUT_S = 120.0
_STOP = object()


class RenderPoolError(ZooError, RuntimeError):
    """The pool cannot start its workers, or was used after ``close``."""


# ------------------------------------------------------------------------------------------------------
# The worker process


def _worker_main(conn: Any, spec: dict, nice: int, scorer: Scorer) -> None:
    """Loop of one worker: answer score and render messages until "stop" or the pipe closes."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle
    try:
        if nice:
            os.nice(nice)
        import torch

        torch.set_num_threads(1)
        from zoo.vital.render import VitalRenderer

        renderer = VitalRenderer(VitalParamSpec.from_dict(spec))
        renderer.render_vector(*_init_vector(renderer.spec), 60, render_seconds=0.1, note_seconds=0.1)  # warm up
    except Exception as e:  # noqa: BLE001 - reported to the parent, which fails with a clear message
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", os.getpid()))
    targets: OrderedDict[str, Target] = OrderedDict()
    bases: OrderedDict[str, dict] = OrderedDict()  # the spec's base preset (key "") is never evicted: not here
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        kind = message[0]
        if kind == "stop":
            return
        if kind in ("target", "base"):
            cache = targets if kind == "target" else bases
            cache[message[1]] = message[2] if kind == "target" else json.loads(message[2])
            while len(cache) > CACHE_SIZE:
                cache.popitem(last=False)
            continue
        conn.send(_answer(kind, message[1:], targets, bases, renderer, scorer))


def _answer(kind: str, args: tuple, targets: dict, bases: dict, renderer: Any, scorer: Scorer) -> tuple:
    if kind == "score":
        target_key, base_key, continuous, categorical, label, extra = args
        if target_key not in targets or (base_key and base_key not in bases):
            return ("missing",)
        candidate = Candidate(continuous, categorical, label, bases.get(base_key), extra)
        try:
            score = scorer(renderer, candidate, targets[target_key])
        except Exception as e:  # noqa: BLE001 - an injected scorer may raise; the candidate fails, not the worker
            score = failed(f"scoring failed ({type(e).__name__}: {e})")
        return ("score", score.distance, score.error)
    if kind == "render":
        base_key, continuous, categorical, extra, note = args
        if base_key and base_key not in bases:
            return ("missing",)
        try:
            renderer.set_base(bases.get(base_key))
            renderer.set_vector(continuous, categorical, extra)
            return ("audio", render_note(renderer, note))
        except Exception as e:  # noqa: BLE001 - reported to the caller as a failed render
            return ("error", f"{type(e).__name__}: {e}")
    return ("error", f"unknown message {kind!r}")


def _init_vector(spec: VitalParamSpec) -> tuple[np.ndarray, np.ndarray]:
    from zoo.vital.preset import init_preset, vector_from_preset

    return vector_from_preset(init_preset(), spec)


# ------------------------------------------------------------------------------------------------------
# The parent side


class _WorkerLost(Exception):
    pass


@dataclass
class _Task:
    kind: str  # "score" or "render"
    candidate: Candidate
    base_key: str
    base_text: str | None
    future: Future
    target: Target | None = None
    note: TargetNote | None = None


class _Slot:
    """One worker process, the pipe to it, and what it has been sent."""

    def __init__(self, ctx: Any, spec: dict, nice: int, scorer: Scorer) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, spec, nice, scorer), daemon=True)
        self.process.start()
        child.close()
        self.sent: set[str] = set()

    def wait_ready(self, timeout: float) -> None:
        if not self.conn.poll(timeout):
            self.kill()
            raise RenderPoolError(f"a render worker did not start within {timeout:g} s")
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            raise RenderPoolError("a render worker exited while starting") from None
        if message[0] != "ready":
            self.kill()
            raise RenderPoolError(f"a render worker could not start: {message[1]}")

    def send(self, message: tuple) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, OSError):
            raise _WorkerLost("the render worker closed its pipe") from None

    def receive(self, timeout: float) -> tuple:
        start = time.monotonic()
        while not self.conn.poll(0.2):
            if not self.process.is_alive():
                raise _WorkerLost(f"the render worker exited (code {self.process.exitcode})")
            if time.monotonic() - start > timeout:
                raise _WorkerLost(f"the render worker did not answer within {timeout:g} s")
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            raise _WorkerLost("the render worker closed its pipe") from None

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class RenderPool:
    """``workers`` processes (default: one per core), one warm Vital synth each; see the module docstring.

    Use as a context manager or call :meth:`close`. ``scorer`` replaces the distance computed in the workers
    (a module-level function, for tests); ``nice`` is added to the workers' CPU niceness."""

    def __init__(
        self,
        workers: int | None = None,
        spec: VitalParamSpec | None = None,
        nice: int = 0,
        scorer: Scorer = score_candidate,
        task_timeout: float = TASK_TIMEOUT_S,
    ) -> None:
        self.n_workers = int(workers) if workers is not None else (os.cpu_count() or 1)
        if self.n_workers < 1:
            raise ValueError(f"a render pool needs at least 1 worker, got {workers}")
        self.spec = spec or tier1_spec()
        self.task_timeout = task_timeout
        self.replaced = 0  # workers replaced after a crash or a hang
        self._spec_dict = self.spec.to_dict()
        self._nice, self._scorer = nice, scorer
        self._ctx = mp.get_context("spawn")
        self._tasks: queue.Queue = queue.Queue()
        self._bases: OrderedDict[int, tuple[dict, str, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False
        self._slots: list[_Slot | None] = []
        try:
            self._slots = [self._new_slot() for _ in range(self.n_workers)]
            for slot in self._slots:
                slot.wait_ready(START_TIMEOUT_S)
        except BaseException:
            for slot in self._slots:
                if slot is not None:
                    slot.kill()
            raise
        self._threads = [
            threading.Thread(target=self._serve, args=(i,), name=f"render-pool-{i}", daemon=True)
            for i in range(self.n_workers)
        ]
        for t in self._threads:
            t.start()

    def _new_slot(self) -> _Slot:
        return _Slot(self._ctx, self._spec_dict, self._nice, self._scorer)

    # -- public API ------------------------------------------------------------------------------------

    def score(
        self, candidates: Sequence[Candidate], target: Target, deadline: float | None = None
    ) -> list[Score | None]:
        """Score ``candidates`` against ``target`` in parallel, in order. With ``deadline``
        (``time.monotonic()`` seconds), candidates not started by then are dropped (None)."""
        futures = [self._submit(_Task("score", c, *self._base(c), Future(), target=target)) for c in candidates]
        if deadline is not None:
            _, pending = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
            for f in pending:
                f.cancel()  # only those no worker has taken yet
        return [None if f.cancelled() else f.result() for f in futures]

    def objective(self, target: Target) -> PoolObjective:
        """The :class:`~zoo.matching.objective.Objective` of ``target`` on this pool."""
        return PoolObjective(self, target)

    def render(self, candidate: Candidate, note: TargetNote) -> np.ndarray:
        """Render ``candidate`` at ``note`` in a worker (held ``note_seconds``, as long as the clip): mono
        float32. Raises :class:`RenderPoolError` when the render fails."""
        result = self._submit(_Task("render", candidate, *self._base(candidate), Future(), note=note)).result()
        if isinstance(result, str):
            raise RenderPoolError(f"the render failed: {result}")
        return result

    def close(self) -> None:
        """Stop the workers (waits for the tasks already submitted)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for _ in self._threads:
            self._tasks.put(_STOP)
        for t in self._threads:
            t.join()

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------------

    def _submit(self, task: _Task) -> Future:
        if self._closed:
            raise RenderPoolError("the render pool is closed")
        self._tasks.put(task)
        return task.future

    def _base(self, candidate: Candidate) -> tuple[str, str | None]:
        """(key, JSON text) of a candidate's base document; ("", None) for the spec's base preset."""
        if candidate.base is None:
            return "", None
        with self._lock:
            hit = self._bases.get(id(candidate.base))
            if hit is None or hit[0] is not candidate.base:
                text = json.dumps(candidate.base)
                hit = (candidate.base, hashlib.sha1(text.encode()).hexdigest(), text)
                self._bases[id(candidate.base)] = hit
                while len(self._bases) > 4 * CACHE_SIZE:
                    self._bases.popitem(last=False)
            return hit[1], hit[2]

    def _serve(self, i: int) -> None:
        """Feeder thread of worker ``i``: take tasks, run them there, replace the worker when it is lost."""
        while True:
            task = self._tasks.get()
            if task is _STOP:
                self._stop(i)
                return
            if not task.future.set_running_or_notify_cancel():
                continue
            try:
                if self._slots[i] is None:
                    self._replace(i)
                slot = self._slots[i]
                if slot is None:
                    raise _WorkerLost("no render worker could be started")
                result = self._run(slot, task)
            except _WorkerLost as e:
                log.warning("%s; starting a new one", e)
                self._replace(i)
                result = failed(f"render worker lost ({e})") if task.kind == "score" else str(e)
            except BaseException as e:  # noqa: BLE001 - handed to the caller, the feeder goes on
                task.future.set_exception(e)
                continue
            task.future.set_result(result)

    def _run(self, slot: _Slot, task: _Task) -> Any:
        c = task.candidate
        if task.kind == "score":
            assert task.target is not None
            message: tuple = ("score", task.target.key, task.base_key, c.continuous, c.categorical, c.label, c.extra)
        else:
            message = ("render", task.base_key, c.continuous, c.categorical, c.controls, task.note)
        for _ in range(2):  # a second try after the worker says it lacks the target or the base
            if task.target is not None and task.target.key not in slot.sent:
                slot.send(("target", task.target.key, task.target))
                slot.sent.add(task.target.key)
            if task.base_text is not None and task.base_key not in slot.sent:
                slot.send(("base", task.base_key, task.base_text))
                slot.sent.add(task.base_key)
            slot.send(message)
            answer = slot.receive(self.task_timeout)
            if answer[0] == "score":
                return Score(float(answer[1]), answer[2])
            if answer[0] in ("audio", "error"):
                return answer[1]
            slot.sent.clear()  # "missing": the worker evicted something; send it again
        raise _WorkerLost("the render worker kept losing its cached target")

    def _replace(self, i: int) -> None:
        """Start a new worker in slot ``i`` (three tries); the slot stays empty (None) when none starts."""
        if self._slots[i] is not None:
            self._slots[i].kill()
            self.replaced += 1
        self._slots[i] = None
        for attempt in range(3):
            slot = self._new_slot()
            try:
                slot.wait_ready(START_TIMEOUT_S)
            except RenderPoolError as e:
                log.error("%s (attempt %d of 3)", e, attempt + 1)
                time.sleep(0.5)
                continue
            self._slots[i] = slot
            return

    def _stop(self, i: int) -> None:
        slot = self._slots[i]
        if slot is None:
            return
        try:
            slot.conn.send(("stop",))
        except (BrokenPipeError, OSError):
            pass
        slot.process.join(5)
        slot.kill()


class PoolObjective:
    """Scores candidates against one target on a :class:`RenderPool` (an ``Objective``)."""

    def __init__(self, pool: RenderPool, target: Target) -> None:
        self.pool, self.target = pool, target
        self.renders_per_candidate = target.renders_per_candidate

    def __call__(self, candidates: Sequence[Candidate], deadline: float | None = None) -> list[Score | None]:
        return self.pool.score(candidates, self.target, deadline)
