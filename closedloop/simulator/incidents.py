"""The injected incidents: schedule (as data), lookup for the generators, and the truth file.

Day indices are 0-based from the simulation start; windows are inclusive. An incident is part of
a run only if its whole window fits in the simulated days; incidents that do not fit are neither
injected nor listed in the truth file. Magnitudes live in ``params`` so the generators contain no
incident-specific numbers.

Truth file (``<out>/incidents_truth.json``)::

    {"seed": 7, "start": "2026-09-01", "days": 60,
     "incidents": [{"id", "model", "kind", "start", "end", "start_day", "end_day",
                    "signal", "signals", "column", "columns", "version", "hours", "gradual", "description"}, ...],
     "clean": [{"id", "model", "kind", "start", "end", "start_day", "end_day", "version", "description"}, ...]}

``start``/``end`` are ISO dates (inclusive). ``signal`` is the primary signal that should catch
the incident; ``signals`` lists every signal expected to fire, primary first. ``column`` and
``version`` are null unless the incident is about one column / one model version; ``columns``
lists every column the incident touches, ``column`` first (a new payment type empties a feature
and is itself a new value of ``payment_type``). ``hours`` is
null except for intra-day incidents: ``[start_hour, end_hour]`` in UTC, end exclusive.
``gradual`` is true for an incident that grows from nothing over its window (concept drift):
it has no first day on which it can be seen, only a day from which it is large enough to.

``clean`` lists what the simulator changes on purpose without a fault, from its first day to the
last simulated day: a canary with its own threshold (``version``), the weekly rhythm. Nothing
should alert on them; an incident about a clean canary's version is a false alert of the canary.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

TRUTH_FILE = "incidents_truth.json"


@dataclass(frozen=True)
class Incident:
    id: str
    model: str
    kind: str
    start_day: int
    end_day: int
    signals: tuple[str, ...]
    description: str
    columns: tuple[str, ...] = ()
    version: str | None = None
    hours: tuple[int, int] | None = None
    gradual: bool = False
    params: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def signal(self) -> str:
        return self.signals[0]

    @property
    def column(self) -> str | None:
        return self.columns[0] if self.columns else None

    def active(self, day: int) -> bool:
        return self.start_day <= day <= self.end_day

    def progress(self, day: int) -> float:
        """0 at the first day of the window, 1 at the last (clipped outside it)."""
        span = max(1, self.end_day - self.start_day)
        return min(1.0, max(0.0, (day - self.start_day) / span))

    def fits(self, days: int) -> bool:
        return self.start_day >= 0 and self.end_day < days

    def to_json(self, start: dt.date) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "kind": self.kind,
            "start": (start + dt.timedelta(days=self.start_day)).isoformat(),
            "end": (start + dt.timedelta(days=self.end_day)).isoformat(),
            "start_day": self.start_day,
            "end_day": self.end_day,
            "signal": self.signal,
            "signals": list(self.signals),
            "column": self.column,
            "columns": list(self.columns),
            "version": self.version,
            "hours": list(self.hours) if self.hours else None,
            "gradual": self.gradual,
            "description": self.description,
        }


@dataclass(frozen=True)
class CleanScenario:
    """A change the simulator makes on purpose that is no fault, from ``start_day`` to the end of the run."""

    id: str
    model: str
    kind: str
    start_day: int
    description: str
    version: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def active(self, day: int) -> bool:
        return day >= self.start_day

    def to_json(self, start: dt.date, days: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "kind": self.kind,
            "start": (start + dt.timedelta(days=self.start_day)).isoformat(),
            "end": (start + dt.timedelta(days=days - 1)).isoformat(),
            "start_day": self.start_day,
            "end_day": days - 1,
            "version": self.version,
            "description": self.description,
        }


INCIDENTS: tuple[Incident, ...] = (
    Incident(
        id="fraud_new_payment_type",
        model="fraud",
        kind="new_category_missing_feature",
        start_day=12,
        end_day=15,
        signals=("drift.missing_rate",),
        columns=("avg_amount_30d", "payment_type"),
        description=(
            'A new payment_type "bnpl" appears on ~15% of traffic; the feature pipeline does not '
            "support it, so avg_amount_30d is null for those rows (missing rate ~0.5% -> ~15%)."
        ),
        params={"value": "bnpl", "share": 0.15},
    ),
    Incident(
        id="fraud_ip_reputation_nulls",
        model="fraud",
        kind="missing_feature",
        start_day=15,
        end_day=18,
        signals=("drift.missing_rate",),
        columns=("ip_reputation",),
        description=(
            "On the new payment type's last day, while its incident is still open, the IP-reputation "
            "lookup starts timing out: ip_reputation arrives null on ~20% of payments for four days "
            "(missing rate 0 -> ~20%); the scoring service scored them with its cached value."
        ),
        params={"share": 0.20},
    ),
    Incident(
        id="fraud_merchant_id_explosion",
        model="fraud",
        kind="cardinality_explosion",
        start_day=20,
        end_day=22,
        signals=("drift.new_category_share",),
        columns=("merchant_id",),
        description=(
            "An upstream change sends raw terminal ids instead of merchant ids for ~40% of rows: "
            "a flood of never-seen merchant_id values."
        ),
        params={"share": 0.40},
    ),
    Incident(
        id="fraud_v12_calibration_shift",
        model="fraud",
        kind="calibration_shift",
        start_day=35,
        end_day=59,
        signals=("eval.decision_rate",),
        version="v12",
        description=(
            "v12 scores are miscalibrated downward (logit shifted by -2.5) while ranking as well "
            "as v11; with the 0.5 threshold its decision rate collapses. v12 serves 10% of "
            "traffic from day 35 and 100% from day 41, so the overall decision rate collapses too."
        ),
        params={"logit_shift": -2.5},
    ),
    Incident(
        id="triage_traffic_spike",
        model="ticket_triage",
        kind="traffic_spike",
        start_day=15,
        end_day=15,
        signals=("ops.latency_p95_ms", "ops.cost_per_1k"),
        hours=(10, 16),
        description=(
            "4x traffic between 10:00 and 16:00 UTC: p95 latency ~5x (queueing), cost per 1k "
            "tickets ~3x (retries and longer prompts), more timeouts and fallbacks."
        ),
        params={
            "traffic_factor": 4.0,
            "queue_latency_factor": 5.0,
            "mean_retries": 1.3,
            "prompt_factor": 1.6,
            "fallback_rate": 0.08,
            "rate_limited_rate": 0.03,
        },
    ),
    Incident(
        id="triage_label_outage",
        model="ticket_triage",
        kind="label_outage",
        start_day=26,
        end_day=30,
        signals=("outcomes.label_coverage",),
        description=(
            "The review export breaks: no labels arrive on these dates; the backlog arrives the "
            "day after the outage ends."
        ),
        params={"backlog_delay_days": 1},
    ),
    Incident(
        id="triage_concept_drift",
        model="ticket_triage",
        kind="concept_drift",
        start_day=35,
        end_day=59,
        signals=("rolling_eval.roc_auc",),
        gradual=True,
        description=(
            "Gradual concept drift: what makes a ticket urgent moves steadily away from what the "
            "model learned; ROC AUC ramps down from ~0.9 to ~0.75 by the end of the window."
        ),
        params={"max_angle": 0.9},
    ),
)


# The wide model's (``closedloop.simulator.wide``): simulated apart from the demo's two models.
WIDE_INCIDENTS: tuple[Incident, ...] = (
    Incident(
        id="wide_feature_nulls",
        model="wide",
        kind="missing_feature",
        start_day=10,
        end_day=12,
        signals=("drift.missing_rate",),
        columns=("x17",),
        description="An upstream join breaks for ~15% of requests: x17 arrives null (missing rate 0 -> ~15%).",
        params={"share": 0.15},
    ),
)

CLEAN_SCENARIOS: tuple[CleanScenario, ...] = (
    CleanScenario(
        id="triage_v4_canary",
        model="ticket_triage",
        kind="clean_canary",
        start_day=21,
        version="v4",
        description=(
            "v4, the same model deciding at 0.5 instead of v3's 0.6 (the on-call queue asked for more "
            "tickets), serves a random 20% of tickets to the end of the run: its urgent rate is "
            "legitimately higher than v3's, and nothing else about it changes."
        ),
        params={"share": 0.20, "threshold": 0.5},
    ),
    CleanScenario(
        id="triage_weekly_seasonality",
        model="ticket_triage",
        kind="weekly_seasonality",
        start_day=0,
        description=(
            "Weekends bring half the tickets, more of them about outages and from enterprise customers, fewer "
            "about billing and accounts: the mix of scores, and the urgent rate, differ on Saturdays and Sundays."
        ),
        params={
            "weekend_days": (5, 6),
            "product_shares": (0.18, 0.15, 0.11, 0.12, 0.10, 0.12, 0.08, 0.14),
            "plan_shares": (0.56, 0.30, 0.14),
        },
    ),
)

WIDE_CLEAN_SCENARIOS: tuple[CleanScenario, ...] = (
    CleanScenario(
        id="wide_weekly_seasonality",
        model="wide",
        kind="weekly_seasonality",
        start_day=0,
        description=(
            "Weekends bring about 40% fewer requests, more of them on the app and from the basic tier, whose "
            "scores run higher: the weekend's segment mix and decision rate differ from the week's."
        ),
        params={"weekend_days": (5, 6), "channel_shares": (0.36, 0.52, 0.12), "tier_shares": (0.62, 0.29, 0.09)},
    ),
)


def scheduled(days: int, incidents: Iterable[Incident] = INCIDENTS) -> tuple[Incident, ...]:
    """Incidents whose whole window fits in ``days`` simulated days."""
    return tuple(i for i in incidents if i.fits(days))


class IncidentSchedule:
    """The incidents and clean scenarios of one run for one model, as the generators query them."""

    def __init__(
        self, incidents: Iterable[Incident], model: str, clean: Iterable[CleanScenario] = CLEAN_SCENARIOS
    ) -> None:
        self._by_id = {i.id: i for i in incidents if i.model == model}
        self._clean = {c.id: c for c in clean if c.model == model}

    def active(self, incident_id: str, day: int) -> Incident | None:
        """The incident if it is part of the run and active on ``day``, else None."""
        incident = self._by_id.get(incident_id)
        return incident if incident is not None and incident.active(day) else None

    def get(self, incident_id: str) -> Incident | None:
        return self._by_id.get(incident_id)

    def clean(self, scenario_id: str, day: int) -> CleanScenario | None:
        """The clean scenario if it is under way on ``day``, else None."""
        scenario = self._clean.get(scenario_id)
        return scenario if scenario is not None and scenario.active(day) else None


def truth_document(
    seed: int,
    start: dt.date,
    days: int,
    incidents: Iterable[Incident] = INCIDENTS,
    clean: Iterable[CleanScenario] = CLEAN_SCENARIOS,
) -> dict[str, Any]:
    return {
        "seed": seed,
        "start": start.isoformat(),
        "days": days,
        "incidents": [i.to_json(start) for i in scheduled(days, incidents)],
        "clean": [c.to_json(start, days) for c in clean if c.start_day < days],
    }


def write_truth(
    out: Path,
    seed: int,
    start: dt.date,
    days: int,
    incidents: Iterable[Incident] = INCIDENTS,
    clean: Iterable[CleanScenario] = CLEAN_SCENARIOS,
) -> Path:
    path = Path(out) / TRUTH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    document = truth_document(seed, start, days, incidents, clean)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
