"""`zoo data precompute-mels`: the log-mel of every stored clip, written next to the audio.

Reads ``audio`` sequentially (gzip chunks decode fastest in order), runs :class:`zoo.audio.LogMelFrontEnd`
in batches and writes ``features/mel_spectrogram`` (N, 1, 128, 173) float32, uncompressed, one chunk per
sample, so a training loader reads any sample with one contiguous read. Progress is recorded in the
dataset's ``n_done`` attribute: an interrupted run continues where it stopped, and a second run over a
complete file does nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.data import schema
from zoo.audio import FrontEndConfig
from zoo.errors import DatasetError


def _open_for_update(path: Path):
    f = schema.open_file(path, "r+")
    if "spec" not in f.attrs or schema.AUDIO not in f:
        f.close()
        raise DatasetError(f"{path} is not a Vital dataset; make one with `zoo data generate`")
    if not bool(f.attrs.get("complete", False)):
        f.close()
        raise DatasetError(f"{path} is not complete; finish it with `zoo data generate ... --resume` first")
    return f


def precompute_mels(path: Path, batch_size: int = 64, progress: bool = True) -> None:
    """Write ``features/mel_spectrogram`` for every row of the dataset at ``path`` (idempotent)."""
    import torch
    from tqdm.auto import tqdm

    from zoo.audio import LogMelFrontEnd

    if batch_size < 1:
        raise DatasetError(f"--batch-size must be at least 1, got {batch_size}")
    path = Path(path)
    cfg = FrontEndConfig()
    config_json = json.dumps(cfg.to_dict(), sort_keys=True)
    with _open_for_update(path) as f:
        audio = f[schema.AUDIO]
        n = audio.shape[0]
        if schema.MEL in f:
            mel = f[schema.MEL]
            if mel.attrs.get("front_end") != config_json or mel.shape[0] != n:
                del f[schema.MEL]  # another front end or another row count: compute afresh
        if schema.MEL not in f:
            mel = f.create_dataset(schema.MEL, (n, *cfg.output_shape), np.float32, chunks=(1, *cfg.output_shape))
            mel.attrs["front_end"] = config_json
            mel.attrs["n_done"] = 0
        start = int(mel.attrs["n_done"])
        if start >= n:
            return
        front_end = LogMelFrontEnd(cfg).eval()
        with (
            torch.inference_mode(),
            tqdm(total=n, initial=start, unit="clip", desc="mels", disable=not progress) as bar,
        ):
            for lo in range(start, n, batch_size):
                hi = min(lo + batch_size, n)
                wave = torch.from_numpy(audio[lo:hi])  # (B, 88200)
                mel[lo:hi] = front_end(wave).numpy()  # (B, 1, 128, 173)
                mel.attrs["n_done"] = hi
                bar.update(hi - lo)
