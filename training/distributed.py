"""DDP from the torchrun environment alone: RANK, LOCAL_RANK and WORLD_SIZE decide everything."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    ddp: bool
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def master(self) -> bool:
        return self.rank == 0  # only rank 0 logs and checkpoints


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("`--device cuda` was asked for but no CUDA device is available; use --device cpu")
    return torch.device(name)


def setup(device_name: str) -> DistEnv:
    """Initialise the process group when launched by torchrun (gloo on CPU, NCCL on CUDA)."""
    ddp = int(os.environ.get("RANK", -1)) != -1
    device = resolve_device(device_name)
    if not ddp:
        return DistEnv(False, 0, 0, 1, device)
    rank, local_rank, world = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistEnv(True, rank, local_rank, world, device)


def teardown(env: DistEnv) -> None:
    if env.ddp and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.ddp:
        dist.barrier()


def any_rank(env: DistEnv, flag: bool) -> bool:
    """True on every rank if ``flag`` is True on any rank (so all ranks take the same branch)."""
    if not env.ddp:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def broadcast_int(env: DistEnv, value: int) -> int:
    """Rank 0's ``value`` on every rank."""
    if not env.ddp:
        return value
    t = torch.tensor([value], device=env.device)
    dist.broadcast(t, src=0)
    return int(t.item())
