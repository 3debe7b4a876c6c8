"""The neighbour index (artifact bundles' starting points of the search) and `zoo evaluate --search-seconds`."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from zoo.errors import ArtifactError
from zoo.matching import NeighbourIndex
from zoo.vital import tier1_spec

SPEC = tier1_spec()


def test_index_from_a_dataset_finds_the_preset_that_made_a_clip(tiny_vital_h5, tmp_path):
    from training.data import schema
    from training.neighbours import build_neighbour_index

    index = build_neighbour_index(tiny_vital_h5, {"val_fraction": 0.0}, SPEC)
    with schema.open_file(tiny_vital_h5) as f:
        n = f[schema.CONTINUOUS].shape[0]
        clip, continuous = f[schema.AUDIO][3], f[schema.CONTINUOUS][3]
    assert len(index) == n and index.features.dtype == np.float16
    (found, second) = index.nearest(clip, k=2)
    np.testing.assert_allclose(found.continuous, continuous, atol=1e-6)
    assert found.label.startswith("neighbour 1") and second.label.startswith("neighbour 2")
    assert not np.array_equal(found.continuous, second.continuous)  # one preset at two notes is proposed once

    path = index.save(tmp_path / "neighbours.npz")
    again = NeighbourIndex.load(path)
    np.testing.assert_array_equal(again.features, index.features)
    assert again.spec_version == SPEC.version


def test_export_adds_the_index_to_the_bundle_and_its_card(untrained_artifact, tiny_vital_h5, tmp_path):
    from training.neighbours import add_neighbour_index
    from zoo.artifact import load_artifact

    bundle = tmp_path / "bundle"
    shutil.copytree(untrained_artifact.path, bundle)
    path = add_neighbour_index(bundle, tiny_vital_h5, untrained_artifact.checkpoint)
    artifact = load_artifact(bundle, verify=True)  # the checksum in card.json matches
    assert artifact.card.file_of_format("neighbours").path == path.name
    index = NeighbourIndex.from_artifact(artifact, SPEC)
    assert index is not None and len(index) > 0
    assert NeighbourIndex.from_artifact(load_artifact(untrained_artifact.path), SPEC) is None  # none: None


def test_a_bad_index_file_is_refused(tmp_path):
    bad = tmp_path / "neighbours.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(ArtifactError, match="not a readable neighbour index"):
        NeighbourIndex.load(bad)
    np.savez(bad, format=np.array("zoo-neighbours/1"), features=np.zeros((2, 4)))
    with pytest.raises(ArtifactError):
        NeighbourIndex.load(bad)
    index = NeighbourIndex(np.zeros((2, 4), np.float16), np.zeros((2, 3)), np.zeros((2, 2), int), np.zeros(2), "x")
    with pytest.raises(ArtifactError, match="another|built for"):
        index.check_spec(SPEC)


def test_evaluate_reports_both_search_rows(untrained_artifact, tiny_vital_h5, tmp_path):
    from zoo.cli import app

    args = ["evaluate", str(untrained_artifact.checkpoint), "--data", str(tiny_vital_h5), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--n-audio", "1", "--search-seconds", "0.5"])
    assert result.exit_code == 0, result.output
    audio = json.loads((tmp_path / "report.json").read_text())["audio"]
    for method in ("model+search", "init+search"):
        assert method in result.output and audio[method]["silent_renders"] == 0  # a search never ends silent
    bad = CliRunner().invoke(app, [*args, "--search-seconds", "-1"])
    assert bad.exit_code == 1 and "--search-seconds" in bad.output
