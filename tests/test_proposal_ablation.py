"""`zoo experiment proposal-ablation`: its table, and configurations that another command trains."""

import json

import pytest

from training.experiments.proposal import ablation_table, run_ablation


def _result(name: str, distances: list[float], seconds: dict) -> dict:
    mean = sum(distances) / len(distances)
    audio = {"model": {"mean": mean, "median": mean}, "distances": {"model": distances}}
    return {"name": name, "config": {"about": name}, "seconds": seconds, "samples_per_s": None, "audio": audio}


def test_the_table_pairs_each_configuration_with_today_and_leaves_unmeasured_training_blank(tmp_path):
    (tmp_path / "today.json").write_text(json.dumps(_result("today", [3.0, 3.0, 3.0], {"train": 600.0})))
    (tmp_path / "all.json").write_text(json.dumps(_result("all", [2.0, 2.5, 2.0], {"evaluate": 90.0})))
    rows = {line.split(" | ")[0].strip("| "): line for line in ablation_table(tmp_path).splitlines()}
    assert rows["today"].endswith("| 10.0 |")
    assert "+0.833" in rows["all"] and rows["all"].endswith("|  |  |")  # no throughput nor minutes scored-only


def test_a_recipe_configuration_is_only_scored_here(tmp_path):
    with pytest.raises(ValueError, match="zoo train vital-resnet18 --recipe large"):
        run_ablation("large", 1500, 4, tmp_path, tmp_path, tmp_path / "calibration.txt")
