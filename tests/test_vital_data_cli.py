import h5py
import pytest
from typer.testing import CliRunner

from zoo.cli import app

pytest.importorskip("vita")

runner = CliRunner()


def test_generate_precompute_inspect(tmp_path):
    out = tmp_path / "data" / "vital.h5"
    args = ["data", "generate", "--n-presets", "2", "--out", str(out), "--notes", "60", "--seed", "3", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "rejection rate" in result.output and "complete: 2/2 presets" in result.output
    result = runner.invoke(app, ["data", "precompute-mels", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    with h5py.File(out, "r") as f:
        assert f["features/mel_spectrogram"].shape == (2, 1, 128, 173)
    result = runner.invoke(app, ["data", "inspect", str(out), "--plots", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    assert "renders stored" in result.output and "rejected renders" in result.output
    assert (tmp_path / "plots" / "params.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "spectrograms.png").stat().st_size > 1000
    result = runner.invoke(app, args)  # the output exists: refuse, keep it
    assert result.exit_code == 1 and "already exists" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "0"], "--workers must be at least 1, got 0"),
        (["--workers", "-3"], "--workers must be at least 1, got -3"),
        (["--shard", "3/2"], "--shard must be i/n"),
        (["--shard", "half"], "--shard must look like i/n"),
        (["--notes", "60,x"], "--notes must be comma-separated"),
        (["--n-presets", "0"], "--n-presets must be at least 1"),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path, extra, message):
    args = ["data", "generate", "--n-presets", "2", "--out", str(tmp_path / "v.h5"), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_generate_rejects_an_unwritable_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["data", "generate", "--n-presets", "1", "--out", str(blocker / "v.h5")])
    assert result.exit_code == 1 and "cannot create the folder" in result.output


def test_precompute_and_inspect_reject_missing_or_foreign_files(tmp_path):
    result = runner.invoke(app, ["data", "precompute-mels", str(tmp_path / "none.h5")])
    assert result.exit_code == 1 and "no such dataset file" in result.output
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = [1, 2, 3]
    result = runner.invoke(app, ["data", "inspect", str(other)])
    assert result.exit_code == 1 and "not a Vital dataset" in result.output
    text = tmp_path / "text.h5"
    text.write_text("hello")
    result = runner.invoke(app, ["data", "inspect", str(text)])
    assert result.exit_code == 1 and "not an HDF5 file" in result.output
