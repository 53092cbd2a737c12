"""How well the incidents closedloop opened match the incidents that were really there.

The simulator's ``incidents_truth.json`` says which incidents it injected and when, and what it
changed on purpose without a fault (``clean``: a canary with its own threshold, the weekly
rhythm). An injected incident is *caught* when an incident of the same model opens between its
first day and its last day plus its allowance, about the same column and version where both
name one (an incident on ``ip_reputation`` does not catch a fault injected into
``avg_amount_30d``, so a second fault that starts while the first is open must open its own).
An injected incident lists every column it touches, its own first (a new payment type empties
a feature and is itself a new value of ``payment_type``); of the incidents of its first day,
the one about its own column is the one that caught it.
The allowance, the signal's expected delay, is 0 days for signals that can be seen as they
happen (inputs, scores, decisions, latency, cost) and the model's ``labels.maturity_days`` for
signals that need labels (``outcomes.*``, ``rolling_eval.*``): nobody can judge a prediction
before its label has arrived. It is caught *on time* when it opens no later than its first day
plus the allowance. A gradual incident (concept drift) grows from nothing and has no day on
which it must be seen: its delay is reported, not judged.

Every other incident is a *false alert*: the base model's, or a clean canary's when it is about
the canary's version while the canary serves (nothing is injected into a clean canary, so only
an injected incident that names its version explains an incident about it). The clean days of a
model are its simulated days outside every injected window and allowance: the rate of false
alerts is counted against them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from closedloop.core.periods import period_start

LABEL_BASED_SIGNALS = ("outcomes.", "rolling_eval.")
BASE = "base"


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
    subject: str | None  # the caught incident's subject (column, version), None when pooled
    opened: str | None  # period
    delay_days: int | None
    on_time: bool | None  # None for gradual incidents


@dataclass(frozen=True)
class Scorecard:
    detections: tuple[Detection, ...]
    matches: dict[str, str | None]  # incident id -> the injected incident it belongs to (None: a false alert)
    false_alert_scopes: dict[str, str]  # false alert -> BASE, or the clean canary it is about
    clean_days: dict[str, int]  # model -> simulated days outside every injected window and allowance
    canaries: dict[str, int]  # clean canary -> days it served

    @property
    def caught(self) -> int:
        return sum(d.caught_by is not None for d in self.detections)

    @property
    def recall(self) -> float | None:
        return self.caught / len(self.detections) if self.detections else None

    @property
    def false_alerts(self) -> list[str]:
        return sorted(incident for incident, truth in self.matches.items() if truth is None)

    def false_alerts_of(self, scope: str) -> list[str]:
        """The false alerts of the base models (``BASE``) or of one clean canary."""
        return [incident for incident in self.false_alerts if self.false_alert_scopes[incident] == scope]

    def as_dict(self) -> dict:
        judged = [d for d in self.detections if d.on_time is not None]
        return {
            "injected": len(self.detections),
            "caught": self.caught,
            "recall": self.recall,
            "on_time": sum(bool(d.on_time) for d in judged),
            "judged_on_time": len(judged),
            "false_alerts": self.false_alerts,
            "false_alerts_base": self.false_alerts_of(BASE),
            "false_alerts_canary": {canary: self.false_alerts_of(canary) for canary in self.canaries},
            "clean_days": self.clean_days,
            "canary_days": self.canaries,
            "detections": [asdict(d) for d in self.detections],
            "matches": self.matches,
        }


def _day(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def about(incident: Mapping) -> tuple[str | None, str | None]:
    """The column and the version an incident is about (None for what it is not about)."""
    version = incident.get("version")
    version = None if version in (None, "all") else version
    subject = incident.get("subject")
    column = None if subject is None or subject == version else subject.rsplit("/", 1)[-1]
    return column, version


def _agrees(entry: Mapping, incident: Mapping) -> bool:
    """Whether an incident may be about an injected one: the same column and version where both name one."""
    column, version = about(incident)
    columns = entry.get("columns") or ([entry["column"]] if entry.get("column") else [])
    version_agrees = version is None or entry.get("version") is None or version == entry["version"]
    return version_agrees and (column is None or not columns or column in columns)


def _canary_of(incident: Mapping, canaries: list[Mapping], day: dt.date) -> str | None:
    _, version = about(incident)
    return next(
        (c["id"] for c in canaries if version == c["version"] and _day(c["start"]) <= day <= _day(c["end"])), None
    )


def score(truth: Mapping, incidents: Mapping[str, list[Mapping]], maturity_days: Mapping[str, int]) -> Scorecard:
    """Match the opened ``incidents`` (per model, as ``read_incidents`` returns them) to the injected ones."""
    windows = []
    for entry in truth["incidents"]:
        label_based = entry["signal"].startswith(LABEL_BASED_SIGNALS)
        allowance = maturity_days[entry["model"]] if label_based else 0
        windows.append((entry, allowance, _day(entry["start"]), _day(entry["end"]) + dt.timedelta(days=allowance)))
    canaries = [c for c in truth.get("clean", []) if c.get("version")]

    def explains(entry: Mapping, first: dt.date, last: dt.date, incident: Mapping) -> bool:
        day = period_start(incident["opened"]).date()
        if not first <= day <= last or not _agrees(entry, incident):
            return False
        return _canary_of(incident, canaries, day) is None or entry.get("version") is not None

    matches: dict[str, str | None] = {}
    scopes: dict[str, str] = {}
    for model, opened in incidents.items():
        for incident in opened:
            inside = [
                e["id"] for e, _, first, last in windows if e["model"] == model and explains(e, first, last, incident)
            ]
            matches[incident["incident_id"]] = inside[0] if inside else None
            if not inside:
                day = period_start(incident["opened"]).date()
                scopes[incident["incident_id"]] = _canary_of(incident, canaries, day) or BASE
    detections = []
    for entry, allowance, first, last in windows:
        mine = sorted(
            (i for i in incidents.get(entry["model"], []) if explains(entry, first, last, i)),
            key=lambda i: (period_start(i["opened"]), about(i)[0] != entry.get("column")),
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
                subject=None if found is None else found.get("subject"),
                opened=None if found is None else found["opened"],
                delay_days=delay,
                on_time=None if entry.get("gradual") else (delay is not None and delay <= allowance),
            )
        )
    return Scorecard(
        tuple(detections),
        matches,
        scopes,
        _clean_days(truth, windows, incidents),
        {c["id"]: (_day(c["end"]) - _day(c["start"])).days + 1 for c in canaries},
    )


def _clean_days(truth: Mapping, windows: list, incidents: Mapping[str, list[Mapping]]) -> dict[str, int]:
    """Per model, the simulated days outside every injected window and its allowance."""
    if "days" not in truth:
        return {}
    start = _day(truth["start"])
    days = [start + dt.timedelta(days=i) for i in range(truth["days"])]
    models = sorted({entry["model"] for entry, *_ in windows} | set(incidents))
    return {
        model: sum(
            not any(e["model"] == model and first <= day <= last for e, _, first, last in windows) for day in days
        )
        for model in models
    }
