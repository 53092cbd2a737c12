"""How well the incidents closedloop opened match the incidents that were really there.

The simulator's ``incidents_truth.json`` says which incidents it injected and when. An injected
incident is *caught* when an incident of the same model opens between its first day and its
last day plus its allowance; the allowance is 0 days for signals that can be seen as they
happen (inputs, scores, decisions, latency, cost) and the model's ``labels.maturity_days`` for
signals that need labels (``outcomes.*``, ``rolling_eval.*``): nobody can judge a prediction
before its label has arrived. It is caught *on time* when it opens no later than its first
day plus the allowance. A gradual incident (concept drift) grows from nothing and has no day
on which it must be seen: its delay is reported, not judged. Every incident opened outside
all of its model's injected windows (with their allowances) is a *false alert* on a clean day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from closedloop.core.periods import period_start

LABEL_BASED_SIGNALS = ("outcomes.", "rolling_eval.")


@dataclass(frozen=True)
class Detection:
    """One injected incident and the first incident closedloop opened for it (if any)."""

    truth_id: str
    model: str
    start: str
    end: str
    signal: str
    gradual: bool
    allowance_days: int
    caught_by: str | None  # incident id
    slo: str | None
    opened: str | None  # period
    delay_days: int | None
    on_time: bool | None  # None for gradual incidents


@dataclass(frozen=True)
class Scorecard:
    detections: tuple[Detection, ...]
    matches: dict[str, str | None]  # incident id -> the injected incident it belongs to (None: a false alert)

    @property
    def caught(self) -> int:
        return sum(d.caught_by is not None for d in self.detections)

    @property
    def recall(self) -> float | None:
        return self.caught / len(self.detections) if self.detections else None

    @property
    def false_alerts(self) -> list[str]:
        return sorted(incident for incident, truth in self.matches.items() if truth is None)

    def as_dict(self) -> dict:
        judged = [d for d in self.detections if d.on_time is not None]
        return {
            "injected": len(self.detections),
            "caught": self.caught,
            "recall": self.recall,
            "on_time": sum(bool(d.on_time) for d in judged),
            "judged_on_time": len(judged),
            "false_alerts": self.false_alerts,
            "detections": [asdict(d) for d in self.detections],
            "matches": self.matches,
        }


def _day(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def score(truth: Mapping, incidents: Mapping[str, list[Mapping]], maturity_days: Mapping[str, int]) -> Scorecard:
    """Match the opened ``incidents`` (per model, as ``read_incidents`` returns them) to the injected ones."""
    windows = []
    for entry in truth["incidents"]:
        label_based = entry["signal"].startswith(LABEL_BASED_SIGNALS)
        allowance = maturity_days[entry["model"]] if label_based else 0
        windows.append((entry, allowance, _day(entry["start"]), _day(entry["end"]) + dt.timedelta(days=allowance)))
    matches: dict[str, str | None] = {}
    for model, opened in incidents.items():
        for incident in opened:
            day = period_start(incident["opened"]).date()
            inside = [
                entry["id"] for entry, _, first, last in windows if entry["model"] == model and first <= day <= last
            ]
            matches[incident["incident_id"]] = inside[0] if inside else None
    detections = []
    for entry, allowance, first, last in windows:
        mine = sorted(
            (i for i in incidents.get(entry["model"], []) if first <= period_start(i["opened"]).date() <= last),
            key=lambda i: period_start(i["opened"]),
        )
        found = mine[0] if mine else None
        delay = None if found is None else (period_start(found["opened"]).date() - first).days
        detections.append(
            Detection(
                truth_id=entry["id"],
                model=entry["model"],
                start=entry["start"],
                end=entry["end"],
                signal=entry["signal"],
                gradual=bool(entry.get("gradual")),
                allowance_days=allowance,
                caught_by=None if found is None else found["incident_id"],
                slo=None if found is None else found["slo"],
                opened=None if found is None else found["opened"],
                delay_days=delay,
                on_time=None if entry.get("gradual") else (delay is not None and delay <= allowance),
            )
        )
    return Scorecard(tuple(detections), matches)
