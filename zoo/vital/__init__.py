"""The Vital domain: the Tier-1 parameter spec, presets <-> vectors, and rendering with the Vital engine.

``zoo.vital.spec`` and ``zoo.vital.tier1`` are pure data; rendering (``zoo.vital.render``) needs vita.
"""

from zoo.vital.spec import CategoricalParam, ContinuousParam, VitalParamSpec
from zoo.vital.tier1 import tier1_spec

__all__ = ["CategoricalParam", "ContinuousParam", "VitalParamSpec", "tier1_spec"]
