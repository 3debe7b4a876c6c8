"""StructureNet: masks, extrema, the four growth actions, the growth policy in the engine, checkpoints and
export of a grown network."""

from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader

import zoo
from training.checkpoint import load_checkpoint
from training.config import TrainConfig
from training.export import export_onnx
from training.growth import GradientSpikeDetector, GrowthConfig, param_groups
from training.tasks.structurenet import StructureNetTask, digits_splits
from training.trainer import Trainer
from zoo.models.structurenet import StructureNet
from zoo.runtime import run_onnx


def _net(**kwargs) -> StructureNet:
    model = zoo.create_model("structurenet", **kwargs)
    return model.eval()


def test_density_sets_the_live_connections_and_masked_weights_do_nothing():
    model = _net(density=0.05)
    for layer in model.layers:
        assert layer.active_connections() == round(0.05 * layer.in_features * layer.out_features)
    assert model.active_connections() == model.budget
    x = torch.randn(4, 64)
    before = model(x)
    with torch.no_grad():
        for layer in model.layers:
            layer.weight[layer.mask == 0] = 1e6  # only masked-out entries change
    torch.testing.assert_close(model(x), before)
    model(x).sum().backward()
    for layer in model.layers:
        assert not layer.weight.grad[layer.mask == 0].any()


def test_extrema_finds_dead_and_saturated_units():
    model = _net(hidden=(16, 16), density=1.0)
    with torch.no_grad():
        model.layers[0].bias[3] = -1e3  # never fires: dead
        model.layers[0].bias[5] = 1e3  # always on and far above the rest: saturated
    (first, _) = model.extrema(torch.randn(32, 64))
    assert 3 in first.dead and 5 in first.saturated
    assert 5 not in first.dead and 3 not in first.saturated


def test_growth_actions_keep_the_function_until_trained():
    model = _net(density=0.05)
    x = torch.rand(8, 64) * 16
    before = model(x)
    index = model.insert_layer(1)  # identity on every unit of a_1
    assert index == 1 and model.hidden == [256, 256, 256] and model.grown == [1]
    torch.testing.assert_close(model(x), before)
    skip_mask = torch.zeros(256, 64)
    skip_mask[:4, :4] = 1
    model.add_skip(0, 2, skip_mask)  # zero-initialised highway
    torch.testing.assert_close(model(x), before)
    assert model.skip_pairs() == [(0, 2)]
    model.insert_layer(1)  # renumbers the skip and the grown layers
    assert model.skip_pairs() == [(0, 3)] and model.grown == [1, 2]


def test_patch_is_dense_on_its_block_and_lives_in_the_patch_weight():
    model = _net(density=0.02)
    layer = model.layers[1]
    existing = layer.mask[:8, :8].clone()
    new = model.embed_patch(1, range(8), range(8), init_std=0.1)
    assert layer.live_mask()[:8, :8].all()
    assert int(new.sum()) == int((existing == 0).sum())  # only missing connections are new
    assert not (layer.patch_mask.bool() & layer.mask.bool()).any()  # scaffold and patch are disjoint
    assert model.structure_config()["patched"] == [1]


def test_pruning_restores_the_budget_without_emptying_a_matrix():
    model = _net(density=0.01)
    budget = model.budget
    model.embed_patch(0, range(32), range(32), init_std=1e-4)  # 1,000+ weak new connections
    protected = {"layers.0": model.layers[0].patch_mask.bool()}
    removed = model.prune_to_budget(protected)
    assert model.active_connections() == budget and removed > 0
    assert all(m.active_connections() >= 1 for _, m in model.masked_modules())
    # The readout (26 connections) may lose at most 30 % in the capped passes, not all of them.
    assert model.layers[-1].active_connections() >= 1


def test_grown_structure_rebuilds_from_its_config_and_exports_to_onnx(tmp_path):
    model = _net(density=0.02)
    model.embed_patch(1, range(8), range(8), init_std=0.1)
    model.insert_layer(2)
    model.add_skip(0, 2, (torch.rand(256, 64) < 0.01).float())
    with torch.no_grad():
        for _, m in model.masked_modules():
            m.weight.add_(0.05 * torch.randn_like(m.weight))
    config = model.structure_config()
    rebuilt = _net(**config)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(5, 64) * 16
    torch.testing.assert_close(rebuilt(x), model(x))
    path = export_onnx(rebuilt, (torch.rand(2, 64),), tmp_path / "grown.onnx", ["x"], ["logits"])
    (got,) = run_onnx(path, {"x": x})
    torch.testing.assert_close(torch.from_numpy(got), model(x).detach(), rtol=1e-4, atol=1e-5)


def test_spike_detector_flags_a_jump_not_noise():
    detector = GradientSpikeDetector(factor=3.0, warmup=20)
    gen = torch.Generator().manual_seed(0)
    noise = [1.0 + 0.1 * float(torch.randn(1, generator=gen)) for _ in range(200)]
    assert not any(detector.update(v) for v in noise)
    assert any(detector.update(v) for v in (5.0, 6.0, 5.5))


def test_param_groups_give_patches_and_new_components_their_own_rates():
    model = _net(density=0.02)
    model.embed_patch(1, range(4), range(4), init_std=0.1)
    model.insert_layer(1)
    groups = {g["name"]: g for g in param_groups(model, 1e-3, GrowthConfig())}
    assert groups["scaffold"]["lr"] == pytest.approx(1e-3)
    assert groups["patch:layers.2"]["lr"] == pytest.approx(3e-3)  # the patched layer moved from 1 to 2
    assert groups["grown:layers.1"]["lr"] == pytest.approx(3e-3)
    n_params = sum(p.numel() for g in groups.values() for p in g["params"])
    assert n_params == sum(p.numel() for p in model.parameters())


def _cfg(tmp_path, epochs: int = 2, **kwargs) -> TrainConfig:
    return TrainConfig(
        model="structurenet", epochs=epochs, batch_size=64, lr=3e-3, out=tmp_path, run_name="run", **kwargs
    )


# Triggers that fire within a 2-epoch run: check often, plenty of credits, spikes after 5 steps.
_EAGER = dict(
    check_every=5, initial_credits=1000.0, spike_warmup=5, spike_factor=0.0, warmup_steps=5, extrema_trigger=0.05
)


def test_growth_runs_in_the_engine_keeps_the_budget_and_checkpoints_the_structure(tmp_path):
    cfg = _cfg(tmp_path, epochs=1, model_overrides={"density": 0.02})
    task = StructureNetTask(cfg, growth=GrowthConfig(**_EAGER))
    trainer = Trainer(cfg, task)
    summary = trainer.fit()
    events = task.growth.events
    assert events, "eager triggers should grow"
    kinds = {a["action"] for e in events for a in e["actions"]}
    assert {"patch", "layer"} <= kinds
    assert all(e["active_connections"] <= trainer.raw_model.budget for e in events)
    run = tmp_path / "structurenet" / "run"
    assert len(list((run / "growth").glob("event-*.pt"))) == len(events)  # a snapshot per event
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["model_config"]["hidden"] == trainer.raw_model.hidden
    rebuilt = zoo.create_model("structurenet", **ckpt["model_config"])
    rebuilt.load_state_dict(ckpt["model"])  # the grown structure loads from the checkpoint
    x = task.splits["test"].x[:16]
    torch.testing.assert_close(rebuilt.eval()(x), trainer.raw_model.eval()(x))
    assert summary["skipped_steps"] == 0

    resumed = Trainer(_cfg(tmp_path, epochs=2, model_overrides={"density": 0.02}), StructureNetTask(cfg))
    resumed.fit(resume=run / "latest.pt")  # optimizer groups of the grown model match the checkpoint
    assert resumed.step > trainer.step


def test_no_credits_no_growth(tmp_path):
    cfg = _cfg(tmp_path, epochs=1, max_steps=10, model_overrides={"density": 0.01})
    broke = GrowthConfig(**{**_EAGER, "initial_credits": 0.0, "credit_per_correct": 0.0})
    task = StructureNetTask(cfg, growth=broke)
    Trainer(cfg, task).fit()
    assert task.growth.events == []


def test_task_data_is_the_shipped_digits_split_by_class():
    splits = digits_splits()
    assert {k: len(v) for k, v in splits.items()} == {"train": 1293, "val": 144, "test": 360}
    assert splits["train"].x.shape[1] == 64 and float(splits["train"].x.max()) == 16.0
    assert sorted(set(splits["test"].y.tolist())) == list(range(10))
    task = StructureNetTask(SimpleNamespace(lr=1e-3, val_fraction=0.1), growth=False)
    train, val = task.datasets()
    model = zoo.create_model("structurenet")
    loss, logs = task.loss(model, next(iter(DataLoader(train, batch_size=32))))
    assert torch.isfinite(loss) and 0.0 <= float(logs["accuracy"]) <= 1.0
    metrics = task.validate(model.eval(), DataLoader(val, batch_size=64), torch.device("cpu"))
    assert {"val_loss", "val_accuracy", "val_dead_share", "val_active_connections"} <= set(metrics)


def _fake(density: float, variant: str, acc: float, seed: int = 0):
    from training.experiments.structurenet import RunResult

    actions = {"patch": 2} if variant != "static" else {}
    return RunResult(density, variant, seed, 2, acc, 0.1, [0.1, acc], actions=actions, final_structure={"hidden": [8]})


def test_ladder_report_locates_the_cliff_and_judges_the_note():
    from training.experiments.structurenet import ladder_markdown, ladder_summary

    accs = {1.0: 0.97, 0.1: 0.96, 0.05: 0.95, 0.02: 0.90, 0.01: 0.30, 0.005: 0.12}
    summary = ladder_summary([_fake(d, "static", a + 0.01 * s, s) for d, a in accs.items() for s in range(2)])
    assert (summary["cliff"]["from"], summary["cliff"]["to"]) == (0.02, 0.01)
    assert summary["threshold"] == 0.02
    text = ladder_markdown(summary, "zoo experiment sparsity-ladder", seeds=2, epochs=2)
    assert text.splitlines()[2:5] == ["```bash", "zoo experiment sparsity-ladder", "```"]
    assert "on this data the cliff is at the notes' 2 %" in text


def test_rescue_report_says_whether_growth_rescues():
    from training.experiments.structurenet import rescue_markdown, rescue_summary

    results = [
        _fake(0.01, "static", 0.2),
        _fake(0.01, "growth", 0.85),
        _fake(0.01, "patches only", 0.8),
    ]
    text = rescue_markdown(rescue_summary(results), "zoo experiment cliff-rescue", seeds=1, epochs=2)
    assert "| 1 % |" in text and "20.0 %" in text and "85.0 %" in text
    assert "growth rescues learning below the cliff, and 97 % is not reached" in text


def test_experiment_flags_are_checked():
    from typer.testing import CliRunner

    from zoo.cli import app

    result = CliRunner().invoke(app, ["experiment", "cliff-rescue", "--densities", "half"])
    assert result.exit_code == 1
    assert "`--densities` must be comma-separated fractions" in result.output
