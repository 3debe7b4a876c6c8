"""The default model that ships in the package (zoo/weights/vital-resnet18), and its float16 weights."""

import json
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from training.ship import HALF_MIN_AGREEMENT, HALF_TOLERANCE, MAX_BUNDLE_BYTES, half_parity, half_weights, parity_clips
from zoo.artifact import default_artifact, load_artifact
from zoo.cli import app
from zoo.weights import shipped_artifact, shipped_models

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_ships_vital_resnet18_with_a_card_that_says_how_it_was_made():
    folder = shipped_artifact("vital-resnet18")
    assert folder is not None and "vital-resnet18" in shipped_models()
    bundle = load_artifact(folder, verify=True)  # checksums hold
    assert sum(f.bytes for f in bundle.card.files) <= MAX_BUNDLE_BYTES
    assert bundle.card.weights["storage"] == "float16" and bundle.takes_waveform
    half = bundle.card.weights["parity"]
    assert half["continuous_max_abs_error"] <= HALF_TOLERANCE and half["categorical_agreement"] >= HALF_MIN_AGREEMENT
    made = bundle.card.provenance
    assert "zoo train vital-resnet18" in made["command"] and made["command"].endswith("--ship")
    data = made["data"]
    assert data["n_clips"] == data["n_presets"] * len(data["notes"]) > 0  # the dataset it names, counted
    scores = bundle.card.evaluation["evaluation"]
    assert scores["presets"].endswith("evaluation.txt") and scores["methods"]["model"]["mean"] > 0
    assert '"zoo.weights" = ["*/card.json", "*/*.onnx"]' in (ROOT / "pyproject.toml").read_text()  # in the wheel


def test_an_exported_bundle_wins_over_the_shipped_one(untrained_artifact, tmp_path):
    assert default_artifact(root=tmp_path / "artifacts") == shipped_artifact("vital-resnet18")
    exported = tmp_path / "artifacts" / "vital-resnet18" / "mine"
    shutil.copytree(untrained_artifact.path, exported)
    assert default_artifact(root=tmp_path / "artifacts") == exported
    assert default_artifact("vital-resnet18", root=tmp_path / "artifacts") == exported


def test_zoo_info_shows_the_shipped_model():
    result = CliRunner().invoke(app, ["info", "vital-resnet18"])
    assert result.exit_code == 0, result.output
    assert "shipped weights" in result.output and "float16" in result.output
    assert "evaluation presets" in result.output


def test_float16_weights_keep_the_outputs(untrained_artifact, tmp_path):
    src, half = untrained_artifact.path / "model.onnx", tmp_path / "half.onnx"
    assert half_weights(src, half) > 20
    assert half.stat().st_size < 0.55 * src.stat().st_size  # the network's weights are half the bytes
    report = half_parity(src, half, parity_clips(4))
    assert report["continuous_max_abs_error"] < HALF_TOLERANCE and report["categorical_agreement"] == 1.0
    assert json.dumps(report) and np.isfinite(report["logits_max_abs_error"])


def test_the_card_names_no_local_folders(tmp_path, monkeypatch):
    from training.ship import provenance

    monkeypatch.chdir(tmp_path)
    cfg = {"data": str(tmp_path / "data" / "mix.h5"), "epochs": 4, "batch_size": 32, "lr": 1e-3, "warmup_epochs": 1}
    made = provenance(tmp_path / "runs" / "best.pt", {"model_name": "vital-resnet18", "train_config": cfg}, tmp_path)
    assert "--data data/mix.h5 " in made["command"] and "zoo export runs/best.pt --ship" in made["command"]
    assert str(tmp_path) not in json.dumps(made)
