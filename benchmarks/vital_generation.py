"""Dataset generation throughput against raw ``vita.render`` speed, measured in one run.

    python -m benchmarks.vital_generation --n-presets 40 --repeats 2 --out benchmarks/results

For 1 and 2 workers it runs ``generate_dataset`` (sampling, rendering, checks, loudness normalization,
compression, HDF5 writes, worker start-up included) and a raw loop over the same presets that only calls
``vita.Synth.render`` (controls set beforehand, untimed) in as many processes. Figures:

- overhead per worker = 1 - generation renders/s / raw renders/s, at the same process count;
- scaling = generation renders/s with 2 workers / with 1 worker (and the same for the raw loop, which
  shows what the machine itself allows).

Each configuration runs ``--repeats`` times, alternating, and the best run counts (the least disturbed by
other work on the machine). The load average before and after is recorded: on a shared machine, read the
scaling figures with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def _raw_worker(args: tuple[list[tuple[np.ndarray, np.ndarray]], tuple[int, ...]]) -> tuple[int, float]:
    """Render each vector at each note with nothing but ``synth.render`` timed -> (renders, seconds)."""
    import torch

    from zoo.vital.render import DEFAULT_VELOCITY, NOTE_SECONDS, RENDER_SECONDS, VitalRenderer

    torch.set_num_threads(1)
    vectors, notes = args
    renderer = VitalRenderer()
    n, seconds = 0, 0.0
    for cont, cat in vectors:
        renderer.set_vector(cont, cat)
        for note in notes:
            t0 = time.perf_counter()
            renderer.synth.render(note, DEFAULT_VELOCITY, NOTE_SECONDS, RENDER_SECONDS)
            seconds += time.perf_counter() - t0
            n += 1
    return n, seconds


def raw_render_rate(vectors: list[tuple[np.ndarray, np.ndarray]], notes: tuple[int, ...], processes: int) -> dict:
    """Renders/s of the raw loop over ``vectors`` split across ``processes`` running at once: the sum of each
    process's renders / its time inside ``render``."""
    parts = [(vectors[i::processes], notes) for i in range(processes)]
    if processes == 1:
        n, seconds = _raw_worker(parts[0])
        return {"renders": n, "seconds": seconds, "renders_per_second": n / seconds}
    from zoo.workers import process_pool

    with process_pool(processes) as pool:
        results = pool.map(_raw_worker, parts, chunksize=1)
    n = sum(r[0] for r in results)
    return {
        "renders": n,
        "seconds": max(r[1] for r in results),
        "renders_per_second": sum(r[0] / r[1] for r in results),
    }


def generation_rate(n_presets: int, notes: tuple[int, ...], workers: int, seed: int, folder: Path) -> dict:
    from training.data.generate import generate_dataset

    out = folder / f"bench_w{workers}_{time.perf_counter_ns()}.h5"
    report = generate_dataset(out, n_presets, workers=workers, seed=seed, notes=notes, progress=False)
    out.unlink()
    return {
        "renders": report.renders_this_run,
        "seconds": report.seconds,
        "renders_per_second": report.renders_per_second,
        "rejection_rate": report.rejection_rate,
        "seconds_inside_render": report.render_seconds,
    }


def accepted_vectors(n_presets: int, seed: int, notes: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The presets a generation run keeps (same draws, same rejections), read back from a small run."""
    import h5py

    from training.data import schema
    from training.data.generate import generate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vectors.h5"
        generate_dataset(out, n_presets, workers=1, seed=seed, notes=notes[:1], progress=False)
        with h5py.File(out, "r") as f:
            cont, cat = f[schema.CONTINUOUS][:], f[schema.CATEGORICAL][:]
    return list(zip(cont, cat, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-presets", type=int, default=40)
    parser.add_argument("--notes", default="48,60,72")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    notes = tuple(int(n) for n in args.notes.split(","))
    import torch

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    vectors = accepted_vectors(args.n_presets, args.seed, notes)
    runs: dict[str, list[dict]] = {"raw_1": [], "generate_1": [], "raw_2": [], "generate_2": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for workers in (1, 2):
                gen = generation_rate(args.n_presets, notes, workers, args.seed, Path(tmp))
                runs[f"generate_{workers}"].append(gen)
                runs[f"raw_{workers}"].append(raw_render_rate(vectors, notes, workers))
    best = {k: max(v, key=lambda r: r["renders_per_second"]) for k, v in runs.items()}
    rate = {k: v["renders_per_second"] for k, v in best.items()}
    figures = {
        "overhead_1_worker": 1 - rate["generate_1"] / rate["raw_1"],
        "overhead_2_workers": 1 - rate["generate_2"] / rate["raw_2"],
        "scaling_generate_2_over_1": rate["generate_2"] / rate["generate_1"],
        "scaling_raw_2_over_1": rate["raw_2"] / rate["raw_1"],
        "rejection_rate": best["generate_1"]["rejection_rate"],
    }
    result = {
        "benchmark": "vital_generation",
        "command": f"python -m benchmarks.vital_generation --n-presets {args.n_presets} --notes {args.notes} "
        f"--seed {args.seed} --repeats {args.repeats} --out {args.out}",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "n_presets": args.n_presets,
        "notes": list(notes),
        "renders_per_second_best": rate,
        "figures": figures,
        "targets": {"overhead_per_worker_max": 0.10, "scaling_2_workers_min": 1.8},
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vital_generation.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"renders_per_second_best": rate, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
