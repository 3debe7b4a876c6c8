"""Training throughput of vital-resnet18 on the CPU: samples/s and the share of step time spent waiting
for data (target: at most 10 %), for DataLoader worker counts 0 and 2, measured in one run.

    python -m benchmarks.training_throughput --data data/vital.h5 --steps 30
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
from pathlib import Path

import torch


def measure(data: Path, steps: int, batch_size: int, num_workers: int) -> dict:
    from training.config import TrainConfig
    from training.run_logging import read_metrics
    from training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            model="vital-resnet18",
            data=data,
            epochs=1,
            max_steps=steps,
            batch_size=batch_size,
            warmup_epochs=0,
            device="cpu",
            out=Path(tmp),
            run_name="bench",
            num_workers=num_workers,
        )
        summary = Trainer(cfg).fit()
        epoch = [r for r in read_metrics(Path(summary["run_dir"]) / "metrics.jsonl") if r["kind"] == "epoch"][-1]
    return {
        "num_workers": num_workers,
        "batch_size": batch_size,
        "steps": steps,
        "samples_per_s": epoch["samples_per_s"],
        "data_wait_fraction": epoch["data_wait_fraction"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", default="0,2")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/training_throughput"))
    args = parser.parse_args(argv)
    rows = [measure(args.data, args.steps, args.batch_size, int(w)) for w in args.workers.split(",")]
    result = {
        "command": "python -m benchmarks.training_throughput "
        + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Training throughput: vital-resnet18 on CPU",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {result['machine']}",
        "",
        "| DataLoader workers | batch | samples/s | data wait share |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['num_workers']} | {r['batch_size']} | {r['samples_per_s']:.1f} | {r['data_wait_fraction']:.1%} |"
        for r in rows
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
