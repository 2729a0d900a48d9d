"""Synthetic event streams with an independently computed ground truth.

``generate`` makes a deterministic, realistic stream of the five source topics (with
duplicates, late and invalid events); ``ground_truth`` counts it the slow, obvious way
from README.md's KPI definitions, sharing no code with the engine it checks.
"""

from streamkpi.generator.stream import CURRENCY_RATES, GenConfig, Record, generate, partition_for
from streamkpi.generator.truth import Truth, TruthParams, ground_truth

__all__ = [
    "CURRENCY_RATES",
    "GenConfig",
    "Record",
    "Truth",
    "TruthParams",
    "generate",
    "ground_truth",
    "partition_for",
]
