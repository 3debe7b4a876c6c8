"""The training loop, written once for every model family. A family's Task supplies data, loss,
metrics, parameter groups and callbacks (training/tasks/).

Reads top to bottom: set up (DDP from the torchrun environment), data, model, optimizer and schedule,
resume, then epochs of steps (non-finite checks before clipping, gradient-flow report on the first
step of each epoch), validation, checkpoints and early stopping on rank 0.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

import zoo
from training import distributed
from training.checkpoint import load_checkpoint, save_checkpoint
from training.config import TrainConfig
from training.monitors import StabilityMonitor, ThroughputMeter, gradient_flow, nonfinite_grad_report
from training.run_logging import RunLogger
from training.schedule import build_scheduler
from training.tasks import Task, task_for_family
from training.tasks.base import Batch
from zoo.files import remove_stale_temporaries
from zoo.registry import model_entry
from zoo.state_dict import load_weights


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    def __init__(self, cfg: TrainConfig, task: Task | None = None) -> None:
        self.cfg = cfg
        self.env = distributed.setup(cfg.device)
        self.task = task or task_for_family(model_entry(cfg.model).family)(cfg)
        self.step = 0
        self.start_epoch = 0
        self.best_metric = math.inf
        self.stability = StabilityMonitor(cfg.max_bad_steps)
        self.run_dir: Path | None = None
        self.logger: RunLogger | None = None

    # ---------------------------------------------------------------- set-up
    def _build(self, resume: dict[str, Any] | None) -> None:
        cfg, env = self.cfg, self.env
        if env.master:
            self.task.prepare_data()
        distributed.barrier(env)
        self.train_set, self.val_set = self.task.datasets()
        self.model_config = {**self.task.model_overrides(), **cfg.model_overrides}
        if resume is not None:
            self.model_config = resume["model_config"]
        model = zoo.create_model(cfg.model, **self.model_config).to(env.device)
        self.raw_model = model
        if cfg.init_from is not None and resume is None:
            from training.checkpoint import load_partial

            report = load_partial(model, load_checkpoint(cfg.init_from)["model"])
            if env.master:
                print(f"--init-from {cfg.init_from}: {report.summary()}")
        if cfg.batch_size == "auto":
            from training.batch_size import find_batch_size

            chosen = find_batch_size(model, self.task, self.train_set, env.device) if env.master else 0
            cfg.batch_size = distributed.broadcast_int(env, chosen)
        if env.ddp:
            if env.device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
                self.raw_model = model
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[env.device.index] if env.device.type == "cuda" else None
            )
        self.model = model

        if env.ddp:
            self.sampler = DistributedSampler(self.train_set, shuffle=True, seed=cfg.seed, drop_last=True)
        else:
            self.sampler = RandomSampler(self.train_set, generator=torch.Generator())
        per_rank = max(cfg.batch_size // env.world_size, 1)
        self.train_loader = DataLoader(
            self.train_set,
            batch_size=per_rank,
            sampler=self.sampler,
            drop_last=True,
            num_workers=cfg.num_workers,
            persistent_workers=cfg.num_workers > 0,
        )
        if len(self.train_loader) == 0:
            raise ValueError(
                f"the training set has {len(self.train_set)} samples, fewer than one batch of {cfg.batch_size}; "
                "lower `--batch-size` or use more data"
            )
        self.val_loader = DataLoader(self.val_set, batch_size=per_rank, shuffle=False, num_workers=cfg.num_workers)

        self.steps_per_epoch = math.ceil(len(self.train_loader) / cfg.grad_accum)
        total = self.steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        self.total_steps = total
        self.optimizer = self._optimizer()
        self.scheduler = build_scheduler(self.optimizer, total, self.steps_per_epoch * cfg.warmup_epochs)
        self.callbacks = self.task.callbacks()
        if resume is not None:
            self._restore(resume)

        max_lr = max(g["lr"] for g in self.optimizer.param_groups)
        stable = getattr(self.task, "max_stable_lr", None)
        if env.master and stable is not None and max_lr > stable:
            warnings.warn(
                f"learning rate {max_lr:g} is above {stable:g}, the highest known to train {cfg.model} stably",
                stacklevel=2,
            )

    def _optimizer(self) -> torch.optim.Optimizer:
        groups = self.task.param_groups(self.raw_model)
        return torch.optim.AdamW(groups, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    def rebuild_optimizer(self) -> None:
        """For callbacks that change the model's parameters: new optimizer and schedule at the current step."""
        self.optimizer = self._optimizer()
        warm = self.steps_per_epoch * self.cfg.warmup_epochs
        self.scheduler = build_scheduler(self.optimizer, self.total_steps, warm)
        for _ in range(self.step):  # fast-forward the schedule to where training is
            self.scheduler.step()

    def _restore(self, ckpt: dict[str, Any]) -> None:
        load_weights(self.raw_model, ckpt["model"], source="the weights of the checkpoint resumed from")
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.start_epoch = ckpt["epoch"] + 1
        self.step = ckpt["step"]
        self.best_metric = ckpt["best_metric"]
        for cb, state in zip(self.callbacks, ckpt.get("callbacks", []), strict=False):
            cb.load_state_dict(state)
        set_rng_state(ckpt["rng"])

    def _checkpoint_state(self, epoch: int, metrics: dict[str, float]) -> dict[str, Any]:
        return {
            "model_name": self.cfg.model,
            "model_config": self.model_config,
            "model": self.raw_model.state_dict(),
            "front_end": self.task.front_end(),
            "train_config": self.cfg.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": epoch,
            "step": self.step,
            "best_metric": self.best_metric,
            "metrics": metrics,
            "rng": rng_state(),
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "spec": None,
            **self.task.checkpoint_extras(),
        }

    # ---------------------------------------------------------------- the loop
    def fit(self, resume: str | Path | None = None) -> dict[str, Any]:
        """Train; returns a summary (run dir, best metric, epochs run, skipped steps)."""
        cfg, env = self.cfg, self.env
        try:
            ckpt = load_checkpoint(resume) if resume else None
            if ckpt is not None and ckpt["model_name"] != cfg.model:
                raise ValueError(f"`--resume` checkpoint is for {ckpt['model_name']!r}, not {cfg.model!r}")
            seed_everything(cfg.seed + env.rank)
            self._build(ckpt)
            self.run_dir = Path(resume).parent if resume else self._new_run_dir()
            if env.master:
                remove_stale_temporaries(self.run_dir, "*.pt")  # checkpoint writes cut off by a crash
                resumed_at = (ckpt["epoch"], ckpt["step"]) if ckpt is not None else None
                self.logger = RunLogger(self.run_dir, cfg, resume=ckpt is not None, resumed_at=resumed_at)
            for cb in self.callbacks:
                cb.on_train_start(self)
            stop_reason = "finished all epochs"
            epochs_without_improvement = 0
            for epoch in range(self.start_epoch, cfg.epochs):
                self._train_epoch(epoch)
                metrics = self._validate_and_checkpoint(epoch)
                for cb in self.callbacks:
                    cb.on_epoch_end(self, epoch, metrics)
                improved = metrics.get("improved", False)
                epochs_without_improvement = 0 if improved else epochs_without_improvement + 1
                patience = cfg.early_stopping_patience
                if distributed.any_rank(env, patience is not None and epochs_without_improvement >= patience):
                    stop_reason = f"early stopping: no improvement of {self.task.monitor} for {patience} epochs"
                    break
                if cfg.max_steps is not None and self.step >= cfg.max_steps:
                    stop_reason = f"reached --max-steps {cfg.max_steps}"
                    break
            summary = {
                "run_dir": str(self.run_dir),
                "best_metric": self.best_metric,
                "monitor": self.task.monitor,
                "steps": self.step,
                "skipped_steps": self.stability.skipped,
                "stop_reason": stop_reason,
            }
            if self.logger is not None:
                self.logger.finish(summary)
            # Every rank reaches the teardown together: a gloo rank that destroyed its process group while
            # another was still writing its logs could abort ("terminate called without an active exception").
            distributed.barrier(env)
            return summary
        finally:
            if self.logger is not None:
                self.logger.close()
            distributed.teardown(env)

    def _new_run_dir(self) -> Path:
        name = self.cfg.run_name or time.strftime("%Y%m%d-%H%M%S")
        run_dir = self.cfg.out / self.cfg.model / name
        if self.env.master:
            run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

    def _train_epoch(self, epoch: int) -> None:
        """One pass over the training loader: a :meth:`_step` per micro-batch; logs and callbacks after every
        optimizer step."""
        self._shuffle_for(epoch)
        self.model.train()
        progress = self._progress_bar(epoch)
        meter = ThroughputMeter()
        self._micro = 0  # micro-batches since the last optimizer step (gradient accumulation)
        self._flow_reported = False  # the gradient-flow report runs on the epoch's first optimizer step
        self.optimizer.zero_grad(set_to_none=True)
        for batch in self.train_loader:
            meter.batch_ready()
            batch = {k: v.to(self.env.device, non_blocking=True) for k, v in batch.items()}
            samples, logs = self._step(batch, epoch, progress)
            if logs is not None:
                for cb in self.callbacks:
                    cb.on_step_end(self, batch, logs)
                if progress is not None:
                    progress.update(self.cfg.grad_accum)
                    progress.set_postfix(loss=f"{logs['loss']:.4f}", sps=f"{meter.samples_per_s:.1f}")
                if self.logger is not None:
                    self.logger.step({"step": self.step, "epoch": epoch, **logs})
            meter.batch_done(samples)
            if self.cfg.max_steps is not None and self.step >= self.cfg.max_steps:
                break
        if progress is not None:
            progress.close()
        self.epoch_timing = {
            "samples_per_s": meter.samples_per_s,
            "data_wait_fraction": meter.data_wait_fraction,
            "skipped_steps": self.stability.skipped,
        }

    def _step(self, batch: Batch, epoch: int, progress: Any) -> tuple[int, dict[str, float] | None]:
        """Forward and backward of one micro-batch, and the optimizer step once ``grad_accum`` of them are in.

        Returns (samples used, over all ranks; the step's logs, or None when no optimizer step was taken). A
        non-finite loss or gradient skips the step and is counted by the stability monitor.
        """
        cfg, env = self.cfg, self.env
        self._micro += 1
        sync_now = self._micro % cfg.grad_accum == 0
        no_sync = self.model.no_sync if env.ddp and not sync_now else contextlib.nullcontext
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if env.device.type == "cuda" else contextlib.nullcontext()
        )
        with no_sync(), autocast:
            loss, logs = self.task.loss(self.model, batch)
        if distributed.any_rank(env, not bool(torch.isfinite(loss.detach()))):
            self.optimizer.zero_grad(set_to_none=True)
            self._micro = 0
            self.stability.bad(self.step, "non-finite loss", [f"loss={float(loss.detach()):.4g}"])
            return 0, None
        with no_sync():
            (loss / cfg.grad_accum).backward()
        samples = next(iter(batch.values())).shape[0] * env.world_size
        if not sync_now:
            return samples, None
        # Checks happen on the averaged gradients, before clipping, identically on every rank.
        bad = nonfinite_grad_report(self.raw_model)
        if distributed.any_rank(env, bool(bad)):
            self.optimizer.zero_grad(set_to_none=True)
            self.stability.bad(self.step, "non-finite gradient", bad)
            return samples, None
        if not self._flow_reported:
            self._flow_reported = True
            self._report_gradient_flow(epoch, progress)
        grad_norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.stability.ok()
        self.step += 1
        return samples, {
            "loss": float(loss.detach()),
            "grad_norm": grad_norm,
            "lr": self.optimizer.param_groups[-1]["lr"],
            **{k: float(v) for k, v in logs.items()},
        }

    def _shuffle_for(self, epoch: int) -> None:
        """The shuffle order depends on (seed, epoch) only, so a resumed run sees the same batches."""
        if isinstance(self.sampler, DistributedSampler):
            self.sampler.set_epoch(epoch)
        else:
            self.sampler.generator.manual_seed(self.cfg.seed + epoch)  # as DistributedSampler

    def _progress_bar(self, epoch: int) -> Any:
        """A tqdm bar over the epoch's batches on rank 0; None elsewhere."""
        if not self.env.master:
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=len(self.train_loader),
            desc=f"epoch {epoch + 1}/{self.cfg.epochs}",
            unit="batch",
            dynamic_ncols=True,
            leave=True,
        )

    def _report_gradient_flow(self, epoch: int, progress: Any) -> None:
        """Name the parameters whose gradient is near zero (dead branches show up early)."""
        dead, _ = gradient_flow(self.raw_model)
        if dead and self.env.master:
            shown = ", ".join(dead[:8]) + (" ..." if len(dead) > 8 else "")
            (progress.write if progress else print)(f"{len(dead)} parameters have near-zero gradients: {shown}")
            if self.logger:
                self.logger.event({"epoch": epoch, "near_zero_grad_params": dead})

    def _validate_and_checkpoint(self, epoch: int) -> dict[str, Any]:
        env = self.env
        metrics: dict[str, Any] = {}
        if env.master:
            self.raw_model.eval()
            metrics = self.task.validate(self.raw_model, self.val_loader, env.device)
            value = metrics[self.task.monitor]
            improved = value < self.best_metric
            if improved:
                self.best_metric = value
            metrics = {"epoch": epoch, "step": self.step, **metrics, **self.epoch_timing, "improved": improved}
            state = self._checkpoint_state(epoch, metrics)
            save_checkpoint(self.run_dir / "latest.pt", state)
            if improved:
                save_checkpoint(self.run_dir / "best.pt", state)
            self.logger.epoch(metrics)
            # The headline figures (the task names its own); every metric is in metrics.jsonl.
            keys = dict.fromkeys(
                ("val_loss", self.task.monitor, *self.task.headline_metrics, "samples_per_s", "data_wait_fraction")
            )
            shown = {k: round(metrics[k], 4) for k in keys if isinstance(metrics.get(k), float)}
            print(f"epoch {epoch + 1}: " + json.dumps(shown), flush=True)
        distributed.barrier(env)
        # Early stopping must be decided identically everywhere: share rank 0's verdict.
        improved = distributed.any_rank(env, bool(metrics.get("improved", False)))
        metrics["improved"] = improved
        return metrics
