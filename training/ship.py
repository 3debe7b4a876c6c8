"""The bundle that ships inside the package (``zoo/weights/<model>/``): ``zoo export CHECKPOINT --ship``.

The checkpoint is exported to ONNX as usual (waveform in, front end in the graph, parity with eager checked),
then the network's weights are stored as float16: each float32 weight of the model becomes a float16
initializer and a Cast back to float32, which ONNX Runtime folds when it loads the graph, so the arithmetic
stays float32 and only the stored weights are rounded (half the size). The front end's DFT and mel matrices
stay float32. Parity of the float16 bundle with the float32 graph is measured on rendered audio and must hold
within ``HALF_TOLERANCE`` on the continuous outputs with at least ``HALF_MIN_AGREEMENT`` of the categorical
choices unchanged; otherwise nothing is written.

The card records how the bundle was made (checkpoint, training configuration, dataset size and prior) and,
when the human-made presets are present, the bundle's own evaluation on the calibration and evaluation lists.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from zoo.artifact import ModelFile
from zoo.errors import ParityError
from zoo.weights import WEIGHTS_DIR

HALF_TOLERANCE = 5e-3  # max abs difference of a continuous output (0.5 % of a control's range)
HALF_MIN_AGREEMENT = 0.99  # share of categorical choices (argmax) that must not change
WEIGHT_PREFIX = "model."  # initializers of the network (not the front end's matrices)
N_PARITY_CLIPS = 32
MAX_BUNDLE_BYTES = 30 * 2**20


def half_weights(src: Path, dst: Path, prefix: str = WEIGHT_PREFIX) -> int:
    """Copy an ONNX graph with its float32 initializers named ``prefix*`` stored as float16 + Cast.
    Returns the number of weights converted."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    casts, converted = [], 0
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT or not init.name.startswith(prefix):
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), name=f"{init.name}.fp16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=f"{init.name}.cast"))
        converted += 1
    for node in reversed(casts):  # first in the graph, so every consumer sees its input defined
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return converted


def parity_clips(n: int = N_PARITY_CLIPS, seed: int = 1) -> np.ndarray:
    """(n, 88200) loudness-normalised renders of presets drawn like people's (the human prior), at notes 36..84."""
    from zoo.audio import fit_length, normalize_loudness
    from zoo.vital.render import VitalRenderer
    from zoo.vital.sampler import PresetSampler

    sampler, renderer = PresetSampler(seed=seed, prior="human"), VitalRenderer()
    notes = np.random.default_rng(seed).integers(36, 85, size=4 * n)
    clips = []
    for index, note in enumerate(notes):
        continuous, categorical = sampler.sample(index)
        try:
            clips.append(normalize_loudness(fit_length(renderer.render_vector(continuous, categorical, int(note)))))
        except ValueError:  # silent
            continue
        if len(clips) == n:
            break
    return np.stack(clips)


def half_parity(fp32: Path, fp16: Path, clips: np.ndarray) -> dict[str, Any]:
    """Compare the float16-weight graph with the float32 one on ``clips``; raise ParityError out of tolerance."""
    from zoo.runtime import onnx_session

    outs = []
    for path in (fp32, fp16):
        session = onnx_session(path, "cpu")
        outs.append(session.run(None, {session.get_inputs()[0].name: clips.astype(np.float32)}))
    (ref, half), n_cat = outs, len(outs[0]) - 2  # outputs: continuous, cat_0..cat_k, mel
    cont_err = float(np.abs(ref[0] - half[0]).max())
    logit_err = max(float(np.abs(a - b).max()) for a, b in zip(ref[1 : 1 + n_cat], half[1 : 1 + n_cat], strict=True))
    agree = float(np.mean([(a.argmax(-1) == b.argmax(-1)).mean() for a, b in zip(ref[1:-1], half[1:-1], strict=True)]))
    result = {
        "reference": "the same graph with float32 weights (ONNX Runtime, CPU)",
        "inputs": f"{len(clips)} renders of presets drawn from the human prior at MIDI 36..84",
        "continuous_max_abs_error": cont_err,
        "logits_max_abs_error": logit_err,
        "categorical_agreement": agree,
        "tolerance": {"continuous_max_abs_error": HALF_TOLERANCE, "categorical_agreement": HALF_MIN_AGREEMENT},
    }
    if cont_err > HALF_TOLERANCE or agree < HALF_MIN_AGREEMENT:
        raise ParityError(
            f"float16 weights change the outputs too much: continuous {cont_err:.3g} (tolerance {HALF_TOLERANCE:g}), "
            f"categorical agreement {agree:.3f} (needs {HALF_MIN_AGREEMENT:g})"
        )
    return result


def _train_command(name: str, cfg: dict[str, Any]) -> str:
    from training.tasks import recipe_start, task_for_family
    from zoo.registry import model_entry

    if cfg.get("recipe"):
        command = f"zoo train {name} --recipe {cfg['recipe']}"
        start = recipe_start(task_for_family(model_entry(name).family), cfg["recipe"])
        if start:  # the run it starts from comes first
            command = f"zoo train {name} --recipe {start} --run-name {start} && {command}"
    else:
        command = (
            f"zoo train {name} --data {cfg.get('data')} --epochs {cfg.get('epochs')} --batch-size "
            f"{cfg.get('batch_size')} --lr {cfg.get('lr')} --warmup-epochs {cfg.get('warmup_epochs')}"
        )
        if cfg.get("augment"):
            command += f" --augment {','.join(cfg['augment'])}"
    return command + (f" --run-name {cfg['run_name']}" if cfg.get("run_name") else "")


def _dataset_facts(data: str | None) -> dict[str, Any]:
    """What the checkpoint was trained on, from the dataset file's attributes when it is still there."""
    facts: dict[str, Any] = {"path": data}
    paths = sorted(Path(data).glob("*.h5")) if data and Path(data).is_dir() else [Path(data)] if data else []
    if not paths or not all(p.is_file() for p in paths):
        return facts
    import h5py

    rows, presets = 0, 0
    for path in paths:
        with h5py.File(path, "r") as f:
            rows += int(f.attrs.get("n_rows", 0))
            presets += int(f.attrs.get("n_presets_done", 0))
            facts["prior"] = json.loads(f.attrs.get("prior", '{"broad": 1.0, "human": 0.0, "simple": 0.0}'))
            facts["vary_notes"] = bool(f.attrs.get("vary_notes", False))
            facts["notes"] = [int(n) for n in f.attrs.get("notes", [])]
    return {**facts, "n_presets": presets, "n_clips": rows}


def _generate_command(facts: dict[str, Any], seed: int) -> str | None:
    """The ``zoo data generate`` command that makes the dataset again (None when its facts are unknown)."""
    if not facts.get("n_presets") or not facts.get("path") or "prior" not in facts:
        return None
    prior = facts["prior"]
    weights = ",".join(f"{prior.get(k, 0):g}" for k in ("broad", "human", "simple"))
    notes = ",".join(str(n) for n in facts.get("notes", []))
    command = f"zoo data generate --n-presets {facts['n_presets']} --out {facts['path']} --prior {weights}"
    command += f" --notes {notes} --seed {seed} --workers 2" + (" --vary-notes" if facts.get("vary_notes") else "")
    return command


def _shown_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies inside it (a card names no local folders)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def provenance(checkpoint: Path, ckpt: dict[str, Any], out: Path) -> dict[str, Any]:
    """How a shipped bundle was made: the commands, the training configuration, the data."""
    cfg = dict(ckpt.get("train_config", {}))
    if cfg.get("data"):  # as the commands name it: relative to the working folder
        cfg["data"] = _shown_path(Path(cfg["data"]))
    keys = ("epochs", "batch_size", "lr", "warmup_epochs", "augment", "recipe", "seed", "val_fraction", "data")
    data = _dataset_facts(cfg.get("data"))
    generate = None if cfg.get("recipe") else _generate_command(data, seed=0)
    target = "" if out.resolve() == (WEIGHTS_DIR / ckpt["model_name"]).resolve() else f" --out {_shown_path(out)}"
    export = f"zoo export {_shown_path(checkpoint)} --ship{target}"
    steps = [c for c in (generate, _train_command(ckpt["model_name"], cfg), export) if c]
    return {
        "command": " && ".join(steps),
        "train_config": {k: cfg.get(k) for k in keys}
        | {"model_overrides": {k: v for k, v in cfg.get("model_overrides", {}).items()}},
        "epochs_run": int(ckpt.get("epoch", 0)) + 1,
        "data": data,
    }


def _evaluation(bundle: Path, data: str | None, work: Path, progress: bool) -> dict[str, Any]:
    """The bundle's own scores on the human-made preset lists that are present (none in a user's clone)."""
    from training.evaluate import evaluate_presets
    from zoo.vital.preset_sets import CALIBRATION_LIST, EVALUATION_LIST, human_preset_list

    scores = {}
    for name in (CALIBRATION_LIST, EVALUATION_LIST):
        presets = human_preset_list(name)
        if presets is None:
            continue
        data_path = data if data and Path(data).exists() else None
        report = evaluate_presets(bundle, presets, work / name, data=data_path, progress=progress)
        rows = {m: v for m, v in report["audio"].items() if isinstance(v, dict) and "mean" in v}  # not the counts
        methods = {m: {"mean": v["mean"], "median": v["median"]} for m, v in rows.items()}
        scores[Path(name).stem] = {
            "presets": "shared/presets/" + name,
            "notes": report["notes"],
            "n_clips": report["audio"]["n_paired_clips"],
            "metric": report["audio"]["metric"],
            "methods": methods,
        }
    return scores


def ship_checkpoint(
    checkpoint: str | Path, out: str | Path | None = None, evaluate: bool = True, progress: bool = True
) -> Path:
    """Export ``checkpoint`` as the package's bundle of its model (``zoo/weights/<model>/`` unless ``out``):
    float16 weights, parity checked, the card saying how it was made and how it scores. Replaces the old one."""
    from training.checkpoint import load_checkpoint
    from training.export import FILES, export_checkpoint

    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    out = Path(out) if out is not None else WEIGHTS_DIR / ckpt["model_name"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        work = Path(tmp)
        fp32 = export_checkpoint(checkpoint, work / "fp32", formats=("onnx",))
        bundle = work / "bundle"
        bundle.mkdir()
        name = FILES["onnx"]
        converted = half_weights(fp32.files["onnx"], bundle / name)
        parity = half_parity(fp32.files["onnx"], bundle / name, parity_clips())
        file = ModelFile.of(bundle, name, "onnx")
        if file.bytes > MAX_BUNDLE_BYTES:
            raise ParityError(f"the float16 bundle is {file.bytes / 2**20:.1f} MiB, above the 30 MiB a package ships")
        card = replace(
            fp32.card,
            model=replace(fp32.card.model, version=f"{ckpt['model_name']}-{file.sha256[:8]}"),
            files=(file,),
            weights={"storage": "float16", "compute": "float32", "float16_tensors": converted, "parity": parity},
            provenance=provenance(checkpoint, ckpt, out),
        )
        card.write(bundle)
        if evaluate:
            data = ckpt.get("train_config", {}).get("data")
            card = replace(card, evaluation=_evaluation(bundle, data, work / "eval", progress))
            card.write(bundle)
        if out.exists():
            shutil.rmtree(out)
        bundle.rename(out)
    return out
