"""Writing files so that nobody ever sees half of one: write to a temporary path beside the target, then
move it into place with one rename (readers see the old file or the whole new one, never a mixture).

Every writer of checkpoints, datasets and bundles uses this module: :func:`atomic_path` for a file or a
folder written in one go, :func:`replace_atomically` for a file or folder that was written elsewhere first
(a resumable ``.partial`` dataset, an export folder).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _create_sibling(dest: Path, directory: bool) -> Path:
    """Create a new, empty file or folder with a unique hidden name beside ``dest``, with the permissions an
    ordinary ``open``/``mkdir`` gives under the umask (``tempfile``'s are private to the user)."""
    for _ in range(100):
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.partial"
        try:
            if directory:
                tmp.mkdir()
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {dest}")


def replace_atomically(src: str | Path, dest: str | Path) -> Path:
    """Move the finished file or folder ``src`` onto ``dest`` with one rename (same filesystem).

    A file is flushed to disk first. ``dest`` may be an existing file (replaced) or an empty folder; a
    non-empty folder at ``dest`` is refused by the operating system (``OSError``), never merged.
    """
    src, dest = Path(src), Path(dest)
    if src.is_file():
        fd = os.open(src, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    return dest


@contextmanager
def atomic_path(dest: str | Path, *, directory: bool = False) -> Iterator[Path]:
    """A temporary path beside ``dest`` to write to (a file, or with ``directory=True`` an empty folder);
    moved onto ``dest`` when the block ends, deleted if the block raises (interrupts included)::

        with atomic_path(run_dir / "best.pt") as tmp:
            torch.save(state, tmp)
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_sibling(dest, directory)
    try:
        yield tmp
        replace_atomically(tmp, dest)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
