"""The artifact bundle written by ``zoo export`` and read by every runtime: its card, files and checksums.

A bundle is a folder: the model files (``model.onnx``, ``model.ts``) and ``card.json``, which says everything a
runtime needs without Python training code. :class:`ArtifactCard` is that card: ``zoo export`` builds it, writes
it with :meth:`ArtifactCard.to_dict`, and :func:`load_artifact` reads it back through
:meth:`ArtifactCard.from_dict`, which validates it once (required fields present and typed, file paths inside
the bundle); everything else reads attributes. A bundle folder is untrusted input.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from zoo.audio import STFT_FORMULATIONS, FrontEndConfig
from zoo.errors import ArtifactError

CARD_FILE = "card.json"
# 2: the Conv1d front end is gone (graphs hold the factored DFT) and the card is validated on load.
ARTIFACT_FORMAT = "zoo-artifact/2"
BACKEND_FORMATS = {"onnx": "onnx", "torchscript": "torchscript"}
DATA_FORMATS = ("neighbours",)  # files a bundle may hold beside its model: zoo.matching.neighbours' index
DEFAULT_ROOT = Path("artifacts")
REEXPORT = "re-export it with `zoo export CHECKPOINT`"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _stays_inside(name: str) -> bool:
    """Whether a card's file name is a plain relative path: not empty, not absolute (POSIX or Windows), no ``..``."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return (
        bool(name)
        and not PureWindowsPath(name).is_absolute()
        and not name.startswith(("/", "\\"))
        and (".." not in parts)
    )


class _Fields:
    """Typed access to one JSON object of a card; every refusal names the card and the field."""

    def __init__(self, data: Any, source: str, prefix: str = "") -> None:
        if not isinstance(data, dict):
            raise ArtifactError(f"{source}: `{prefix.rstrip('.') or 'the card'}` must be an object; {REEXPORT}")
        self.data, self.source, self.prefix = data, source, prefix

    def get(self, key: str, kind: type | tuple[type, ...], required: bool = True, default: Any = None) -> Any:
        value = self.data.get(key)
        if value is None:
            if required:
                raise ArtifactError(f"{self.source} is missing `{self.prefix}{key}`; {REEXPORT}")
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ArtifactError(f"{self.source}: `{self.prefix}{key}` must be {names}, got {type(value).__name__}")
        return value

    def object(self, key: str, required: bool = True) -> _Fields | None:
        value = self.get(key, dict, required)
        return None if value is None else _Fields(value, self.source, f"{self.prefix}{key}.")

    def objects(self, key: str) -> list[_Fields]:
        values = self.get(key, list)
        if not values:
            raise ArtifactError(f"{self.source}: `{self.prefix}{key}` is empty; {REEXPORT}")
        return [_Fields(v, self.source, f"{self.prefix}{key}[{i}].") for i, v in enumerate(values)]


@dataclass(frozen=True)
class ModelInfo:
    """Which model a bundle holds."""

    name: str
    version: str
    family: str | None = None
    task: str | None = None
    n_params: int | None = None

    @classmethod
    def read(cls, f: _Fields) -> ModelInfo:
        return cls(
            f.get("name", str),
            f.get("version", str),
            f.get("family", str, False),
            f.get("task", str, False),
            f.get("n_params", int, False),
        )


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: name, shape (``"batch"`` for the dynamic axis), dtype, and what it means."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"
    role: str | None = None

    @classmethod
    def read(cls, f: _Fields) -> TensorInfo:
        shape = f.get("shape", list)
        if not shape or not all(isinstance(d, (int, str)) and not isinstance(d, bool) for d in shape):
            raise ArtifactError(f"{f.source}: `{f.prefix}shape` must list sizes and axis names; {REEXPORT}")
        return cls(f.get("name", str), tuple(shape), f.get("dtype", str, False, "float32"), f.get("role", str, False))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        return out | ({"role": self.role} if self.role is not None else {})


@dataclass(frozen=True)
class InputInfo:
    """The graph's input. ``kind`` ``waveform``: one (batch, n_samples) float32 mono clip at the front end's
    rate, with loudness normalisation and the log-mel front end (``stft`` formulation) inside the graph;
    ``tensor``: the model's own inputs, ``tensors``."""

    kind: str
    tensors: tuple[TensorInfo, ...]
    front_end: FrontEndConfig | None = None
    stft: str | None = None
    loudness: dict[str, float] | None = None  # target_rms_db, peak
    preprocessing: str | None = None

    @property
    def takes_waveform(self) -> bool:
        return self.kind == "waveform"

    @property
    def n_samples(self) -> int:
        """Samples per clip of a waveform input (the last axis of the first input)."""
        return int(self.tensors[0].shape[-1])

    @classmethod
    def read(cls, f: _Fields) -> InputInfo:
        kind = f.get("kind", str)
        if kind == "tensor":
            return cls(kind, tuple(TensorInfo.read(t) for t in f.objects("inputs")))
        if kind != "waveform":
            raise ArtifactError(f"{f.source}: `input.kind` must be waveform or tensor, got {kind!r}; {REEXPORT}")
        fe = f.object("front_end")
        try:
            front_end = FrontEndConfig(**fe.data)
        except TypeError as e:
            raise ArtifactError(f"{f.source}: `input.front_end` is not a front-end configuration ({e})") from None
        for name, default in FrontEndConfig().to_dict().items():  # each field typed like its default
            numeric = default is None or isinstance(default, float)  # f_max: a frequency or None (Nyquist)
            fe.get(name, (int, float) if numeric else type(default), default is not None)
        stft = f.get("stft", str)
        if stft not in STFT_FORMULATIONS:
            raise ArtifactError(f"{f.source}: the graph's front end `{stft}` is not supported any more; {REEXPORT}")
        tensor = TensorInfo.read(f)
        if tensor.shape[-1] != front_end.n_samples:
            raise ArtifactError(f"{f.source}: `input.shape` disagrees with `input.front_end.n_samples`")
        loudness = f.get("loudness", dict, False)
        return cls(kind, (tensor,), front_end, stft, loudness, f.get("preprocessing", str, False))

    def to_dict(self) -> dict[str, Any]:
        if not self.takes_waveform:
            names = [t.name for t in self.tensors]
            return {
                "name": names[0] if len(names) == 1 else names,
                "inputs": [t.to_dict() for t in self.tensors],
                "kind": "tensor",
            }
        fe = self.front_end or FrontEndConfig()
        return {
            **self.tensors[0].to_dict(),
            "kind": "waveform",
            "sample_rate": fe.sample_rate,
            "seconds": fe.n_samples / fe.sample_rate,
            "channels": 1,
            "preprocessing": self.preprocessing,
            "loudness": self.loudness,
            "front_end": fe.to_dict(),
            "stft": self.stft,
        }


@dataclass(frozen=True)
class ModelFile:
    """A file of the bundle (a model, or data such as a neighbour index): its path relative to the bundle folder,
    format, checksum and size."""

    path: str
    format: str  # a value of BACKEND_FORMATS or DATA_FORMATS
    sha256: str
    bytes: int

    @classmethod
    def of(cls, folder: Path, name: str, fmt: str) -> ModelFile:
        """Describe the file ``folder / name`` as it is now."""
        file = folder / name
        return cls(name, fmt, sha256_file(file), file.stat().st_size)

    @classmethod
    def read(cls, name: str, f: _Fields) -> ModelFile:
        if not _stays_inside(name):
            raise ArtifactError(f"{f.source} names {name!r}, which is not inside the bundle folder; {REEXPORT}")
        fmt = f.get("format", str)
        if fmt not in (*BACKEND_FORMATS.values(), *DATA_FORMATS):
            known = ", ".join((*BACKEND_FORMATS.values(), *DATA_FORMATS))
            raise ArtifactError(f"{f.source}: {name} has format {fmt!r}; this version reads {known}")
        sha = f.get("sha256", str)
        if not _SHA256.fullmatch(sha):
            raise ArtifactError(f"{f.source}: the sha256 of {name} is not 64 lowercase hex digits")
        return cls(name, fmt, sha, f.get("bytes", int))


@dataclass(frozen=True)
class Parity:
    """Largest absolute differences between eager PyTorch and each exported runtime, measured at export."""

    reference: str
    inputs: str
    batch_size: int
    tolerance: float
    max_abs_error: dict[str, float]  # by runtime: the worst output
    max_abs_error_by_output: dict[str, dict[str, float]]  # by runtime, then output name

    @classmethod
    def read(cls, f: _Fields) -> Parity:
        return cls(
            f.get("reference", str),
            f.get("inputs", str),
            f.get("batch_size", int),
            float(f.get("tolerance", (int, float))),
            f.get("max_abs_error", dict),
            f.get("max_abs_error_by_output", dict, False, {}),
        )


@dataclass(frozen=True)
class CheckpointInfo:
    """The checkpoint a bundle was exported from (``model_config`` rebuilds the eager architecture)."""

    file: str | None = None
    sha256: str | None = None
    epoch: int | None = None
    metrics: dict[str, Any] | None = None
    model_config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, f: _Fields) -> CheckpointInfo:
        return cls(
            f.get("file", str, False),
            f.get("sha256", str, False),
            f.get("epoch", int, False),
            f.get("metrics", dict, False),
            f.get("model_config", dict, False, {}),
        )


@dataclass(frozen=True)
class ArtifactCard:
    """``card.json``: everything a runtime needs to run the bundle's model and read its outputs."""

    model: ModelInfo
    input: InputInfo
    outputs: tuple[TensorInfo, ...]
    files: tuple[ModelFile, ...]
    parity: Parity | None = None
    spec: dict[str, Any] | None = None  # the parameter spec (zoo.vital.spec.VitalParamSpec.to_dict()), if any
    onnx_opset: int | None = None
    max_batch: int | None = None  # the largest batch the ONNX graph's dynamic axis allows
    checkpoint: CheckpointInfo | None = None
    exported_at: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    format: str = ARTIFACT_FORMAT
    # A shipped bundle (``zoo export --ship``): how its weights are stored (and their parity with float32), how it
    # was made (commands, training configuration, data), and its scores on the human-made presets.
    weights: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def file_of_format(self, fmt: str) -> ModelFile | None:
        """The bundle's file of format ``fmt`` (e.g. ``neighbours``), or None when it has none."""
        return next((file for file in self.files if file.format == fmt), None)

    def file_for(self, backend: str) -> ModelFile:
        """The model file of a backend (``onnx`` or ``torchscript``); raises when the bundle lacks it."""
        for file in self.files:
            if file.format == BACKEND_FORMATS.get(backend):
                return file
        have = ", ".join(f.format for f in self.files if f.format in BACKEND_FORMATS.values())
        raise ArtifactError(f"the bundle has no {backend} file (it has: {have}); re-export with `--format {backend}`")

    @classmethod
    def from_dict(cls, data: Any, source: str = CARD_FILE) -> ArtifactCard:
        """Validate a parsed ``card.json``: the format, the required fields and their types, file paths that stay
        inside the bundle and well-formed checksums. Raises :class:`ArtifactError` in one line."""
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        if found == "zoo-artifact/1":
            raise ArtifactError(f"{source} is from an earlier version of the zoo (format zoo-artifact/1); {REEXPORT}")
        if found != ARTIFACT_FORMAT:
            raise ArtifactError(f"{source} has format {found!r}; this version reads {ARTIFACT_FORMAT!r}")
        f = _Fields(data, source)
        files = f.object("files")
        if not files.data:
            raise ArtifactError(f"{source}: `files` lists no model file; {REEXPORT}")
        onnx = f.object("onnx", required=False)
        batch = onnx.get("dynamic_axes", dict, False, {}).get("batch") if onnx else None
        checkpoint = f.object("checkpoint", required=False)
        parity = f.object("parity", required=False)
        return cls(
            model=ModelInfo.read(f.object("model")),
            input=InputInfo.read(f.object("input")),
            outputs=tuple(TensorInfo.read(o) for o in f.objects("outputs")),
            files=tuple(ModelFile.read(name, files.object(name)) for name in files.data),
            parity=Parity.read(parity) if parity else None,
            spec=f.get("spec", dict, False),
            onnx_opset=onnx.get("opset", int, False) if onnx else None,
            max_batch=int(batch[1]) if isinstance(batch, list) and len(batch) == 2 else None,
            checkpoint=CheckpointInfo.read(checkpoint) if checkpoint else None,
            exported_at=f.get("exported_at", str, False),
            versions=f.get("versions", dict, False, {}),
            format=found,
            weights=f.get("weights", dict, False),
            provenance=f.get("provenance", dict, False),
            evaluation=f.get("evaluation", dict, False),
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``card.json`` document."""
        out: dict[str, Any] = {
            "format": self.format,
            "model": asdict(self.model),
            "input": self.input.to_dict(),
            "outputs": [o.to_dict() for o in self.outputs],
            "spec": self.spec,
            "files": {f.path: {"format": f.format, "sha256": f.sha256, "bytes": f.bytes} for f in self.files},
            "onnx": {"opset": self.onnx_opset, "dynamic_axes": {"batch": [1, self.max_batch]}}
            if self.onnx_opset is not None
            else None,
            "parity": asdict(self.parity) if self.parity else None,
            "exported_at": self.exported_at,
            "versions": self.versions,
        }
        if self.checkpoint is not None:
            out["checkpoint"] = asdict(self.checkpoint)
        for key in ("weights", "provenance", "evaluation"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def write(self, folder: str | Path) -> Path:
        """Write ``folder/card.json``."""
        path = Path(folder) / CARD_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path


@dataclass(frozen=True)
class Artifact:
    """An exported model bundle: its folder and its validated card."""

    path: Path
    card: ArtifactCard

    @property
    def model_name(self) -> str:
        return self.card.model.name

    @property
    def version(self) -> str:
        return self.card.model.version

    @property
    def output_names(self) -> list[str]:
        return self.card.output_names

    @property
    def takes_waveform(self) -> bool:
        return self.card.input.takes_waveform

    @property
    def n_samples(self) -> int:
        return self.card.input.n_samples

    def file_for(self, backend: str) -> Path:
        """The path of a backend's model file (``onnx`` or ``torchscript``); raises when the bundle lacks it."""
        try:
            return self.path / self.card.file_for(backend).path
        except ArtifactError as e:
            raise ArtifactError(f"{self.path}: {e}") from None


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_files(folder: Path, card: ArtifactCard, verify: bool) -> None:
    """Every listed file resolves inside ``folder`` (no symlink out of it); with ``verify``, exists and matches
    its sha256."""
    root = folder.resolve()
    for entry in card.files:
        file = folder / entry.path
        if not file.resolve().is_relative_to(root):
            raise ArtifactError(f"{file} leads outside the bundle folder {folder}; it will not be loaded")
        if not verify:
            continue
        if not file.is_file():
            raise ArtifactError(f"{file} is listed in {CARD_FILE} but missing")
        if sha256_file(file) != entry.sha256:
            raise ArtifactError(f"{file} does not match the sha256 in {CARD_FILE}: corrupted or replaced")


def load_artifact(path: str | Path, verify: bool = True) -> Artifact:
    """Read and validate ``path/card.json`` (:meth:`ArtifactCard.from_dict`) and confine its files to ``path``;
    with ``verify``, also check every listed file exists and matches its sha256."""
    path = Path(path)
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise ArtifactError(f"{path} is not an artifact bundle (no {CARD_FILE}); create one with `zoo export CKPT`")
    try:
        data = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{card_path} is not readable JSON ({e})") from None
    card = ArtifactCard.from_dict(data, str(card_path))
    _check_files(path, card, verify)
    return Artifact(path, card)


def latest_artifact(root: str | Path = DEFAULT_ROOT) -> Path:
    """The most recently exported bundle under ``root`` (by the mtime of its card.json)."""
    root = Path(root)
    cards = [
        p for p in root.glob(f"**/{CARD_FILE}") if not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    if not cards:
        raise ArtifactError(f"no exported model under {root}/; run `zoo export CHECKPOINT` first or pass a folder")
    return max(cards, key=lambda p: p.stat().st_mtime).parent


FLAGSHIP_MODEL = "vital-resnet18"


def default_artifact(model: str | None = None, root: str | Path = DEFAULT_ROOT) -> Path:
    """The bundle used when none is named: the newest exported under ``root`` (under ``root/<model>`` when
    ``model`` is given), else the bundle the package ships for ``model`` (vital-resnet18 when None)."""
    from zoo.weights import shipped_artifact

    search = Path(root) / model if model else Path(root)
    try:
        return latest_artifact(search)
    except ArtifactError:
        shipped = shipped_artifact(model or FLAGSHIP_MODEL)
        if shipped is None:
            raise ArtifactError(
                f"no exported model under {search}/ and no shipped {model or FLAGSHIP_MODEL} bundle; "
                "run `zoo export CHECKPOINT` first or pass a folder"
            ) from None
        return shipped
