"""Reporting ``zoo bench`` results: terminal tables, JSON, a markdown table and PNG plots."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.http_load import LevelResult
from benchmarks.model_runs import BenchRow

MODEL_COLUMNS = (
    ("backend", "backend"),
    ("scope", "scope"),
    ("precision", "prec"),
    ("batch_size", "batch"),
    ("iters", "iters"),
    ("p50_ms", "p50 ms"),
    ("p90_ms", "p90 ms"),
    ("p99_ms", "p99 ms"),
    ("samples_per_s", "samples/s"),
    ("gflops", "GFLOP"),
    ("gflop_per_s", "GFLOP/s"),
    ("peak_fraction", "of peak"),
    ("speedup_vs_eager", "vs eager"),
)
HTTP_COLUMNS = (
    ("server", "server"),
    ("concurrency", "conc."),
    ("requests", "requests"),
    ("errors", "errors"),
    ("requests_per_s", "req/s"),
    ("p50_ms", "p50 ms"),
    ("p90_ms", "p90 ms"),
    ("p95_ms", "p95 ms"),
    ("p99_ms", "p99 ms"),
    ("mean_batch_size", "batch"),
    ("decode_share", "decode share"),
)


def _cell(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key in ("peak_fraction", "decode_share"):
        return f"{100 * value:.1f} %"
    if key == "speedup_vs_eager":
        return f"{value:.2f}x"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _table(title: str, columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for key, label in columns:
        table.add_column(label, justify="left" if key in ("backend", "scope", "precision", "server") else "right")
    for row in rows:
        table.add_row(*(_cell(key, row.get(key)) for key, _ in columns))
    return table


def model_table(rows: Sequence[BenchRow], title: str) -> Any:
    return _table(title, MODEL_COLUMNS, [r.to_dict() for r in rows])


def http_table(levels: Sequence[LevelResult], title: str) -> Any:
    return _table(title, HTTP_COLUMNS, [lv.to_dict() for lv in levels])


def markdown_table(columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(label for _, label in columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(key, row.get(key)) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def plot_model_rows(rows: Sequence[BenchRow], path: Path, title: str) -> None:
    """Median latency (bars: p90..p99 whisker from p50) and throughput against batch size, per backend and scope."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    scopes = list(dict.fromkeys(r.scope for r in rows))
    fig, axes = plt.subplots(2, len(scopes), figsize=(6 * len(scopes), 8), squeeze=False)
    for col, scope in enumerate(scopes):
        lines = list(dict.fromkeys((r.backend, r.precision) for r in rows if r.scope == scope))
        for backend, precision in lines:
            mine = sorted(
                (r for r in rows if (r.scope, r.backend, r.precision) == (scope, backend, precision)),
                key=lambda r: r.batch_size,
            )
            label = backend if precision == "fp32" else f"{backend} {precision}"
            if scope == "end-to-end" and mine[0].front_end:
                label += f" ({mine[0].front_end} front end)"
            sizes = [r.batch_size for r in mine]
            p50 = [r.p50_ms for r in mine]
            upper = [max(r.p99_ms - r.p50_ms, 0.0) for r in mine]
            axes[0][col].errorbar(sizes, p50, yerr=[[0.0] * len(mine), upper], marker="o", capsize=3, label=label)
            axes[1][col].plot(sizes, [r.samples_per_s for r in mine], marker="o", label=label)
        axes[0][col].set_title(f"{scope}: latency (p50, whisker to p99)")
        axes[0][col].set_ylabel("ms per batch")
        axes[1][col].set_title(f"{scope}: throughput")
        axes[1][col].set_ylabel("samples/s")
        for row in (0, 1):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted({r.batch_size for r in rows}))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.set_xlabel("batch size")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        axes[0][col].set_yscale("log")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_http(levels: Sequence[LevelResult], path: Path, title: str) -> None:
    """Requests/s and p50/p99 latency against concurrency, per server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for server in dict.fromkeys(lv.server for lv in levels):
        mine = sorted((lv for lv in levels if lv.server == server), key=lambda lv: lv.concurrency)
        conc = [lv.concurrency for lv in mine]
        left.plot(conc, [lv.requests_per_s for lv in mine], marker="o", label=server)
        right.plot(conc, [lv.p50_ms for lv in mine], marker="o", label=f"{server} p50")
        right.plot(conc, [lv.p99_ms for lv in mine], marker="x", linestyle="--", label=f"{server} p99")
    left.set_title("throughput")
    left.set_ylabel("requests/s")
    right.set_title("client latency")
    right.set_ylabel("ms")
    right.set_yscale("log")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({lv.concurrency for lv in levels}))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_xlabel("concurrent clients")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
