"""Baseline placement policies, labelled as such in every table (see ``base``).

They read the same snapshot types as the engine and exist only to be compared against.
"""

from __future__ import annotations

from bench.baselines.base import BaselineRun, NaivePlacer, ServerChoice, place_all
from bench.baselines.best_fit import BestFit
from bench.baselines.dot_product import DotProduct
from bench.baselines.first_fit import FirstFit
from bench.baselines.random_fit import RandomFit


def all_baselines(seed: int = 0) -> list[ServerChoice]:
    """first-fit, best-fit, random-fit, dot-product (in that order)."""
    return [FirstFit(), BestFit(), RandomFit(seed), DotProduct()]


__all__ = ["BaselineRun", "NaivePlacer", "ServerChoice", "all_baselines", "place_all"]
