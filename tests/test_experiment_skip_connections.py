"""`zoo experiment skip-connections`: a miniature run writes the report, and the command's user errors."""

import pytest
import torch
from typer.testing import CliRunner

from training.experiments.skip_connections import Settings, run_all, write_report
from zoo.cli import app


@pytest.fixture
def one_thread():
    """The experiment runs single-threaded (as its command does): tiny ops are slower with a thread pool."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = Settings(
    grad_depths=(5, 100),  # depths of the note's table, so its figures can stand beside ours
    grad_seeds=1,
    grad_batch=8,
    identity_depths=(2, 3),
    identity_seeds=1,
    steps=4,
    eval_every=2,
    batch=8,
    eval_size=16,
    gate_seeds=1,
)


def test_tiny_run_writes_tables_plots_and_the_command(tmp_path, one_thread):
    settings = TINY
    results = run_all(settings)
    plain = results["gradient_flow"]["default"]["plain"]
    assert len(plain["5"][0]["layer_norms"]) == 10  # two linear layers per block
    assert plain["100"][0]["layer_norms"][0] > 0  # float64: depth 100 does not underflow to zero
    assert [r["params"] for r in results["variants"][:3]] == [2048, 3584, 2048]
    results.update(command="zoo experiment skip-connections --out x", settings=settings.__dict__, torch="t", seconds=1)
    report = write_report(results, tmp_path).read_text()
    assert report.splitlines()[3] == "zoo experiment skip-connections --out x"
    for png in ("gradient_flow_per_layer", "gradient_flow_ratio", "identity_learning", "highway_gate"):
        assert (tmp_path / f"{png}.png").stat().st_size > 10_000
        assert f"({png}.png)" in report


def test_report_only_without_results_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["experiment", "skip-connections", "--report-only", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "results.json does not exist" in result.output and "Traceback" not in result.output


def test_quick_run_never_writes_over_the_committed_results(tmp_path, monkeypatch, one_thread):
    from training.experiments import skip_connections

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Settings, "quick", classmethod(lambda cls: TINY))
    result = CliRunner().invoke(app, ["experiment", "skip-connections", "--quick"])
    assert result.exit_code == 0, result.output
    quick = tmp_path / skip_connections.QUICK_OUT
    assert (quick / "results.json").is_file() and (quick / "results.md").is_file()
    assert "zoo experiment skip-connections --quick --out runs/experiments/" in (quick / "results.md").read_text()
    assert not (tmp_path / skip_connections.DEFAULT_OUT).exists()
