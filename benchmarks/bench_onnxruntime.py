"""ONNX Runtime at batch 1 on the CPU, the way ``zoo serve`` calls it: waveform in, the card's outputs out."""

import numpy as np

from serving.backends import OnnxRuntimeBackend


def test_onnxruntime_end_to_end_batch1(benchmark, bench_artifact):
    backend = OnnxRuntimeBackend(bench_artifact, "cpu")
    waveform = (0.1 * np.random.default_rng(0).standard_normal((1, bench_artifact.n_samples))).astype(np.float32)
    backend.run(waveform)  # first run: allocations
    outputs = benchmark(backend.run, waveform)
    assert len(outputs) == len(bench_artifact.output_names)
    assert outputs[-1].shape == (1, 1, 128, 173)  # the mel the graph computed
