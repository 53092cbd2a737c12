"""One check per SLO on ``<model>/slo_evaluations``: did the SLO reach the breached state in the run."""

import dagster as dg
import pyarrow as pa

from closedloop.names import checked_day
from closedloop.registry import ModelSpec
from orchestration.partitions import run_days
from orchestration.resources import LakeResource

_SEVERITY = {"page": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def _bound(slo) -> str:
    return f"within [{slo.band[0]}, {slo.band[1]}]" if slo.band else f"{slo.comparison} {slo.threshold}"


def build_slo_checks(model: ModelSpec) -> list[dg.AssetChecksDefinition]:
    if not model.slos:
        return []
    asset = dg.AssetKey([model.name, "slo_evaluations"])

    @dg.multi_asset_check(
        name=f"{model.name}__slos",
        specs=[
            dg.AssetCheckSpec(
                slo.name,
                asset=asset,
                description=f"{slo.metric} {_bound(slo)} ({slo.severity}; breached after {slo.for_periods} bad period(s); "
                f"runbook: {slo.action.type}, {slo.action.mode}).",
            )
            for slo in model.slos
        ],
        description=f"The SLOs of {model.name}, as recorded in slo_evaluations.",
    )
    def slos(context: dg.AssetCheckExecutionContext, lake: LakeResource):
        store = lake.get()
        parts = [store.read_partition(model.name, "slo_evaluations", checked_day(key)) for key in run_days(context)]
        rows = pa.concat_tables([p for p in parts if p is not None]).to_pylist() if any(parts) else []
        for slo in model.slos:
            mine = sorted((r for r in rows if r["slo"] == slo.name), key=lambda r: r["period"])
            breached = [r for r in mine if r["state"] == "breached"]
            judged = [r for r in mine if r["value"] is not None]
            metadata = {"periods_judged": len(judged), "periods_breached": len(breached), "expected": _bound(slo)}
            if judged:
                latest = judged[-1]
                metadata.update({"latest_period": latest["period"], "observed": float(latest["value"]), "state": latest["state"]})
            if breached:
                first = breached[0]
                metadata["first_failure"] = f"{first['period']}: expected {slo.metric} {_bound(slo)}, observed {first['value']:.4g}"
                metadata["failing_days"] = dg.MetadataValue.json(sorted({str(r["day"]) for r in breached}))
            yield dg.AssetCheckResult(
                check_name=slo.name, asset_key=asset, passed=not breached, severity=_SEVERITY[slo.severity], metadata=metadata
            )

    return [slos]
