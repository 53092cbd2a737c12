"""A metric closedloop computes and can judge: its unit, which way is bad, whether it waits for labels.

Each stage declares its metrics beside the code that computes them (``evaluation.metrics``,
``drift.measures``, ``evaluation.outcomes``, ``ops.metrics``); ``control.metric_catalog`` gathers
them into the sources an SLO may watch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["higher", "lower", "neither"]


@dataclass(frozen=True)
class Metric:
    """One metric; ``better`` says which way a model owner wants it to move.

    ``neither`` is for a count, or a rate to keep in a band.
    """

    name: str
    unit: str
    better: Better
    needs_labels: bool = False
    description: str = ""
