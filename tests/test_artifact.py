"""The artifact card: one dataclass, validated once on load; bundles that are not safe or not whole are refused
in one line (by `load_artifact` and by `zoo serve` before any worker starts)."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from zoo.artifact import ARTIFACT_FORMAT, CARD_FILE, ArtifactCard, load_artifact, sha256_file
from zoo.errors import ArtifactError


@pytest.fixture
def bundle(untrained_artifact, tmp_path):
    """A private copy of the exported bundle (tests change it), inside ``tmp_path/bundles/b``."""
    copy = tmp_path / "bundles" / "b"
    shutil.copytree(untrained_artifact.path, copy)
    return copy


def _edit_card(folder, change) -> None:
    card = json.loads((folder / CARD_FILE).read_text())
    change(card)
    (folder / CARD_FILE).write_text(json.dumps(card))


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_the_card_on_disk_is_the_card_runtimes_read(untrained_artifact):
    """Export writes the dataclass; loading it back gives the same document, read through attributes."""
    artifact = load_artifact(untrained_artifact.path)
    card = artifact.card
    assert card.to_dict() == untrained_artifact.card
    assert card.format == ARTIFACT_FORMAT and card.model.name == "vital-resnet18"
    assert card.input.takes_waveform and card.input.stft == "factored" and card.input.n_samples == 88200
    assert card.input.front_end.n_mels == 128 and card.output_names[0] == "continuous"
    assert {f.format for f in card.files} == {"onnx", "torchscript"}
    assert card.checkpoint.epoch == 0 and card.checkpoint.model_config["n_continuous"] > 0
    assert ArtifactCard.from_dict(card.to_dict()) == card


@pytest.mark.parametrize("outside", ["../../outside/model.onnx", "ABSOLUTE"])
def test_card_paths_outside_the_bundle_are_refused(bundle, tmp_path, outside):
    """A card naming a file outside its folder is refused even when the file is there and its checksum matches."""
    target = tmp_path / "outside" / "model.onnx"
    target.parent.mkdir()
    shutil.copy(bundle / "model.onnx", target)
    name = str(target) if outside == "ABSOLUTE" else outside
    assert (bundle / name).resolve() == target.resolve()

    def point_outside(card):
        card["files"] = {name: {**card["files"]["model.onnx"], "sha256": sha256_file(target)}}

    _edit_card(bundle, point_outside)
    with pytest.raises(ArtifactError, match="not inside the bundle folder") as refused:
        load_artifact(bundle)
    assert name in _one_line(refused)


def test_a_symlink_out_of_the_bundle_is_refused(bundle, tmp_path):
    target = tmp_path / "elsewhere.onnx"
    shutil.move(bundle / "model.onnx", target)
    (bundle / "model.onnx").symlink_to(target)
    with pytest.raises(ArtifactError, match="leads outside the bundle folder") as refused:
        load_artifact(bundle, verify=False)
    _one_line(refused)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda card: card.pop("files"), "is missing `files`; re-export"),
        (lambda card: card.pop("input"), "is missing `input`; re-export"),
        (lambda card: card["input"].pop("front_end"), "is missing `input.front_end`"),
        (lambda card: card["model"].update(name=7), "`model.name` must be str, got int"),
        (lambda card: card.update(files={}), "lists no model file"),
        (lambda card: card["files"]["model.onnx"].update(sha256="abc"), "not 64 lowercase hex digits"),
        (lambda card: card.update(outputs=[]), "`outputs` is empty"),
        (lambda card: card["input"].update(stft="conv"), "not supported any more; re-export"),
    ],
)
def test_incomplete_cards_are_refused_in_one_line(bundle, change, message):
    _edit_card(bundle, change)
    with pytest.raises(ArtifactError, match=message.replace("(", r"\(").replace(")", r"\)")) as refused:
        load_artifact(bundle)
    _one_line(refused)


def test_a_bundle_of_the_previous_format_asks_for_a_re_export(bundle):
    _edit_card(bundle, lambda card: card.update(format="zoo-artifact/1"))
    with pytest.raises(ArtifactError, match=r"earlier version .* re-export it with `zoo export CHECKPOINT`"):
        load_artifact(bundle)


def test_serve_refuses_a_model_file_that_is_not_onnx_before_starting(bundle, tmp_path, monkeypatch):
    """A card whose checksum matches a model.onnx that is not ONNX: `zoo serve` says so in one line and exits 1,
    without starting a worker."""
    from zoo.cli import app

    (bundle / "model.onnx").write_bytes(b"this is not an ONNX model" * 100)
    _edit_card(bundle, lambda card: card["files"]["model.onnx"].update(sha256=sha256_file(bundle / "model.onnx")))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["serve", str(bundle), "--port", "8765"])
    assert result.exit_code == 1, result.output
    assert "ONNX Runtime cannot load" in result.output and "model.onnx" in result.output
    assert "Traceback" not in result.output and "workers failed" not in result.output
    assert len(result.output.strip().splitlines()) <= 3  # one message, wrapped by the terminal at most twice
    _edit_card(bundle, lambda card: card.pop("input"))
    result = CliRunner().invoke(app, ["serve", str(bundle), "--port", "8765"])
    assert result.exit_code == 1 and "is missing `input`" in result.output and "Traceback" not in result.output
