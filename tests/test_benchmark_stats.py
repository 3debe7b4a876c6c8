"""Paired comparisons the benchmarks report: the interval, and two phrase runs compared phrase by phrase."""

import json

import numpy as np
import pytest

from benchmarks.phrase_resynthesis import compare_runs
from benchmarks.stats import paired_interval


def test_the_paired_interval_holds_the_mean_and_excludes_zero_only_for_a_steady_gain():
    rng = np.random.default_rng(1)
    steady = 0.3 + 0.05 * rng.standard_normal(40)
    mean, lo, hi = paired_interval(steady)
    assert lo < mean < hi and lo > 0 and mean == pytest.approx(steady.mean())
    _, lo, hi = paired_interval(rng.standard_normal(40))  # no gain: the interval straddles zero
    assert lo < 0 < hi
    mean, lo, hi = paired_interval(np.stack([steady, -steady], axis=1))  # per column
    assert mean.shape == (2,) and lo[0] > 0 > hi[1]
    with pytest.raises(ValueError):
        paired_interval(np.zeros(0))


def _rows(folder, values):
    folder.mkdir()
    lines = []
    for k, v in enumerate(values):
        search = {m: {"proposals": {"model": v}, "distance_end": v} for m in ("tier1_search", "wavetable_search")}
        distance = {m: {"spectral": v, "mfcc": 10 * v} for m in ("single_cycle", "tier1_search", "wavetable_search")}
        lines.append(json.dumps({"preset": f"p{k}", "search": search, "distance": distance}))
    lines.append(json.dumps({"preset": "numpy/noise", "not_vital": True}))  # not compared
    (folder / "rows.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_two_phrase_runs_are_compared_phrase_by_phrase(tmp_path):
    closer = _rows(tmp_path / "closer", [1.0, 1.2, 0.9, 1.1, 1.0, 1.3])
    farther = _rows(tmp_path / "farther", [1.5, 1.6, 1.4, 1.7, 1.5, 1.8])
    table = compare_runs(closer, farther)
    assert "the same 6 phrases" in table and table.count("| +0.500 [+0.") == 4  # every measure, closer by 0.5
    assert "100% of 6" in table
    assert compare_runs(farther, closer).count("| -0.500 [-0.") == 4
