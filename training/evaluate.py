"""`zoo evaluate`: how close a vital-resnet18 checkpoint gets, in parameters and, above all, in sound.

For every held-out clip the prediction is written as a preset, rendered with Vital at the clip's note,
and compared with the target by the multi-scale spectral distance (``zoo.spectral``). The same is done
for four baselines on the same clips: Vital's init preset (rendered as Vital has it: a saw), a random
Tier-1 preset, the mean training preset, and the training preset whose mel spectrogram is nearest to the
clip's. On human-made presets two reference rows join them: ``tier1_projection`` and ``single_cycle``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from training.checkpoint import model_from_checkpoint
from zoo.spectral import multiscale_spectral_distance

METHODS = (
    "model", "tier1_projection", "nearest_neighbour", "mean_preset", "random_preset", "init_preset", "single_cycle",
    "model+search", "init+search",
)  # fmt: skip


@dataclass
class Example:
    """One evaluated clip: the target's audio, and each method's (continuous, categorical) or .vital document."""

    note: int
    target_audio: np.ndarray
    vectors: dict[str, tuple[np.ndarray, np.ndarray] | dict[str, Any]]


def _predict(model, mels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        continuous, *logits = model(mels)
    cats = torch.stack([lg.argmax(-1) for lg in logits], dim=1) if logits else torch.zeros(len(mels), 0)
    return continuous.numpy(), cats.long().numpy()


def _searched(model, mel: torch.Tensor, target_audio: np.ndarray, note: int, pool, seconds: float, seed: int) -> dict:
    """The ``model+search`` and ``init+search`` vectors of one clip of the dataset
    (``zoo.matching.matcher.search_methods``)."""
    from zoo.matching import Target
    from zoo.matching.matcher import search_methods
    from zoo.vital.render import NOTE_SECONDS

    with torch.no_grad():
        continuous, *logits = model(mel)
    target = Target.from_clip(target_audio, note, note_seconds=NOTE_SECONDS)
    return search_methods(target, pool, continuous[0].numpy(), [lg[0].numpy() for lg in logits], seconds, seed)


def _pooled(mels: torch.Tensor) -> torch.Tensor:
    """Mel spectrograms pooled 4x4 and flattened: the space of the nearest-neighbour search."""
    return torch.nn.functional.avg_pool2d(mels, 4).flatten(1)


def _parameter_metrics(model, dataset, spec, batch_size: int = 64) -> dict[str, Any]:
    """Masked MSE per module group and accuracy per categorical parameter over the whole split."""
    from training.metrics import ParameterMetrics

    scores = ParameterMetrics(spec)
    for batch in DataLoader(dataset, batch_size=batch_size):
        with torch.no_grad():
            continuous, *logits = model(batch["mel"])
        scores.update(continuous, logits, batch["continuous"], batch["categorical"])
    return {
        "group_mse": scores.group_mse(),
        "categorical_accuracy": scores.categorical_accuracy(),
        "mean_categorical_accuracy": scores.mean_categorical_accuracy(),
        "n_clips": scores.n,
    }


class Baselines:
    """The four reference presets of the evaluation, built from the training split."""

    def __init__(self, train_set, spec, seed: int) -> None:
        from zoo.vital.preset import init_preset
        from zoo.vital.sampler import PresetSampler

        conts, cats, feats = [], [], []
        for batch in DataLoader(train_set, batch_size=128):
            conts.append(batch["continuous"])
            cats.append(batch["categorical"])
            feats.append(_pooled(batch["mel"]))
        self.cont, self.cat, self.feats = torch.cat(conts), torch.cat(cats), torch.cat(feats)
        self.mean = (self.cont.mean(0).numpy(), torch.mode(self.cat, dim=0).values.numpy())
        self.init = init_preset()  # Vital's own init patch (a saw), as a user opening Vital hears it
        self.sampler = iter(PresetSampler(spec, seed=seed))

    def for_clip(self, mel: torch.Tensor) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        nn_i = int(torch.cdist(_pooled(mel), self.feats).argmin())
        return {
            "nearest_neighbour": (self.cont[nn_i].numpy(), self.cat[nn_i].numpy()),
            "mean_preset": self.mean,
            "random_preset": next(self.sampler),
            "init_preset": self.init,
        }


def _train_split(checkpoint_cfg: dict[str, Any], data: Path):
    """(files, training set, validation set) exactly as the checkpoint's run split ``data``."""
    from training.data.dataset import vital_splits

    return vital_splits(data, val_fraction=checkpoint_cfg.get("val_fraction", 0.1), seed=checkpoint_cfg.get("seed", 0))


def evaluate_dataset(
    checkpoint: str | Path,
    data: str | Path,
    out: str | Path,
    n_audio: int = 48,
    seed: int = 0,
    progress: bool = True,
    search_seconds: float = 0.0,
) -> dict[str, Any]:
    """Evaluate on the checkpoint's held-out split of ``data``; writes report.json, a PNG and WAVs to ``out``.
    With ``search_seconds`` > 0, adds the ``model+search`` and ``init+search`` rows (that budget per clip)."""
    import h5py

    from zoo.vital.spec import VitalParamSpec

    model, ckpt = model_from_checkpoint(checkpoint)
    if ckpt.get("spec") is None:
        raise ValueError(f"{checkpoint} has no parameter spec: `zoo evaluate` is for vital-resnet18 checkpoints")
    spec = VitalParamSpec.from_dict(ckpt["spec"])
    tc = ckpt.get("train_config", {})
    paths, train_set, val_set = _train_split(tc, Path(data))
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "data": str(data), "model": ckpt["model_name"]}
    report["parameters"] = _parameter_metrics(model, val_set, spec)

    baselines = Baselines(train_set, spec, seed)

    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(val_set), size=min(n_audio, len(val_set)), replace=False)
    examples = []
    audio_ds = [h5py.File(p, "r") for p in paths]
    pool = _search_pool(spec, search_seconds)
    try:
        for i in chosen:
            item = val_set[int(i)]
            file_i, row = val_set.locate(int(item["index"]))
            target = audio_ds[file_i]["audio"][row]
            mel = item["mel"].unsqueeze(0)
            cont, cat = _predict(model, mel)
            vectors = {"model": (cont[0], cat[0]), **baselines.for_clip(mel)}
            if pool is not None:
                vectors.update(_searched(model, mel, target, int(item["note"]), pool, search_seconds, seed))
            examples.append(Example(note=int(item["note"]), target_audio=target, vectors=vectors))
    finally:
        for f in audio_ds:
            f.close()
        if pool is not None:
            pool.close()
    report["audio"] = _score_audio(examples, spec, Path(out), progress)
    _write_report(report, Path(out))
    return report


def single_cycle_baseline() -> Callable[[np.ndarray, int], dict[str, Any]] | None:
    """The ``single_cycle`` reference row: (target clip (88200,), MIDI note) -> a .vital document (one waveform
    cycle of the target as oscillator 1's wavetable, envelope from its amplitude), or None on a version of
    the project without ``zoo.vital.single_cycle`` (the row is then left out)."""
    try:
        from zoo.vital.single_cycle import single_cycle_preset
    except ImportError:
        return None
    from zoo.vital.render import NOTE_SECONDS

    return lambda audio, note: single_cycle_preset(audio, midi=note, note_seconds=NOTE_SECONDS)


@dataclass
class PresetTarget:
    """One human preset rendered at one note: the target of the presets evaluation."""

    name: str
    document: dict[str, Any]
    note: int
    audio: np.ndarray  # loudness-normalised (88200,)


def render_preset_targets(
    presets: str | Path, notes: tuple[int, ...], progress: bool = True
) -> tuple[list[PresetTarget], list[str]]:
    """Render every preset of a folder or list file at ``notes`` (1 s held in 2 s, velocity 0.8) ->
    (the audible targets, what was skipped and why)."""
    from tqdm.auto import tqdm

    from zoo.audio import normalize_loudness
    from zoo.vital.preset import load_preset_file
    from zoo.vital.preset_sets import preset_paths
    from zoo.vital.render import VitalRenderer

    renderer = VitalRenderer()
    targets, skipped = [], []
    for path in tqdm(preset_paths(presets), desc="rendering the presets", disable=not progress):
        try:
            doc = load_preset_file(path)
        except ValueError as e:
            skipped.append(f"{path.name}: {e}")
            continue
        for note in notes:
            try:
                targets.append(PresetTarget(path.stem, doc, note, normalize_loudness(renderer.render(doc, note))))
            except ValueError as e:  # a silent render, or Vital refusing the preset
                skipped.append(f"{path.name} at MIDI {note}: {e}")
    return targets, skipped


def evaluate_presets(
    checkpoint: str | Path,
    presets: str | Path,
    out: str | Path,
    data: str | Path | None = None,
    notes: tuple[int, ...] = (48, 60, 72),
    seed: int = 0,
    progress: bool = True,
    search_seconds: float = 0.0,
) -> dict[str, Any]:
    """Evaluate on human-made .vital files (a folder, or a list file like ``evaluation.txt``): each is rendered
    at ``notes`` and that audio is the target. ``checkpoint`` is a checkpoint, an artifact folder or a
    registered name (its default bundle, see ``training.proposer``). Such presets use modulations and
    wavetables beyond Tier 1, so a perfect score is out of reach: the ``tier1_projection`` row (the true
    preset projected onto Tier 1) is what a perfect Tier-1 predictor reaches. With ``data`` the mean and
    nearest-neighbour baselines come from its training split; without it they are left out. With
    ``search_seconds`` > 0, adds the ``model+search`` and ``init+search`` rows (that budget per clip)."""
    from training.proposer import load_proposer, option_indices
    from zoo.audio import LogMelFrontEnd
    from zoo.matching import Target
    from zoo.matching.matcher import search_methods
    from zoo.vital.preset import init_preset, vector_from_preset
    from zoo.vital.render import NOTE_SECONDS
    from zoo.vital.sampler import PresetSampler

    proposer = load_proposer(checkpoint)
    spec = proposer.spec
    targets, skipped = render_preset_targets(presets, notes, progress)
    pool = _search_pool(spec, search_seconds)
    if not targets:
        raise ValueError(f"none of the presets in {presets} could be rendered: " + "; ".join(skipped[:5]))
    baselines = Baselines(_train_split(proposer.train_config, Path(data))[1], spec, seed) if data else None
    sampler = iter(PresetSampler(spec, seed=seed))
    init_doc = init_preset()
    front_end, single_cycle = LogMelFrontEnd(), single_cycle_baseline()
    examples = []
    for target in targets:
        mel = front_end(torch.from_numpy(target.audio))
        cont, logits = proposer.propose(target.audio[None], mel)
        vectors: dict[str, Any] = {
            "model": (cont[0], option_indices(logits)[0]),
            "tier1_projection": vector_from_preset(target.document, spec),
        }
        if baselines is not None:
            vectors.update(baselines.for_clip(mel))
        else:
            vectors.update({"random_preset": next(sampler), "init_preset": init_doc})
        if single_cycle is not None:
            vectors["single_cycle"] = single_cycle(target.audio, target.note)
        if pool is not None:
            search_target = Target.from_clip(target.audio, target.note, note_seconds=NOTE_SECONDS)
            model_logits = [lg[0] for lg in logits]
            vectors.update(search_methods(search_target, pool, cont[0], model_logits, search_seconds, seed))
        examples.append(Example(note=target.note, target_audio=target.audio, vectors=vectors))
    if pool is not None:
        pool.close()
    report: dict[str, Any] = {
        "checkpoint": proposer.label,
        "presets": str(presets),
        "model": proposer.model_name,
        "n_presets": len({t.name for t in targets}),
        "notes": list(notes),
        "clips": [{"preset": t.name, "note": t.note} for t in targets],
        "skipped": skipped,
    }
    report["audio"] = _score_audio(examples, spec, Path(out), progress)
    _write_report(report, Path(out))
    return report


def _search_pool(spec, search_seconds: float):
    """The render pool of the search rows (one worker per core), or None without a search."""
    if search_seconds < 0:
        raise ValueError(f"`--search-seconds` must be 0 or more, got {search_seconds}")
    if not search_seconds:
        return None
    from zoo.matching import RenderPool

    return RenderPool(spec=spec)


def _score_audio(examples: list[Example], spec, out: Path, progress: bool) -> dict[str, Any]:
    """Render every method's preset at each clip's note and measure the distance to the target."""
    import soundfile as sf
    from tqdm.auto import tqdm

    from zoo.vital.render import VitalRenderer

    renderer = VitalRenderer()
    methods = [m for m in METHODS if m in examples[0].vectors]
    dist: dict[str, list[float]] = {m: [] for m in methods}
    out.mkdir(parents=True, exist_ok=True)
    wav_dir = out / "wavs"
    wav_dir.mkdir(exist_ok=True)
    shown = []
    for k, ex in enumerate(tqdm(examples, desc="rendering predictions and baselines", disable=not progress)):
        renders = {}
        for method in methods:
            proposal = ex.vectors[method]
            if isinstance(proposal, dict):  # a whole .vital document (beyond Tier 1)
                audio = renderer.render(proposal, ex.note)
            else:
                cont, cat = proposal
                audio = renderer.render_vector(np.asarray(cont, np.float32), np.asarray(cat, np.int64), ex.note)
            renders[method] = audio
            try:
                dist[method].append(multiscale_spectral_distance(ex.target_audio, audio))
            except ValueError:  # a silent render cannot be loudness-matched: it is as far as it gets
                dist[method].append(float("nan"))
        if k < 4:
            sf.write(wav_dir / f"{k}_target.wav", ex.target_audio, 44100)
            sf.write(wav_dir / f"{k}_model.wav", renders["model"], 44100)
            shown.append((ex.target_audio, renders["model"], ex.note))
    _plot_examples(shown, out / "spectrograms.png")
    # A silent render has no spectrum to compare (NaN). Means and medians are taken over the clips where
    # every method made sound, so all methods are scored on the same clips; in the head-to-head share a
    # silent render loses (distance +inf).
    table = np.array([dist[m] for m in methods], dtype=np.float64)  # (methods, clips)
    paired = ~np.isnan(table).any(axis=0)
    worst = np.where(np.isnan(table), np.inf, table)
    summary: dict[str, Any] = {}
    for i, m in enumerate(methods):
        v = table[i, paired]
        summary[m] = {
            "mean": float(v.mean()) if v.size else None,
            "median": float(np.median(v)) if v.size else None,
            "silent_renders": int(np.isnan(table[i]).sum()),
        }
    rng = np.random.default_rng(0)
    for i, m in enumerate(methods[1:], start=1):
        summary[m]["model_closer_share"] = float(np.mean(worst[0] < worst[i]))
        # How much closer the model is than this baseline (> 0: closer), with a paired bootstrap 95 % interval.
        gain = table[i, paired] - table[0, paired]
        if gain.size:
            boots = rng.choice(gain, size=(2000, gain.size)).mean(axis=1)
            summary[m]["model_gain"] = float(gain.mean())
            summary[m]["model_gain_ci95"] = [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]
    summary["n_paired_clips"] = int(paired.sum())
    # Per clip, in the order of the examples (null: silent render), for paired comparisons between reports.
    summary["distances"] = {
        m: [None if np.isnan(d) else round(float(d), 5) for d in table[i]] for i, m in enumerate(methods)
    }
    return {"metric": "multi-scale spectral distance (lower is closer)", "n_clips": len(examples), **summary}


def _plot_examples(shown: list[tuple[np.ndarray, np.ndarray, int]], path: Path) -> None:
    """Target and prediction of the first clips side by side (``training.spectrogram_plot``)."""
    from training.spectrogram_plot import plot_log_mels
    from zoo.audio import LogMelFrontEnd

    if not shown:
        return
    fe = LogMelFrontEnd()
    mels, titles = [], []
    for target, pred, note in shown:
        for audio, title in ((target, "target"), (pred, "prediction")):
            mels.append(fe(torch.from_numpy(np.asarray(audio, np.float32)))[0, 0].numpy())
            titles.append(f"{title} (MIDI {note})")
    plot_log_mels(mels, titles, path, fe.cfg, columns=2)


def _write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
