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


OVERLAPPING = {
    "start": "2026-09-01",
    "days": 30,
    "incidents": [
        {
            "id": "amount_nulls",
            "model": "fraud",
            "start": "2026-09-13",
            "end": "2026-09-16",
            "signal": "drift.missing_rate",
            "column": "amount",
            "columns": ["amount", "payment_type"],
            "gradual": False,
        },
        {
            "id": "ip_nulls",
            "model": "fraud",
            "start": "2026-09-16",
            "end": "2026-09-19",
            "signal": "drift.missing_rate",
            "column": "ip_reputation",
            "gradual": False,
        },
    ],
    "clean": [{"id": "canary", "model": "fraud", "version": "v12", "start": "2026-09-10", "end": "2026-09-30"}],
}


def about(model, slo, opened, subject=None, version="all"):
    return {**incident(model, f"{slo}[{subject}]", opened), "slo": slo, "subject": subject, "version": version}


def test_a_second_fault_inside_the_first_is_caught_only_by_an_incident_of_its_own_column():
    first = about("fraud", "inputs", "2026-09-13", "amount")
    amount_again = about("fraud", "inputs", "2026-09-16", "v11/amount", version="v11")
    card = score(OVERLAPPING, {"fraud": [first, amount_again]}, {"fraud": 45})
    by_id = {d.truth_id: d for d in card.detections}
    assert by_id["amount_nulls"].caught_by == first["incident_id"] and by_id["amount_nulls"].subject == "amount"
    assert by_id["ip_nulls"].caught_by is None  # the first column's incident does not stand in for the second
    ip = about("fraud", "inputs", "2026-09-17", "ip_reputation")
    payment_type = about("fraud", "inputs", "2026-09-13", "payment_type")  # another column the first fault touches
    card = score(OVERLAPPING, {"fraud": [payment_type, first, ip]}, {"fraud": 45})
    by_id = {d.truth_id: d for d in card.detections}
    assert (by_id["ip_nulls"].caught_by, by_id["ip_nulls"].delay_days, by_id["ip_nulls"].on_time) == (
        ip["incident_id"],
        1,
        False,
    )
    assert by_id["amount_nulls"].caught_by == first["incident_id"]  # its own column's incident, of the two that day
    assert card.matches == {
        payment_type["incident_id"]: "amount_nulls",
        first["incident_id"]: "amount_nulls",
        ip["incident_id"]: "ip_nulls",
    }


def test_false_alerts_are_split_into_the_base_model_and_the_clean_canary_and_counted_on_clean_days():
    canary = about("fraud", "rate", "2026-09-14", "v12", version="v12")  # inside a fault's window, about v12
    pooled = about("fraud", "psi", "2026-09-14")  # inside the window, explained by the fault
    clean_day = about("fraud", "rate", "2026-09-25", "v11", version="v11")
    before_canary = about("fraud", "rate", "2026-09-05", "v12", version="v12")
    card = score(OVERLAPPING, {"fraud": [canary, pooled, clean_day, before_canary]}, {"fraud": 45})
    assert card.matches[pooled["incident_id"]] == "amount_nulls"
    assert card.false_alerts_of("canary") == [canary["incident_id"]]
    assert card.false_alerts_of("base") == sorted([clean_day["incident_id"], before_canary["incident_id"]])
    assert card.clean_days == {"fraud": 30 - 7} and card.canaries == {"canary": 21}
    summary = card.as_dict()
    assert summary["false_alerts_canary"] == {"canary": [canary["incident_id"]]}
    assert len(summary["false_alerts"]) == 3
