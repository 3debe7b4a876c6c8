"""The project's exception types. The CLI turns a ``ZooError`` into a one-line message."""


class ZooError(Exception):
    """Base class of every error a user can cause (bad name, bad file, bad argument)."""


class UnknownModelError(ZooError, ValueError):
    """A model name that is not in the registry."""


class DuplicateModelError(ZooError, ValueError):
    """A model name registered twice."""


class AudioDecodeError(ZooError, ValueError):
    """Audio that cannot be used: empty, corrupt, not audio, non-finite or silent."""


class WeightsNotFoundError(ZooError, FileNotFoundError):
    """Pretrained weights were asked for but no local weights file exists."""


class PresetError(ZooError, ValueError):
    """A Vital preset that cannot be read, written or loaded: not JSON, not a preset, or rejected by Vital."""


class DatasetError(ZooError, ValueError):
    """A dataset file or generation request that cannot be used (bad arguments, missing features, schema)."""


class AudioTooLongError(AudioDecodeError):
    """Audio longer than the configured limit."""


class ExportError(ZooError, ValueError):
    """A model or checkpoint that cannot be exported as asked."""


class ParityError(ExportError):
    """An exported runtime whose outputs differ from eager PyTorch beyond tolerance."""


class ArtifactError(ZooError, ValueError):
    """An artifact bundle that is missing, incomplete or does not match its card."""


class CheckpointError(ZooError, ValueError):
    """A file that is not a readable, safe zoo checkpoint or weights file."""


class WeightsMismatchError(CheckpointError):
    """Weights that do not fit the model they are loaded into (missing, unexpected or reshaped tensors)."""


class MissingDependencyError(ZooError, ImportError):
    """An optional dependency that is not installed; the message names the extra that installs it."""
