import subprocess
import sys

import pytest
from typer.testing import CliRunner

from zoo.cli import app

runner = CliRunner()


def test_list_shows_vital_resnet18():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "vital-resnet18" in result.output


def test_piped_list_is_one_whole_name_per_line():
    from zoo.registry import list_models

    result = runner.invoke(app, ["list"])  # CliRunner's stdout is not a terminal, as in `zoo list | grep ...`
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == list_models()
    assert "compositional-agent" in result.output.splitlines()
    assert runner.invoke(app, ["list", "--names", "*mlp"]).output.split() == list_models("*mlp")


def test_the_table_in_a_narrow_terminal_never_cuts_a_name(monkeypatch):
    import io

    from rich.console import Console

    import zoo.cli

    screen = io.StringIO()
    monkeypatch.setattr(zoo.cli, "console", Console(file=screen, force_terminal=True, width=80, color_system=None))
    result = runner.invoke(app, ["list", "compositional-*"])
    assert result.exit_code == 0, result.output
    table = screen.getvalue()
    assert "compositional-agent" in table and "…" not in table
    assert "14,612,166" in table


@pytest.mark.parametrize("command", [["predict"], ["train"], ["data", "generate"], ["list"]])
def test_flags_take_no_value_in_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--help" in result.output and "<bool>" not in result.output
    assert "<path>" in result.output or "<int>" in result.output or command == ["list"]  # values still shown


def test_list_pattern_without_match_is_an_error():
    result = runner.invoke(app, ["list", "nothing-*"])
    assert result.exit_code == 1
    assert "no registered model matches" in result.output


def test_info_shows_card():
    from zoo.registry import count_params, create_model

    result = runner.invoke(app, ["info", "vital-resnet18"])
    assert result.exit_code == 0, result.output
    total, trainable = count_params(create_model("vital-resnet18"))
    assert f"parameters: {total:,} ({trainable:,} trainable)" in result.output
    assert "(B, 1, 128, 173)" in result.output
    assert "layer4" in result.output


def test_info_unknown_model_is_one_line_error():
    result = runner.invoke(app, ["info", "vital-resnet"])
    assert result.exit_code == 1
    # The closest match comes first; other registered names may follow it.
    assert "unknown model 'vital-resnet'; did you mean vital-resnet18" in result.output
    assert "Traceback" not in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("zoo ")


def test_console_script_help_does_not_import_torch():
    code = "import sys; from zoo.cli import app; import zoo; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
