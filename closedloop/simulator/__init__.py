"""Production simulator: synthetic prediction logs, late labels and injected incidents.

Pure Python (numpy + pyarrow). ``simulate`` writes, under ``out``::

    <model>/predictions/date=YYYY-MM-DD/part-NN.parquet
    <model>/labels/date=YYYY-MM-DD/part-00.parquet   (date = label arrival date)
    fraud/shadow/date=YYYY-MM-DD/part-00.parquet     (v12 in shadow, the week before its canary)
    incidents_truth.json

for the models ``fraud`` and ``ticket_triage`` of ``config/models.yaml``; ``simulate_wide`` does
the same for the 50-feature ``wide`` model of ``config/wide.yaml``, kept out of the demo to measure
false alerts across many inputs (``python -m bench.false_alerts``). Output is a pure function of
the arguments: same arguments, byte-identical files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from closedloop.simulator import fraud, ticket_triage, wide
from closedloop.simulator.incidents import (
    CLEAN_SCENARIOS,
    INCIDENTS,
    WIDE_CLEAN_SCENARIOS,
    WIDE_INCIDENTS,
    CleanScenario,
    Incident,
    IncidentSchedule,
    scheduled,
    write_truth,
)
from closedloop.simulator.landing import ModelGenerator

__all__ = ["DEFAULT_START", "SimulationResult", "simulate", "simulate_wide"]

DEFAULT_START = dt.date(2026, 9, 1)


@dataclass(frozen=True)
class SimulationResult:
    out: Path
    start: dt.date
    days: int
    seed: int
    rows: Mapping[str, Mapping[str, int]] = field(hash=False)
    """Rows written per model and table: ``rows["fraud"]["predictions"]``, ``...["labels"]``, ``...["shadow"]``."""
    truth_path: Path

    @property
    def end(self) -> dt.date:
        """Last simulated date (inclusive)."""
        return self.start + dt.timedelta(days=self.days - 1)


def simulate(
    out: Path,
    days: int = 60,
    seed: int = 7,
    start: dt.date = DEFAULT_START,
    fraud_rows_per_day: int = 20_000,
    triage_rows_per_day: int = 3_000,
    on_day: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Simulate ``days`` days of both models into ``out`` (replacing their previous output).

    ``on_day(day_index)`` is called after each simulated day. Labels arriving after the last
    simulated day are not written; incidents that do not fit in ``days`` are not injected.
    """
    if fraud_rows_per_day < 1 or triage_rows_per_day < 1:
        raise ValueError("rows per day must be >= 1")
    models = ((fraud.FraudGenerator, fraud_rows_per_day), (ticket_triage.TicketTriageGenerator, triage_rows_per_day))
    return _simulate(out, days, seed, start, models, INCIDENTS, CLEAN_SCENARIOS, on_day)


def simulate_wide(
    out: Path,
    days: int = 60,
    seed: int = 7,
    start: dt.date = DEFAULT_START,
    rows_per_day: int = 2_000,
    on_day: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Simulate ``days`` days of the ``wide`` model into ``out``, as ``simulate`` does the demo's models."""
    if rows_per_day < 1:
        raise ValueError("rows per day must be >= 1")
    return _simulate(
        out, days, seed, start, ((wide.WideGenerator, rows_per_day),), WIDE_INCIDENTS, WIDE_CLEAN_SCENARIOS, on_day
    )


def _simulate(
    out: Path,
    days: int,
    seed: int,
    start: dt.date,
    models: tuple[tuple[type[ModelGenerator], int], ...],
    all_incidents: tuple[Incident, ...],
    clean: tuple[CleanScenario, ...],
    on_day: Callable[[int], None] | None,
) -> SimulationResult:
    if days < 1:
        raise ValueError("days must be >= 1")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    incidents = scheduled(days, all_incidents)
    generators = [
        cls(out, seed, start, days, rows_per_day, IncidentSchedule(incidents, cls.model, clean))
        for cls, rows_per_day in models
    ]
    for day in range(days):
        for generator in generators:
            generator.simulate_day(day)
        if on_day is not None:
            on_day(day)
    for generator in generators:
        generator.close()
    truth = write_truth(out, seed, start, days, all_incidents, clean)
    return SimulationResult(
        out=out,
        start=start,
        days=days,
        seed=seed,
        rows={g.model: g.rows for g in generators},
        truth_path=truth,
    )
