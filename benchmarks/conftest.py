"""Fixtures of the pytest-benchmark suite (``pytest benchmarks/ --benchmark-only``).

The suite times the hot paths of a request one by one. ``ZOO_BENCH_ARTIFACT=artifacts/<model>/<run>`` times a
real bundle; without it an untrained vital-resnet18 with the Tier-1 heads is exported once per session (ONNX
only; latency does not depend on the weights)."""

import os
from pathlib import Path

import pytest

ARTIFACT_ENV = "ZOO_BENCH_ARTIFACT"


@pytest.fixture(scope="session")
def bench_artifact(tmp_path_factory):
    """A loaded artifact bundle (``zoo.artifact.Artifact``)."""
    from zoo.artifact import load_artifact

    given = os.environ.get(ARTIFACT_ENV)
    if given:
        return load_artifact(Path(given), verify=True)
    import torch

    from training.export import export_model
    from zoo.artifact import CheckpointInfo
    from zoo.registry import create_model
    from zoo.vital import tier1_spec

    spec = tier1_spec()
    config = {"n_continuous": len(spec.continuous), "categorical_options": list(spec.categorical_n_options)}
    torch.manual_seed(0)
    model = create_model("vital-resnet18", **config)
    out = tmp_path_factory.mktemp("bench-artifact") / "vital-resnet18"
    export_model(
        model,
        "vital-resnet18",
        out,
        formats=("onnx",),
        spec=spec.to_dict(),
        checkpoint=CheckpointInfo(model_config=config),
    )
    return load_artifact(out, verify=False)


@pytest.fixture(scope="session")
def recording():
    """The default request body of ``zoo bench --http``: a Vital note, 48 kHz stereo 16-bit WAV."""
    from benchmarks.recording import synth_recording

    return synth_recording()
