"""The scorecard: which injected incidents were caught, on time or late, and which alerts were false."""

from closedloop.control.scorecard import score

TRUTH = {
    "incidents": [
        {
            "id": "spike",
            "model": "triage",
            "start": "2026-09-16",
            "end": "2026-09-16",
            "signal": "ops.latency_p95_ms",
            "gradual": False,
        },
        {
            "id": "outage",
            "model": "triage",
            "start": "2026-09-27",
            "end": "2026-10-01",
            "signal": "outcomes.label_coverage",
            "gradual": False,
        },
        {
            "id": "drift",
            "model": "triage",
            "start": "2026-10-06",
            "end": "2026-10-30",
            "signal": "rolling_eval.roc_auc",
            "gradual": True,
        },
        {
            "id": "shift",
            "model": "fraud",
            "start": "2026-10-06",
            "end": "2026-10-30",
            "signal": "eval.decision_rate",
            "gradual": False,
        },
        {
            "id": "missed",
            "model": "fraud",
            "start": "2026-09-13",
            "end": "2026-09-16",
            "signal": "drift.missing_rate",
            "gradual": False,
        },
    ]
}


def incident(model, slo, opened):
    return {"incident_id": f"{model}/{slo}/{opened}", "model": model, "slo": slo, "opened": opened}


def test_caught_on_time_late_gradual_missed_and_false():
    incidents = {
        "triage": [
            incident("triage", "p95", "2026-09-16T10:00:00+00:00"),
            incident("triage", "coverage", "2026-09-30"),  # 3 days in: within the label delay
            incident("triage", "auc", "2026-10-23"),
            incident("triage", "auc", "2026-11-03"),  # after the drift and its allowance: false
            incident("triage", "coverage", "2026-09-20"),  # a clean day: false
        ],
        "fraud": [incident("fraud", "review", "2026-10-07")],  # a day late for a signal seen as it happens
    }
    card = score(TRUTH, incidents, {"triage": 3, "fraud": 45})
    by_id = {d.truth_id: d for d in card.detections}
    assert (by_id["spike"].delay_days, by_id["spike"].on_time, by_id["spike"].allowance_days) == (0, True, 0)
    assert (by_id["outage"].delay_days, by_id["outage"].on_time, by_id["outage"].allowance_days) == (3, True, 3)
    assert (by_id["drift"].delay_days, by_id["drift"].on_time) == (17, None)
    assert (by_id["shift"].delay_days, by_id["shift"].on_time) == (1, False)
    assert by_id["missed"].caught_by is None and by_id["missed"].on_time is False
    assert card.recall == 4 / 5
    assert card.false_alerts == ["triage/auc/2026-11-03", "triage/coverage/2026-09-20"]
    summary = card.as_dict()
    assert (summary["caught"], summary["on_time"], summary["judged_on_time"]) == (4, 2, 4)
