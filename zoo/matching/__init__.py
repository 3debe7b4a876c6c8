"""Matching a recording with Vital renders in the loop: what to match (``target``), how far a candidate
sounds (``objective``), where to start (``candidates``, ``neighbours``), who renders (``pool``) and the
search itself (``search``); ``match`` (``matcher``) puts them together, and ``recording`` builds a
recording's target and wavetable analysis.

Names are imported lazily: ``zoo.matching.target`` alone stays light (no torch, no cma).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# `zoo predict`'s default budget: where the quality-against-seconds curve of benchmarks/results/search flattens.
DEFAULT_SEARCH_SECONDS = 5.0

_LAZY = {
    "Candidate": "zoo.matching.candidates",
    "ExtraControls": "zoo.matching.candidates",
    "document_for": "zoo.matching.candidates",
    "init_candidate": "zoo.matching.candidates",
    "model_candidates": "zoo.matching.candidates",
    "propose": "zoo.matching.candidates",
    "wavetable_candidates": "zoo.matching.candidates",
    "match": "zoo.matching.matcher",
    "NeighbourIndex": "zoo.matching.neighbours",
    "FAILED_DISTANCE": "zoo.matching.objective",
    "Objective": "zoo.matching.objective",
    "Score": "zoo.matching.objective",
    "score_candidate": "zoo.matching.objective",
    "RenderPool": "zoo.matching.pool",
    "RenderPoolError": "zoo.matching.pool",
    "SearchInputs": "zoo.matching.recording",
    "search_inputs": "zoo.matching.recording",
    "Progress": "zoo.matching.search",
    "SearchConfig": "zoo.matching.search",
    "SearchResult": "zoo.matching.search",
    "run_search": "zoo.matching.search",
    "Target": "zoo.matching.target",
    "TargetNote": "zoo.matching.target",
}

__all__ = ["DEFAULT_SEARCH_SECONDS", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo.matching' has no attribute {name!r}")
