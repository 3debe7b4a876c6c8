"""DDP through torchrun: two CPU processes (gloo) train to the same weights as one process on the same
global batch. residual-mlp has no BatchNorm, whose per-rank statistics would legitimately differ on CPU."""

import subprocess
import sys

import torch

from training.checkpoint import load_checkpoint

ARGS = [
    "train",
    "residual-mlp",
    "--epochs",
    "2",
    "--max-steps",
    "6",
    "--batch-size",
    "32",
    "--lr",
    "0.01",
    "--device",
    "cpu",
    "--seed",
    "3",
]


def _train(tmp_path, name, extra):
    cmd = [sys.executable, "-m", "zoo.cli", *ARGS, "--out", str(tmp_path), "--run-name", name, *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return load_checkpoint(tmp_path / "residual-mlp" / name / "latest.pt"), result


def test_two_processes_match_one_on_the_same_global_batch(tmp_path):
    single, _ = _train(tmp_path, "single", [])
    ddp, result = _train(tmp_path, "ddp", ["--nproc", "2"])
    assert "launching 2 processes" in result.stdout
    assert single["step"] == ddp["step"] == 6
    for key, value in single["model"].items():
        torch.testing.assert_close(ddp["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    # Training moved the weights (1.0 is what predicting the mean scores): not two untrained models.
    assert ddp["metrics"]["val_loss"] < 1.0
