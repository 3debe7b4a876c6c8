"""The training engine on a tiny regression task: learning, checkpoints, resume, stability, monitors."""

import json

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import zoo.registry as registry
from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.config import TrainConfig
from training.monitors import TrainingDiverged
from training.tasks import Callback, Task
from training.trainer import Trainer


class _DictSet(TensorDataset):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return {"x": x, "y": y}


class ToyNet(nn.Module):
    def __init__(self, dead_branch: bool = False):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
        self.unused = nn.Linear(4, 1) if dead_branch else None

    def forward(self, x):
        out = self.body(x)
        if self.unused is not None:
            out = out + 0.0 * self.unused(x)  # contributes nothing: its gradient is exactly zero
        return out


class ToyTask(Task):
    family = "toy"
    nan_at_calls: set = set()  # training loss calls (1-based) that return NaN
    nan_from_call: int | None = None
    calls = 0

    def datasets(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(256, 4, generator=g)
        y = (x @ torch.tensor([1.0, -2.0, 0.5, 0.0])).unsqueeze(1)
        return _DictSet(x[:192], y[:192]), _DictSet(x[192:], y[192:])

    def loss(self, model, batch):
        loss = ((model(batch["x"]) - batch["y"]) ** 2).mean()
        if model.training:
            self.calls += 1
            if self.calls in self.nan_at_calls or (self.nan_from_call and self.calls >= self.nan_from_call):
                loss = loss * float("nan")
        return loss, {"mse": loss.detach()}

    def callbacks(self):
        task = self

        class Tracker(Callback):
            def on_epoch_end(self, trainer, epoch, metrics):
                if epoch == getattr(task, "interrupt_after_epoch", None):
                    raise KeyboardInterrupt  # as if the user pressed Ctrl-C

        return [Tracker()]


@pytest.fixture
def toy_model():
    registry._ensure_loaded()
    registry.register_model("toy-net", family="toy", task="test", inputs=(registry.TensorSpec("x", (4,)),))(ToyNet)
    yield "toy-net"
    del registry._REGISTRY["toy-net"]


def _cfg(tmp_path, **kw):
    base = dict(
        model="toy-net", epochs=4, batch_size=16, lr=3e-2, warmup_epochs=1, out=tmp_path, run_name="r", device="cpu"
    )
    return TrainConfig(**{**base, **kw})


def test_training_learns_and_writes_run_files(toy_model, tmp_path):
    cfg = _cfg(tmp_path)
    summary = Trainer(cfg, ToyTask(cfg)).fit()
    run = tmp_path / "toy-net" / "r"
    for f in ("best.pt", "latest.pt", "metrics.jsonl", "curves.png", "config.json"):
        assert (run / f).is_file(), f
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 4
    assert epochs[-1]["val_loss"] < 0.2 * epochs[0]["val_loss"]
    assert summary["skipped_steps"] == 0
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["model_name"] == "toy-net" and ckpt["train_config"]["lr"] == 3e-2
    model, _ = model_from_checkpoint(ckpt)
    assert isinstance(model, ToyNet)


def test_resume_continues_at_next_epoch_and_matches_uninterrupted(toy_model, tmp_path):
    full_cfg = _cfg(tmp_path / "full")
    Trainer(full_cfg, ToyTask(full_cfg)).fit()
    full = load_checkpoint(tmp_path / "full" / "toy-net" / "r" / "latest.pt")

    part_cfg = _cfg(tmp_path / "part")
    task = ToyTask(part_cfg)
    task.interrupt_after_epoch = 1
    with pytest.raises(KeyboardInterrupt):
        Trainer(part_cfg, task).fit()
    latest = tmp_path / "part" / "toy-net" / "r" / "latest.pt"
    assert load_checkpoint(latest)["epoch"] == 1
    resume_cfg = _cfg(tmp_path / "part")
    Trainer(resume_cfg, ToyTask(resume_cfg)).fit(resume=latest)
    resumed = load_checkpoint(latest)
    assert resumed["epoch"] == 3
    for k, v in full["model"].items():
        torch.testing.assert_close(resumed["model"][k], v, rtol=1e-5, atol=1e-6)


def test_non_finite_steps_are_skipped_and_counted(toy_model, tmp_path):
    cfg = _cfg(tmp_path, epochs=2)
    task = ToyTask(cfg)
    task.nan_at_calls = {3, 7}
    summary = Trainer(cfg, task).fit()
    assert summary["skipped_steps"] == 2
    assert summary["steps"] == 2 * 12 - 2


def test_consecutive_non_finite_steps_stop_with_a_report(toy_model, tmp_path):
    cfg = _cfg(tmp_path, epochs=2, max_bad_steps=3)
    task = ToyTask(cfg)
    task.nan_from_call = 5
    with pytest.raises(TrainingDiverged, match="3 consecutive steps with a non-finite loss"):
        Trainer(cfg, task).fit()


def test_gradient_flow_monitor_names_dead_parameters(toy_model, tmp_path, capsys):
    cfg = _cfg(tmp_path, epochs=2, model_overrides={"dead_branch": True})
    Trainer(cfg, ToyTask(cfg)).fit()
    out = capsys.readouterr()
    assert "2 parameters have near-zero gradients: unused.weight, unused.bias" in out.out + out.err


class MelToyTask(ToyTask):
    """A task whose inputs came from a front end (as a mel task's do), with a headline metric of its own."""

    headline_metrics = ("val_mse",)

    def front_end(self):
        return {"n_mels": 7, "hop_length": 99}


def test_checkpoint_front_end_and_epoch_line_come_from_the_task(toy_model, tmp_path, capsys):
    cfg = _cfg(tmp_path / "plain", epochs=1)
    Trainer(cfg, ToyTask(cfg)).fit()
    assert load_checkpoint(tmp_path / "plain" / "toy-net" / "r" / "best.pt")["front_end"] is None  # takes no mel
    assert "val_mse" not in capsys.readouterr().out
    cfg = _cfg(tmp_path / "mel", epochs=1)
    Trainer(cfg, MelToyTask(cfg)).fit()
    front_end = load_checkpoint(tmp_path / "mel" / "toy-net" / "r" / "best.pt")["front_end"]
    assert front_end == {"n_mels": 7, "hop_length": 99}
    epoch_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch 1:"))
    assert {"val_loss", "val_mse", "samples_per_s", "data_wait_fraction"} == set(json.loads(epoch_line[9:]))


def test_throughput_meter_splits_waiting_from_work(monkeypatch):
    from training import monitors

    clock = iter([0.0, 1.0, 4.0, 4.5, 6.5])  # start; batch 1 ready after 1 s, done 3 s later; batch 2: 0.5 + 2
    monkeypatch.setattr(monitors.time, "perf_counter", lambda: next(clock))
    meter = monitors.ThroughputMeter()
    meter.batch_ready()
    meter.batch_done(32)
    meter.batch_ready()
    meter.batch_done(32)
    assert meter.samples_per_s == pytest.approx(64 / 6.5)
    assert meter.data_wait_fraction == pytest.approx(1.5 / 6.5)


def test_warmup_then_cosine_to_zero():
    from training.schedule import warmup_cosine

    f = warmup_cosine(total_steps=100, warmup_steps=10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5, abs=0.02)
    assert f(99) < 0.01


@pytest.mark.parametrize(
    "kwargs,flag",
    [
        ({"epochs": 0}, "--epochs"),
        ({"batch_size": "big"}, "--batch-size"),
        ({"epochs": 3, "warmup_epochs": 3}, "--warmup-epochs"),
        ({"lr": -1.0}, "--lr"),
        ({"device": "tpu"}, "--device"),
        ({"logger": "mlflow"}, "--logger"),
    ],
)
def test_config_errors_name_the_flag(kwargs, flag):
    with pytest.raises(ValueError, match=flag):
        TrainConfig(model="toy-net", **kwargs)
