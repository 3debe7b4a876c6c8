import subprocess
import sys

from typer.testing import CliRunner

from zoo.cli import app

runner = CliRunner()


def test_list_shows_vital_resnet18():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "vital-resnet18" in result.output


def test_list_pattern_without_match_is_an_error():
    result = runner.invoke(app, ["list", "nothing-*"])
    assert result.exit_code == 1
    assert "no registered model matches" in result.output


def test_info_shows_card():
    result = runner.invoke(app, ["info", "vital-resnet18"])
    assert result.exit_code == 0, result.output
    assert "11,766,859" in result.output or "parameters:" in result.output
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
