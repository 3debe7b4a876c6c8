"""A missing optional dependency is one line naming the extra that installs it, never a traceback."""

import sys

import pytest
from typer.testing import CliRunner

from zoo.cli import app
from zoo.errors import MissingDependencyError
from zoo.optional import import_optional


@pytest.fixture
def no_onnxruntime(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails as if not installed


def test_import_optional_names_the_extra(no_onnxruntime):
    with pytest.raises(MissingDependencyError, match=r"pip install 'audio-model-zoo\[cpu\]'"):
        import_optional("onnxruntime")
    assert import_optional("json").dumps([]) == "[]"


def test_a_module_that_is_no_optional_dependency_is_not_disguised():
    with pytest.raises(ModuleNotFoundError):
        import_optional("no_such_module_anywhere")


def test_zoo_export_without_onnxruntime_is_one_line(no_onnxruntime, tmp_path):
    from training.checkpoint import save_checkpoint
    from zoo.registry import create_model

    ckpt = save_checkpoint(
        tmp_path / "best.pt",
        {"model_name": "plain-mlp", "model_config": {}, "model": create_model("plain-mlp").state_dict()},
    )
    result = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(tmp_path / "bundle")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "onnxruntime is not installed" in lines[0] and "pip install 'audio-model-zoo[cpu]'" in lines[0]
    assert not (tmp_path / "bundle").exists()
