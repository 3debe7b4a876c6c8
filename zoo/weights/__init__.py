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


def describe_shipped(model: str) -> list[str]:
    """Lines that say what ships for ``model``: version, size, how it was made, how it scores (empty if none)."""
    from zoo.artifact import load_artifact

    folder = shipped_artifact(model)
    if folder is None:
        return []
    card = load_artifact(folder, verify=False).card
    size = sum(f.bytes for f in card.files) / 2**20
    weights = (card.weights or {}).get("storage", "float32")
    lines = [f"shipped weights: {folder} ({card.model.version}, {size:.1f} MiB, {weights} weights)"]
    made = card.provenance or {}
    data = made.get("data", {})
    if data.get("n_clips"):
        lines.append(
            f"  trained on {data['n_clips']:,} clips ({data['n_presets']:,} presets x {len(data.get('notes', []))} "
            f"notes, prior {data.get('prior')}) for {made.get('epochs_run')} epochs"
        )
    if made.get("command"):
        lines.append(f"  made by: {made['command']}")
    for name, score in (card.evaluation or {}).items():
        shown = ", ".join(
            f"{m} {v['mean']:.2f}/{v['median']:.2f}" for m, v in score["methods"].items() if v.get("mean") is not None
        )
        lines.append(f"  {name} presets ({score['n_clips']} clips), mean/median distance: {shown}")
    return lines
