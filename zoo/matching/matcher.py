"""Audio -> the closest preset: proposals from the network, the init preset and the neighbour index, then the
search (``zoo.matching.search``) on a render pool. The one entry point of ``zoo predict``, the server and
``zoo evaluate``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoo.matching import DEFAULT_SEARCH_SECONDS
from zoo.matching.candidates import propose
from zoo.matching.neighbours import NeighbourIndex
from zoo.matching.pool import RenderPool
from zoo.matching.search import ProgressCallback, SearchConfig, SearchResult, run_search
from zoo.matching.target import Target

N_NEIGHBOURS = 2


def match(
    target: Target,
    pool: RenderPool,
    *,
    continuous: np.ndarray | None = None,
    logits: Sequence[np.ndarray] | None = None,
    neighbours: NeighbourIndex | None = None,
    seconds: float | None = DEFAULT_SEARCH_SECONDS,
    max_renders: int | None = None,
    seed: int = 0,
    base: dict[str, Any] | None = None,
    on_progress: ProgressCallback | None = None,
    name: str = "Zoo match",
    config: SearchConfig | None = None,
    analysis: Any | None = None,
) -> SearchResult:
    """Search the preset closest to ``target`` within ``seconds`` (and/or ``max_renders``).

    Starts from the network's prediction (``continuous`` (n_continuous,) in [0, 1] and one logits array
    per categorical head) and its variants when given, the init preset, and the ``neighbours`` index's
    nearest presets to the first note; without a prediction, from the init preset (and neighbours). With
    ``analysis`` (``zoo.vital.resynthesis.NoteAnalysis`` of the main note), the wavetable starts too
    (``zoo.matching.candidates.wavetable_candidates``); the search goes on from the best start on its base.
    ``config`` overrides the search's other settings (its budget and seed are taken from the arguments)."""
    near = neighbours.nearest(target.notes[0].clip, N_NEIGHBOURS, base) if neighbours is not None else []
    proposals = propose(pool.spec, continuous, logits, near, base=base, analysis=analysis)
    base_config = config or SearchConfig()
    config = SearchConfig(**{**base_config.__dict__, "seconds": seconds, "max_renders": max_renders, "seed": seed})
    return run_search(pool.objective(target), proposals, config, pool.spec, on_progress, name)


SEARCH_METHODS = ("model+search", "init+search")


def search_methods(
    target: Target,
    pool: RenderPool,
    continuous: np.ndarray,
    logits: Sequence[np.ndarray],
    seconds: float,
    seed: int = 0,
    neighbours: NeighbourIndex | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The search rows of ``zoo evaluate`` for one clip, as (continuous, categorical) vectors:
    ``model+search`` starts from the network's proposals (and the init preset and neighbours), ``init+search``
    from the init preset alone with the same budget: what the network is worth as a start."""
    model = match(target, pool, continuous=continuous, logits=logits, neighbours=neighbours, seconds=seconds, seed=seed)
    init = match(target, pool, seconds=seconds, seed=seed)
    results = zip(SEARCH_METHODS, (model, init), strict=True)
    return {name: (r.best.continuous, r.best.categorical) for name, r in results}
