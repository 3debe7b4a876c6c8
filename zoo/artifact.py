"""The artifact bundle written by ``zoo export`` and read by every runtime: its card, files and checksums."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import ArtifactError

CARD_FILE = "card.json"
ARTIFACT_FORMAT = "zoo-artifact/1"
BACKEND_FORMATS = {"onnx": "onnx", "torchscript": "torchscript"}
DEFAULT_ROOT = Path("artifacts")


@dataclass(frozen=True)
class Artifact:
    """An exported model bundle: its folder and its parsed ``card.json``."""

    path: Path
    card: dict[str, Any]

    @property
    def model_name(self) -> str:
        return self.card["model"]["name"]

    @property
    def version(self) -> str:
        return self.card["model"]["version"]

    @property
    def output_names(self) -> list[str]:
        return [o["name"] for o in self.card["outputs"]]

    @property
    def takes_waveform(self) -> bool:
        return self.card["input"].get("kind") == "waveform"

    @property
    def n_samples(self) -> int:
        return int(self.card["input"]["shape"][-1])

    def file_for(self, backend: str) -> Path:
        """The model file of a backend (``onnx`` or ``torchscript``); raises when the bundle lacks it."""
        for name, info in self.card["files"].items():
            if info["format"] == BACKEND_FORMATS.get(backend):
                return self.path / name
        have = ", ".join(info["format"] for info in self.card["files"].values())
        raise ArtifactError(f"{self.path} has no {backend} file (it has: {have}); re-export with `--format {backend}`")


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_artifact(path: str | Path, verify: bool = True) -> Artifact:
    """Read ``path/card.json``; with ``verify``, check every listed file exists and matches its sha256."""
    path = Path(path)
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise ArtifactError(f"{path} is not an artifact bundle (no {CARD_FILE}); create one with `zoo export CKPT`")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{card_path} is not readable JSON ({e})") from None
    if not isinstance(card, dict) or card.get("format") != ARTIFACT_FORMAT:
        found = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise ArtifactError(f"{card_path} has format {found!r}; this version reads {ARTIFACT_FORMAT!r}")
    if verify:
        for name, info in card["files"].items():
            file = path / name
            if not file.is_file():
                raise ArtifactError(f"{file} is listed in {CARD_FILE} but missing")
            if sha256_file(file) != info["sha256"]:
                raise ArtifactError(f"{file} does not match the sha256 in {CARD_FILE}: corrupted or replaced")
    return Artifact(path, card)


def latest_artifact(root: str | Path = DEFAULT_ROOT) -> Path:
    """The most recently exported bundle under ``root`` (by the mtime of its card.json)."""
    root = Path(root)
    cards = [
        p for p in root.glob(f"**/{CARD_FILE}") if not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    if not cards:
        raise ArtifactError(f"no exported model under {root}/; run `zoo export CHECKPOINT` first or pass a folder")
    return max(cards, key=lambda p: p.stat().st_mtime).parent


FLAGSHIP_MODEL = "vital-resnet18"


def default_artifact(model: str | None = None, root: str | Path = DEFAULT_ROOT) -> Path:
    """The bundle used when none is named: the newest exported under ``root`` (under ``root/<model>`` when
    ``model`` is given), else the bundle the package ships for ``model`` (vital-resnet18 when None)."""
    from zoo.weights import shipped_artifact

    search = Path(root) / model if model else Path(root)
    try:
        return latest_artifact(search)
    except ArtifactError:
        shipped = shipped_artifact(model or FLAGSHIP_MODEL)
        if shipped is None:
            raise ArtifactError(
                f"no exported model under {search}/ and no shipped {model or FLAGSHIP_MODEL} bundle; "
                "run `zoo export CHECKPOINT` first or pass a folder"
            ) from None
        return shipped
