"""``zoo bench``: latency and throughput of every backend and of the HTTP server, against the machine's limit.
Heavy imports happen inside the command, so ``zoo --help`` stays fast."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from zoo.console import console, err_console, user_errors

app = typer.Typer(no_args_is_help=True)

ONNX_SPEEDUP_TARGET = 1.3  # ONNX Runtime end to end at batch 1 against eager, on a CPU
BATCHING_GAIN_TARGET = 2.0  # batched requests/s against the unbatched baseline at concurrency 32
TAIL_RATIO_TARGET = 3.0  # p99 / p50 of the batched server at concurrency 32
TARGET_CONCURRENCY = 32
TABLE_WIDTH = 150  # the tables stay readable in a log or a narrow terminal (lines wrap instead of columns)


def _int_list(flag: str, text: str) -> tuple[int, ...]:
    """``"1,8,32"`` -> (1, 8, 32); a one-line error naming the flag otherwise."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"`{flag}` takes integers separated by commas, e.g. 1,8,32; got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise ValueError(f"`{flag}` takes positive integers separated by commas, e.g. 1,8,32; got {text!r}")
    return values


def _word_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _print_table(table: Any) -> None:
    """In a terminal as wide as it is; piped into a log, at least ``TABLE_WIDTH`` columns so no cell is cut."""
    if console.is_terminal:
        console.print(table)
    else:
        from rich.console import Console

        Console(file=console.file, width=max(console.width, TABLE_WIDTH)).print(table)


def _outputs(json_out: Path) -> tuple[Path, Path, Path]:
    return json_out, json_out.with_suffix(".md"), json_out.with_suffix(".png")


@app.command("bench")
@user_errors
def bench_cmd(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME|ARTIFACT_DIR",
            help="A registered model name (exported on the fly) or an artifact folder.",
            show_default=False,
        ),
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="Comma separated: eager, torchscript, onnx.")] = (
        "eager,torchscript,onnx"
    ),
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Comma separated batch sizes.")] = "1,8,32",
    scope: Annotated[
        str, typer.Option("--scope", help="end-to-end (waveform, front end and model) and/or model (on the log-mel).")
    ] = "end-to-end,model",
    device: Annotated[str, typer.Option("--device", help="cpu or cuda (fp16/bf16 rows are added on CUDA).")] = "cpu",
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed calls per configuration.")] = 3,
    iters: Annotated[int, typer.Option("--iters", help="Timed calls per configuration (at most 60 s of them).")] = 20,
    threads: Annotated[
        int | None, typer.Option("--threads", help="CPU threads of torch and ONNX Runtime (default: the cores).")
    ] = None,
    http: Annotated[
        str | None, typer.Option("--http", help="Load-test a running `zoo serve` at this loopback URL instead.")
    ] = None,
    concurrency: Annotated[str, typer.Option("--concurrency", help="--http: concurrent clients per level.")] = (
        "1,8,32,64"
    ),
    duration: Annotated[float, typer.Option("--duration", help="--http: measured seconds per level.")] = 10.0,
    audio: Annotated[
        Path | None, typer.Option("--audio", help="--http: recording to send (default: a Vital note, synthesized).")
    ] = None,
    baseline: Annotated[
        bool, typer.Option("--baseline", help="--http: also serve the same model one request at a time and compare.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the results here (and a .md table and a .png plot beside).")
    ] = None,
) -> None:
    """Latency and throughput of a model on eager PyTorch, TorchScript and ONNX Runtime (p50/p90/p99, samples/s,
    FLOPs and the fraction of the machine's peak matmul rate), or of a running server under closed-loop load."""
    if (target is None) == (http is None):
        raise ValueError("give either a model (NAME or ARTIFACT_DIR) or `--http URL`, not both or neither")
    if http is not None:
        _http_run(http, concurrency, duration, audio, baseline, json_out)
    else:
        _model_run(str(target), backend, batch_sizes, scope, device, warmup, iters, threads, json_out)


# --------------------------------------------------------------------------------------------------
# Model runs


def _model_run(
    target: str,
    backend: str,
    batch_sizes: str,
    scope: str,
    device: str,
    warmup: int,
    iters: int,
    threads: int | None,
    json_out: Path | None,
) -> None:
    import tempfile

    import torch

    from benchmarks.machine import describe_machine, load_average, measure_peak_gflops
    from benchmarks.model_runs import (
        ModelBenchConfig,
        build_runners,
        default_threads,
        device_precisions,
        resolve_subject,
        time_runners,
    )
    from benchmarks.report import MODEL_COLUMNS, markdown_table, model_table, plot_model_rows, write_json

    config = ModelBenchConfig(
        target=target,
        backends=_word_list(backend),
        batch_sizes=_int_list("--batch-sizes", batch_sizes),
        scopes=_word_list(scope),
        device=device,
        warmup=warmup,
        iters=iters,
        threads=threads,
    )
    n_threads = default_threads(config)
    torch.set_num_threads(n_threads)
    machine = describe_machine(config.device, n_threads)
    command = (
        f"zoo bench {target} --backend {','.join(config.backends)} --batch-sizes "
        f"{','.join(map(str, config.batch_sizes))} --scope {','.join(config.scopes)} --device {config.device} "
        f"--warmup {config.warmup} --iters {config.iters}" + (f" --threads {threads}" if threads else "")
    )
    precisions = device_precisions(config.device)
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        with console.status("preparing the model (exporting when given a name)..."):
            subject = resolve_subject(target, config.backends, Path(tmp))
            runners, skipped = build_runners(subject, config, n_threads, Path(tmp))
        with console.status("measuring the peak matmul rate..."):
            peak_before = measure_peak_gflops(config.device, precisions)
        with console.status("timing...") as status:
            rows = time_runners(runners, subject, config, peak_before, progress=lambda text: status.update(text))
        peak_after = measure_peak_gflops(config.device, precisions)
    machine.load_average_after = load_average()
    # The peak is the best of the two measurements; rows were scored against the first, rescale to the best.
    peak = {p: max(peak_before[p], peak_after.get(p, 0.0)) for p in peak_before}
    for row in rows:
        scale = peak_before.get(row.precision, 0.0) / peak.get(row.precision, 1.0)
        row.peak_fraction = float(f"{row.peak_fraction * scale:.4g}")
    machine.peak_gflops = peak

    threads_text = f"{n_threads} thread{'s' if n_threads != 1 else ''}"
    title = f"zoo bench {subject.name} on {machine.cpu if config.device == 'cpu' else machine.gpu}, {threads_text}"
    _print_table(model_table(rows, title))
    console.print(
        f"peak matmul: {', '.join(f'{p} {v:.1f} GFLOP/s' for p, v in peak.items())} (before {peak_before}, after "
        f"{peak_after}); load average before {machine.load_average_before}, after {machine.load_average_after}; "
        f"eager weights: {subject.weights}",
        highlight=False,
        soft_wrap=True,
    )
    for reason in skipped:
        console.print(f"skipped: {reason}", highlight=False, soft_wrap=True)
    targets = _model_targets(rows, config.device)
    for line in targets.get("summary", []):
        console.print(line, highlight=False, soft_wrap=True)
    if json_out is None:
        console.print("pass `--json OUT` to keep the results (JSON, a markdown table and a PNG plot)")
        return
    json_path, md_path, png_path = _outputs(json_out)
    payload: dict[str, Any] = {
        "kind": "zoo-bench/models",
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine.to_dict(),
        "subject": {
            "name": subject.name,
            "target": target,
            "exported_on_the_fly": subject.exported_here,
            "eager_weights": subject.weights,
            "artifact_version": subject.artifact.version
            if subject.artifact is not None and not subject.exported_here
            else None,
        },
        "config": {k: v for k, v in vars(config).items() if k != "target"},
        "notes": [
            "p50/p90/p99: latency of one call on a batch (ms), outputs back on the host; samples/s = batch x calls / "
            "time of the calls",
            "gflops: counted FLOPs of one call at that batch size (torch.utils.flop_counter; FFT estimated as "
            "2.5 N log2 N); gflop_per_s at the p50 latency; peak_fraction against the peak matmul rate in 'machine'",
            "end-to-end: eager runs the FFT front end, TorchScript and ONNX Runtime the exported graph's (front_end)",
        ],
        "rows": [r.to_dict() for r in rows],
        "skipped": skipped,
        "targets": {k: v for k, v in targets.items() if k != "summary"},
    }
    write_json(json_path, payload)
    md_path.write_text(
        f"# {title}\n\n```bash\n{command} --json {json_path}\n```\n\n"
        + markdown_table(MODEL_COLUMNS, payload["rows"])
        + "".join(f"\n- {line}" for line in targets.get("summary", []))
        + "\n"
    )
    plot_model_rows(rows, png_path, f"{title}; peak {peak.get('fp32', 0):.0f} GFLOP/s fp32")
    console.print(f"results: {json_path}, {md_path}, {png_path}", highlight=False, soft_wrap=True)


def _model_targets(rows: list, device: str) -> dict[str, Any]:
    b1 = {(r.backend, r.scope, r.precision): r for r in rows if r.batch_size == 1}
    onnx, eager = b1.get(("onnx", "end-to-end", "fp32")), b1.get(("eager", "end-to-end", "fp32"))
    if onnx is None or eager is None or device != "cpu":
        return {}
    speedup = eager.p50_ms / onnx.p50_ms
    met = speedup >= ONNX_SPEEDUP_TARGET
    return {
        "onnx_end_to_end_batch1_speedup_vs_eager": round(speedup, 3),
        "onnx_speedup_target": ONNX_SPEEDUP_TARGET,
        "onnx_speedup_met": met,
        "summary": [
            f"target: ONNX Runtime end to end at batch 1 is {speedup:.2f}x eager's speed (p50 {onnx.p50_ms:.1f} ms vs "
            f"{eager.p50_ms:.1f} ms); target {ONNX_SPEEDUP_TARGET}x: {'met' if met else 'NOT met'}"
        ],
    }


# --------------------------------------------------------------------------------------------------
# Server runs


def _http_run(
    url: str, concurrency: str, duration: float, audio: Path | None, baseline: bool, json_out: Path | None
) -> None:
    from contextlib import nullcontext

    import requests

    from benchmarks.baseline_server import BaselineServer
    from benchmarks.http_load import (
        HttpBenchConfig,
        ServerUnavailableError,
        check_health,
        closed_loop,
        server_info,
        summarise,
    )
    from benchmarks.machine import describe_machine, load_average
    from benchmarks.recording import read_recording, synth_recording
    from benchmarks.report import HTTP_COLUMNS, http_table, markdown_table, plot_http, write_json

    config = HttpBenchConfig(
        url=url, concurrency=_int_list("--concurrency", concurrency), duration=duration, audio=audio, baseline=baseline
    )
    check_health(config.base_url)
    info = server_info(config.base_url)
    with console.status("preparing the recording..."):
        recording = read_recording(audio) if audio is not None else synth_recording()
    probe = requests.post(
        f"{config.base_url}/predict",
        data=recording.data,
        headers={"Content-Type": recording.content_type, **_api_key_header()},
        timeout=config.timeout,
    )
    if probe.status_code != 200:
        raise ServerUnavailableError(
            f"the server refused the test recording: HTTP {probe.status_code} {probe.text[:200]}"
        )
    served = probe.json()["model"]
    model = info.get("model") or {}
    workers = int((info.get("server") or {}).get("workers_per_device") or 1)
    baseline_threads = max(1, (os.cpu_count() or 1) // workers)  # what `zoo serve` gives each worker
    machine = describe_machine("cpu", baseline_threads)
    command = (
        f"zoo bench --http {url} --concurrency {','.join(map(str, config.concurrency))} --duration {config.duration:g}"
        + (f" --audio {audio}" if audio else "")
        + (" --baseline" if baseline else "")
    )
    levels = []
    server_cm: Any = nullcontext()
    if baseline:
        artifact = model.get("artifact")
        if not artifact or not Path(artifact).is_dir():
            raise ServerUnavailableError(
                f"`--baseline` needs the server's artifact folder from /info, got {artifact!r}; is this a `zoo serve`?"
            )
        backend = model.get("backend", "onnx")  # the `--backend` of `zoo serve` (the answer names the runtime)
        server_cm = BaselineServer(artifact, backend, baseline_threads, device=served["device"])
    with console.status("starting the unbatched baseline..." if baseline else "starting...") as status:
        with server_cm as unbatched:
            urls = {"batched": config.base_url, **({"baseline": unbatched.base_url} if baseline else {})}
            # With a baseline the servers take turns, batched-baseline-baseline-batched, half the window each:
            # a load that drifts during the level hits both alike.
            turns = ["batched", "baseline", "baseline", "batched"] if baseline else ["batched"]
            seconds = config.duration / 2 if baseline else config.duration
            for level in config.concurrency:
                windows: dict[str, list] = {name: [] for name in urls}
                for name in turns:
                    status.update(f"{name}: {level} concurrent clients, {seconds:g} s after warm-up")
                    windows[name].append(
                        closed_loop(
                            urls[name], recording, level, seconds, config.warmup, config.max_requests, config.timeout
                        )
                    )
                levels += [summarise(name, level, windows[name]) for name in urls]
    machine.load_average_after = load_average()
    title = f"zoo bench --http: {served['name']} {served['version']} ({served['backend']} on {served['device']})"
    _print_table(http_table(levels, title))
    targets = _http_targets(levels)
    for line in targets.get("summary", []):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(
        f"recording: {recording.description}; load average before {machine.load_average_before}, "
        f"after {machine.load_average_after}",
        highlight=False,
        soft_wrap=True,
    )
    errors = sum(lv.errors for lv in levels)
    if errors:
        examples = sorted({e for lv in levels for e in lv.error_examples})[:3]
        err_console.print(f"[bold red]{errors} request(s) failed[/]: {'; '.join(examples)}", soft_wrap=True)
    if json_out is None:
        console.print("pass `--json OUT` to keep the results (JSON, a markdown table and a PNG plot)")
        return
    json_path, md_path, png_path = _outputs(json_out)
    payload = {
        "kind": "zoo-bench/http",
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine.to_dict(),
        "server": info,
        "served_by": served,
        "recording": recording.description,
        "config": {
            "concurrency": list(config.concurrency),
            "duration_s": config.duration,
            "warmup_s": config.warmup,
            "max_requests_per_level": config.max_requests,
            "baseline": baseline,
            "baseline_threads": baseline_threads if baseline else None,
        },
        "notes": [
            "closed loop: each client sends its next request when the previous answer arrives; a level's window "
            "opens after warmup_s once as many answers as clients have come back",
            "with a baseline the two servers take turns batched, baseline, baseline, batched (duration_s / 2 each)",
            "requests_per_s: successful answers completed in the measured window / window length; latencies are "
            "the client's; server_ms: means of the server's timings_ms; decode_share = decode / (total - queue)",
            "baseline: the same artifact and PresetAPI code behind plain FastAPI + uvicorn, one request at a time",
        ],
        "levels": [lv.to_dict() for lv in levels],
        "targets": {k: v for k, v in targets.items() if k != "summary"},
    }
    write_json(json_path, payload)
    md_path.write_text(
        f"# {title}\n\n```bash\n{command} --json {json_path}\n```\n\n"
        + markdown_table(HTTP_COLUMNS, payload["levels"])
        + "".join(f"\n- {line}" for line in targets.get("summary", []))
        + "\n"
    )
    plot_http(levels, png_path, title)
    console.print(f"results: {json_path}, {md_path}, {png_path}", highlight=False, soft_wrap=True)


def _api_key_header() -> dict[str, str]:
    from benchmarks.http_load import API_KEY_ENV

    key = os.environ.get(API_KEY_ENV)
    return {"X-API-Key": key} if key else {}


def _http_targets(levels: list) -> dict[str, Any]:
    by = {(lv.server, lv.concurrency): lv for lv in levels}
    batched = by.get(("batched", TARGET_CONCURRENCY))
    if batched is None or not batched.requests:
        return {}
    tail = batched.p99_ms / batched.p50_ms
    out: dict[str, Any] = {
        "p99_over_p50_at_32": round(tail, 3),
        "tail_target": TAIL_RATIO_TARGET,
        "tail_met": tail <= TAIL_RATIO_TARGET,
    }
    summary = [
        f"target: batched p99 / p50 at concurrency {TARGET_CONCURRENCY} = {tail:.2f} "
        f"(target <= {TAIL_RATIO_TARGET:g}): {'met' if tail <= TAIL_RATIO_TARGET else 'NOT met'}"
    ]
    base = by.get(("baseline", TARGET_CONCURRENCY))
    if base is not None and base.requests_per_s > 0:
        gain = batched.requests_per_s / base.requests_per_s
        out.update(
            {
                "batched_over_baseline_at_32": round(gain, 3),
                "batching_target": BATCHING_GAIN_TARGET,
                "batching_met": gain >= BATCHING_GAIN_TARGET,
            }
        )
        summary.insert(
            0,
            f"target: batched serving at concurrency {TARGET_CONCURRENCY} gives {gain:.2f}x the unbatched baseline's "
            f"requests/s ({batched.requests_per_s:.2f} vs {base.requests_per_s:.2f}); "
            f"target {BATCHING_GAIN_TARGET:g}x: {'met' if gain >= BATCHING_GAIN_TARGET else 'NOT met'}",
        )
    out["summary"] = summary
    return out
