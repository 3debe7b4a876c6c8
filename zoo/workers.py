"""Pools of worker processes, in one place: how they start and how they stop.

Dataset generation, song synthesis and render benchmarks hand work to processes that each hold their own
Vital synth; they all get their pool from :func:`process_pool`.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.pool import Pool
from typing import Any


@contextmanager
def process_pool(
    workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple[Any, ...] = ()
) -> Iterator[Pool]:
    """``workers`` processes, each running ``initializer(*initargs)`` once at start.

    Started with ``fork`` where the platform has it (no re-import of the caller's ``__main__``, which
    ``spawn`` needs an ``if __name__ == "__main__"`` guard for), ``spawn`` elsewhere. Open no file handle
    (HDF5) before entering: forked workers would inherit it. When the block ends normally the pool is closed
    and joined; when it raises (an interrupt included) the workers are terminated at once.
    """
    if workers < 1:
        raise ValueError(f"a process pool needs at least 1 worker, got {workers}")
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = multiprocessing.get_context(method).Pool(workers, initializer=initializer, initargs=initargs)
    try:
        yield pool
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()
