"""`zoo train` flags that must reach the trainer: `--init-from` loads its weights, a missing file is one line."""

import re

import torch
from typer.testing import CliRunner

import zoo
from training.checkpoint import save_checkpoint
from zoo.cli import app


def test_init_from_loads_the_checkpoint_weights(tmp_path):
    torch.manual_seed(123)
    model = zoo.create_model("residual-mlp")
    ckpt = save_checkpoint(
        tmp_path / "start.pt",
        {"model_name": "residual-mlp", "model_config": {}, "model": model.state_dict(), "epoch": 0},
    )
    args = ["train", "residual-mlp", "--epochs", "1", "--max-steps", "1", "--out", str(tmp_path / "runs")]
    result = CliRunner().invoke(app, [*args, "--run-name", "warm", "--init-from", str(ckpt)])
    assert result.exit_code == 0, result.output
    loaded = re.search(r"--init-from \S+start.pt: loaded (\d+) tensors", result.output.replace("\n", ""))
    assert loaded and int(loaded.group(1)) > 0, result.output  # without the flag passed on, nothing is loaded
    config = (tmp_path / "runs" / "residual-mlp" / "warm" / "config.json").read_text()
    assert str(ckpt) in config


def test_init_from_a_missing_file_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["train", "residual-mlp", "--init-from", str(tmp_path / "nope.pt")])
    assert result.exit_code == 1
    assert "`--init-from`" in result.output and "no such checkpoint file" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()
