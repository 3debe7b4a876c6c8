"""A real `zoo serve` subprocess on a free loopback port, for tests that speak HTTP to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks.server_processes import ServerStartError, free_port, serve

__all__ = ["free_port", "running_server"]


@contextmanager
def running_server(artifact: Path, args: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """Start `zoo serve ARTIFACT --port P ARGS`, wait until /health answers, yield the base URL, then stop it
    (SIGTERM so it shuts its workers down; the process group is killed if it does not exit in 30 s)."""
    try:
        with serve(artifact, args, env, log) as (base, _pid):
            yield base
    except ServerStartError as e:
        pytest.fail(str(e))
