"""`--batch-size auto`: the largest power-of-two batch that fits in memory.

CUDA: try a forward and backward pass at doubling sizes until the device runs out of memory.
CPU: measure the activation bytes one sample produces (forward hooks on every module) and fit the batch
into a quarter of the available RAM; a backward pass roughly doubles activations, counted in.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

MAX_BATCH = 512


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def activation_bytes_per_sample(model: nn.Module, task, sample: dict) -> int:
    total = 0

    def hook(_m, _i, out):
        nonlocal total
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            task.loss(model, default_collate([sample]))
    finally:
        for h in handles:
            h.remove()
    return max(total, 1)


def find_batch_size(model: nn.Module, task, dataset: Dataset, device: torch.device) -> int:
    limit = min(MAX_BATCH, len(dataset))
    sample = dataset[0]
    if device.type == "cuda":
        best, size = 1, 1
        while size <= limit:
            try:
                batch = {k: v.to(device) for k, v in default_collate([sample] * size).items()}
                loss, _ = task.loss(model, batch)
                loss.backward()
                model.zero_grad(set_to_none=True)
                best, size = size, size * 2
            except torch.OutOfMemoryError:
                break
            finally:
                torch.cuda.empty_cache()
        chosen = best
    else:
        per_sample = 3 * activation_bytes_per_sample(model.cpu(), task, sample)  # forward + backward + slack
        fit = max(_available_ram() // 4 // per_sample, 1)
        chosen = 1 << (min(fit, limit).bit_length() - 1)
    model.to(device)
    print(f"--batch-size auto: {chosen}")
    return chosen
