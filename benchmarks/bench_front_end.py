"""The log-mel front end on one 2 s clip: each formulation in eager PyTorch, and the exported one (the factored
DFT of the bundles' graphs) alone in ONNX Runtime, with the session set-up of ``zoo serve``."""

import numpy as np
import pytest
import torch

from zoo.audio import CLIP_SAMPLES, STFT_FORMULATIONS, LogMelFrontEnd


def _waveform() -> torch.Tensor:
    return 0.1 * torch.randn(1, CLIP_SAMPLES, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("stft", STFT_FORMULATIONS)
def test_front_end_eager_batch1(benchmark, stft):
    front_end = LogMelFrontEnd(stft=stft)
    waveform = _waveform()

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return front_end(waveform)

    mel = benchmark(run)
    assert mel.shape == (1, 1, 128, 173)


def test_front_end_onnxruntime_batch1(benchmark, tmp_path):
    from training.export import export_onnx
    from zoo.runtime import onnx_session

    example = (_waveform().repeat(2, 1),)
    path = export_onnx(LogMelFrontEnd(stft="factored"), example, tmp_path / "factored.onnx", ["waveform"], ["mel"])
    session = onnx_session(path)  # as serving.backends runs it on the CPU
    waveform = _waveform().numpy()
    (mel,) = benchmark(session.run, None, {"waveform": waveform})
    with torch.no_grad():
        reference = LogMelFrontEnd(stft="fft")(torch.from_numpy(waveform)).numpy()
    np.testing.assert_allclose(mel, reference, atol=1e-3, rtol=1e-4)
