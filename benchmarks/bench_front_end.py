"""The log-mel front end on one 2 s clip: each formulation in eager PyTorch, and the two exported ones (the
factored DFT of current bundles, the Conv1d DFT of earlier ones) alone in ONNX Runtime."""

import numpy as np
import pytest
import torch

from zoo.audio import CLIP_SAMPLES, LogMelFrontEnd


def _waveform() -> torch.Tensor:
    return 0.1 * torch.randn(1, CLIP_SAMPLES, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("stft", ["fft", "factored", "conv"])
def test_front_end_eager_batch1(benchmark, stft):
    front_end = LogMelFrontEnd(stft=stft)
    waveform = _waveform()

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return front_end(waveform)

    mel = benchmark(run)
    assert mel.shape == (1, 1, 128, 173)


@pytest.fixture(scope="module")
def front_end_graphs(tmp_path_factory):
    """The front end alone exported to ONNX in each formulation an exported graph may hold."""
    from training.export import export_onnx

    folder = tmp_path_factory.mktemp("front-ends")
    example = (_waveform().repeat(2, 1),)
    return {
        stft: export_onnx(LogMelFrontEnd(stft=stft), example, folder / f"{stft}.onnx", ["waveform"], ["mel"])
        for stft in ("factored", "conv")
    }


@pytest.mark.parametrize("stft", ["factored", "conv"])
def test_front_end_onnxruntime_batch1(benchmark, front_end_graphs, stft):
    import onnxruntime as ort

    from serving.backends import ORT_SPINNING_KEY

    options = ort.SessionOptions()
    options.add_session_config_entry(ORT_SPINNING_KEY, "0")  # as serving.backends runs it on the CPU
    session = ort.InferenceSession(str(front_end_graphs[stft]), options, providers=["CPUExecutionProvider"])
    waveform = _waveform().numpy()
    (mel,) = benchmark(session.run, None, {"waveform": waveform})
    with torch.no_grad():
        reference = LogMelFrontEnd(stft="fft")(torch.from_numpy(waveform)).numpy()
    np.testing.assert_allclose(mel, reference, atol=1e-3, rtol=1e-4)
