"""The log-mel front end on one 2 s clip, in each formulation (eager PyTorch)."""

import pytest
import torch

from zoo.audio import CLIP_SAMPLES, LogMelFrontEnd


@pytest.mark.parametrize("stft", ["fft", "conv"])
def test_front_end_batch1(benchmark, stft):
    front_end = LogMelFrontEnd(stft=stft)
    waveform = 0.1 * torch.randn(1, CLIP_SAMPLES, generator=torch.Generator().manual_seed(0))

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return front_end(waveform)

    mel = benchmark(run)
    assert mel.shape == (1, 1, 128, 173)
