"""Sets of ``.vital`` files: a folder of presets, or a list file, and where the human-made presets live.

A list file (``calibration.txt``, ``evaluation.txt``) names one preset per line, relative to the list's own
folder; blank lines and lines starting with ``#`` are skipped. The human-made presets sit next to the
repository, in ``<repo>/../shared/presets``, or wherever ``ZOO_PRESETS_DIR`` points; a user's clone has none.
"""

from __future__ import annotations

import os
from pathlib import Path

from zoo.errors import PresetError

PRESETS_ENV = "ZOO_PRESETS_DIR"
CALIBRATION_LIST = "calibration.txt"
EVALUATION_LIST = "evaluation.txt"


def human_presets_dir() -> Path | None:
    """The folder of human-made presets (``$ZOO_PRESETS_DIR``, else ``<repo>/../shared/presets``), or None."""
    env = os.environ.get(PRESETS_ENV)
    folder = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "presets"
    return folder if folder.is_dir() else None


def human_preset_list(name: str) -> Path | None:
    """A list file of the human-made presets (``calibration.txt`` or ``evaluation.txt``), or None if absent."""
    folder = human_presets_dir()
    path = folder / name if folder is not None else None
    return path if path is not None and path.is_file() else None


def preset_paths(source: str | Path) -> list[Path]:
    """The ``.vital`` files of a folder (sorted) or of a list file (in its order).

    Raises :class:`PresetError` when ``source`` does not exist, a listed file is missing, or the set is empty.
    """
    source = Path(source)
    if source.is_dir():
        paths = sorted(source.glob("*.vital"))
    elif source.is_file():
        lines = source.read_text(encoding="utf-8").splitlines()
        paths = [source.parent / line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise PresetError(f"{source} lists presets that do not exist: {', '.join(missing[:3])}")
    else:
        raise PresetError(f"no such preset folder or list file: {source}")
    if not paths:
        raise PresetError(f"no .vital files in {source}")
    return paths
