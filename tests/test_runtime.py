"""ONNX Runtime sessions come from one factory (zoo.runtime); without onnxruntime every entry point says which
extra to install, in one line."""

import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from training.export import export_onnx
from zoo.errors import ArtifactError, MissingDependencyError
from zoo.runtime import ORT_SPINNING_KEY, onnx_session, run_onnx


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("runtime") / "double.onnx"
    return export_onnx(torch.nn.Linear(4, 2), (torch.randn(2, 4),), path, ["x"], ["y"])


def test_sessions_are_set_up_alike(tiny_onnx):
    """Threads as asked, one inter-op thread, idle threads that sleep instead of spinning."""
    session = onnx_session(tiny_onnx, "cpu", threads=2)
    options = session.get_session_options()
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry(ORT_SPINNING_KEY) == "0"
    assert session.get_providers() == ["CPUExecutionProvider"]
    (y,) = run_onnx(tiny_onnx, {"x": np.ones((3, 4), np.float32)})
    assert y.shape == (3, 2)


def test_a_file_that_is_not_onnx_is_one_line(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot load") as refused:
        onnx_session(bad)
    assert "\n" not in str(refused.value)


def test_missing_onnxruntime_names_the_extra(tiny_onnx, untrained_artifact, monkeypatch, tmp_path):
    from zoo.cli import app

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"audio-model-zoo\[cpu\]"):
        run_onnx(tiny_onnx, {"x": np.ones((1, 4), np.float32)})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["serve", str(untrained_artifact.path), "--port", "8765"])
    assert result.exit_code == 1 and "audio-model-zoo[cpu]" in result.output and "Traceback" not in result.output
