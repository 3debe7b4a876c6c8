"""Worker pools (zoo.workers): results in order, the initializer runs in every worker, and an error or an
interrupt stops the workers at once."""

import os

import pytest

from zoo.workers import process_pool

_state = {}


def _init(tag: str) -> None:
    _state["tag"] = tag


def _work(x: int) -> tuple[int, str, int]:
    return x * x, _state.get("tag", "none"), os.getpid()


def test_results_come_in_order_from_initialised_workers():
    with process_pool(2, initializer=_init, initargs=("ready",)) as pool:
        results = list(pool.imap(_work, range(8), chunksize=1))
    assert [r[0] for r in results] == [x * x for x in range(8)]
    assert {r[1] for r in results} == {"ready"}
    assert os.getpid() not in {r[2] for r in results}


def test_an_error_in_the_block_terminates_the_workers():
    with pytest.raises(KeyboardInterrupt), process_pool(2) as pool:
        workers = list(pool._pool)
        raise KeyboardInterrupt
    assert all(not p.is_alive() for p in workers)


def test_at_least_one_worker():
    with pytest.raises(ValueError, match="at least 1 worker"), process_pool(0):
        pass
