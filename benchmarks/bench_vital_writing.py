"""Writing the answer: model outputs -> parameters and the complete ``.vital`` document, serialised as JSON."""

import json

import numpy as np

from serving.presets import PresetDecoder


def _outputs(decoder: PresetDecoder, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    outputs = [rng.random(len(decoder.spec.continuous)).astype(np.float32)]
    outputs += [rng.standard_normal(n).astype(np.float32) for n in decoder.spec.categorical_n_options]
    return outputs


def test_vital_document_from_outputs(benchmark, bench_artifact):
    decoder = PresetDecoder(bench_artifact.card)
    outputs = _outputs(decoder)
    assert decoder.continuous_index == 0 and decoder.categorical_index == list(range(1, len(outputs)))

    def write() -> bytes:
        return json.dumps(decoder.decode(outputs, name="bench").document).encode()

    text = benchmark(write)
    assert json.loads(text)["preset_name"] == "bench"
