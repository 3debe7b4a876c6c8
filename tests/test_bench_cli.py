"""`zoo bench` as a user runs it: model runs on the exported test bundle, bad arguments, and a short closed-loop
load against a real `zoo serve` process (with the unbatched baseline beside it)."""

import json
import os

import pytest
import torch
from server_process import free_port, running_server
from typer.testing import CliRunner

from zoo.cli import app

requests = pytest.importorskip("requests")

ROW_KEYS = {"backend", "batch_size", "p50_ms", "p90_ms", "p99_ms", "samples_per_s", "gflops", "peak_fraction"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def _one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], result.output


def test_bench_artifact_writes_rows_json_markdown_and_png(untrained_artifact, tmp_path):
    out = tmp_path / "models.json"
    args = ["bench", str(untrained_artifact.path), "--iters", "2", "--warmup", "0", "--batch-sizes", "1,2"]
    result = runner.invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    rows = doc["rows"]
    combos = {(r["backend"], r["scope"], r["batch_size"]) for r in rows}
    for backend in ("eager", "torchscript", "onnx"):
        for scope in ("end-to-end", "model"):
            assert {(backend, scope, 1), (backend, scope, 2)} <= combos
    for row in rows:
        assert ROW_KEYS <= set(row), row
        assert row["p50_ms"] > 0 and row["samples_per_s"] > 0 and row["iters"] == 2
        assert 0 < row["peak_fraction"] < 1.5  # of a peak measured in the same run
    eager_e2e = next(r for r in rows if (r["backend"], r["scope"], r["batch_size"]) == ("eager", "end-to-end", 1))
    onnx_e2e = next(r for r in rows if (r["backend"], r["scope"], r["batch_size"]) == ("onnx", "end-to-end", 1))
    model = next(r for r in rows if (r["backend"], r["scope"], r["batch_size"]) == ("onnx", "model", 1))
    # FLOPs of the front ends on top of the ResNet: the FFT 0.055 GFLOP, the exported factored DFT 0.19.
    assert eager_e2e["front_end"] == "fft" and onnx_e2e["front_end"] == "factored"
    assert onnx_e2e["gflops"] - model["gflops"] == pytest.approx(0.19, abs=0.02)
    assert eager_e2e["gflops"] - model["gflops"] == pytest.approx(0.055, abs=0.01)
    assert doc["machine"]["peak_gflops"]["fp32"] > 0 and doc["machine"]["cores"] >= 1
    assert doc["subject"]["eager_weights"].startswith("the bundle's")
    assert "onnx_end_to_end_batch1_speedup_vs_eager" in doc["targets"]
    assert out.with_suffix(".png").read_bytes()[:8] == PNG_MAGIC
    assert "| backend |" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["bench", "vital-resnet18", "--backend", "eager,tensorrt"], ["`--backend`", "tensorrt"]),
        (["bench", "vital-resnet18", "--batch-sizes", "1,0"], ["`--batch-sizes`"]),
        (["bench", "vital-resnet18", "--batch-sizes", "one"], ["`--batch-sizes`"]),
        (["bench", "vital-resnet18", "--iters", "0"], ["`--iters`"]),
        (["bench", "vital-resnt18"], ["unknown model", "vital-resnet18"]),
        (["bench"], ["either a model"]),
        (["bench", "vital-resnet18", "--http", "http://127.0.0.1:8000"], ["either a model"]),
        (["bench", "--http", "http://10.1.2.3:8000"], ["`--http`", "10.1.2.3"]),
        (["bench", "--http", "http://example.com/predict"], ["`--http`", "example.com"]),
        (["bench", "--http", "ftp://127.0.0.1:8000"], ["`--http`"]),
        (["bench", "--http", "http://127.0.0.1:8000", "--concurrency", "0"], ["`--concurrency`"]),
    ],
)
def test_bad_arguments_are_one_line_errors(args, needles):
    _one_line_error(runner.invoke(app, args), *needles)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_one_line_error():
    _one_line_error(runner.invoke(app, ["bench", "vital-resnet18", "--device", "cuda"]), "`--device cuda`", "CUDA")


@pytest.mark.gpu  # skipped without a CUDA device (tests/conftest.py)
def test_bench_on_cuda_adds_reduced_precision_rows(untrained_artifact, tmp_path):
    from benchmarks.model_runs import device_precisions

    out = tmp_path / "cuda.json"
    args = ["bench", str(untrained_artifact.path), "--device", "cuda", "--iters", "2", "--batch-sizes", "1,2"]
    result = runner.invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert {r["device"] for r in doc["rows"]} == {"cuda"}
    assert {"eager", "torchscript"} <= {r["backend"] for r in doc["rows"]}
    reduced = [p for p in device_precisions("cuda") if p != "fp32"]
    assert "fp16" in reduced
    # Every reduced-precision runner is either timed at every batch size or reported as skipped, never both,
    # never neither.
    for backend in ("eager", "torchscript"):
        for scope in ("end-to-end", "model"):
            for precision in reduced:
                timed = {r["batch_size"] for r in doc["rows"] if (r["backend"], r["scope"], r["precision"])
                         == (backend, scope, precision)}  # fmt: skip
                skipped = [s for s in doc["skipped"] if s.startswith(f"{backend} {scope} {precision}:")]
                assert (timed == {1, 2}) != bool(skipped), (backend, scope, precision, timed, skipped)
    assert doc["machine"]["peak_gflops"]["fp16"] > doc["machine"]["peak_gflops"]["fp32"]


def test_http_without_a_server_is_a_one_line_error():
    _one_line_error(runner.invoke(app, ["bench", "--http", f"http://127.0.0.1:{free_port()}"]), "zoo serve")


@pytest.fixture(scope="module")
def served(untrained_artifact, tmp_path_factory):
    """`zoo serve` of the test bundle on a free loopback port, as a subprocess."""
    log = tmp_path_factory.mktemp("bench-serve") / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "ZOO_API_KEY"}
    with running_server(untrained_artifact.path, ["--device", "cpu", "--log-level", "warning"], env, log) as base:
        yield base


def test_http_load_against_zoo_serve_and_the_unbatched_baseline(served, tmp_path):
    out = tmp_path / "http.json"
    args = ["bench", "--http", f"{served}/predict", "--concurrency", "1,2", "--duration", "1", "--baseline"]
    result = runner.invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    levels = {(lv["server"], lv["concurrency"]): lv for lv in doc["levels"]}
    assert set(levels) == {("batched", 1), ("batched", 2), ("baseline", 1), ("baseline", 2)}
    for level in levels.values():
        assert level["errors"] == 0, level["error_examples"]
        assert level["requests"] >= 1 and level["requests_per_s"] > 0
        assert 0 < level["p50_ms"] <= level["p90_ms"] <= level["p95_ms"] <= level["p99_ms"]
        assert {"decode", "model", "total"} <= set(level["server_ms"])
        assert 0 < level["decode_share"] < 1
    assert all(levels[("baseline", c)]["mean_batch_size"] == 1 for c in (1, 2))
    assert doc["recording"].startswith("Vital base preset")
    assert out.with_suffix(".png").read_bytes()[:8] == PNG_MAGIC
