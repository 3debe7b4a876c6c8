"""Model bundles that ship inside the package: a registered model's default when nothing was exported.

``zoo/weights/<model>/`` holds an artifact bundle exactly as ``zoo export`` writes one (``card.json`` and the
model file), so every runtime reads it like any other bundle. Its card says how it was made.
"""

from __future__ import annotations

from pathlib import Path

from zoo.artifact import CARD_FILE

WEIGHTS_DIR = Path(__file__).resolve().parent


def shipped_artifact(model: str) -> Path | None:
    """The folder of ``model``'s shipped bundle, or None when the package ships none for it."""
    folder = WEIGHTS_DIR / model
    return folder if (folder / CARD_FILE).is_file() else None


def shipped_models() -> list[str]:
    """Registered names with a shipped bundle."""
    return sorted(p.parent.name for p in WEIGHTS_DIR.glob(f"*/{CARD_FILE}"))
