"""Blocking checks: downstream work stops when too much of a day's input was quarantined."""

import dagster as dg

from closedloop.lake import LANDING_TABLES
from closedloop.quarantine import quarantine_shares
from closedloop.registry import ModelSpec
from orchestration.partitions import run_days
from orchestration.resources import LakeResource


def _quarantine_check(model: ModelSpec, table: str) -> dg.AssetChecksDefinition:
    limit = model.contract.max_quarantine_share

    @dg.asset_check(
        asset=dg.AssetKey([model.name, table]),
        name=f"{table}_quarantine_share_within_limit",
        blocking=True,
        description=(
            f"At most {limit:.1%} of a day's {table} rows may be quarantined "
            f"(models.{model.name}.contract.max_quarantine_share); more means the log or its contract changed."
        ),
    )
    def check(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        shares = quarantine_shares(lake.get(), model.name, table, run_days(context))
        worst = max(shares, key=lambda s: s.share)
        over = [s for s in shares if s.share > limit]
        return dg.AssetCheckResult(
            passed=not over,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "expected_max_share": limit,
                "observed_max_share": worst.share,
                "worst_day": str(worst.day),
                "days_over_limit": dg.MetadataValue.json([str(s.day) for s in over]),
                "quarantined_rows": sum(s.quarantined for s in shares),
                "accepted_rows": sum(s.accepted for s in shares),
            },
        )

    return check


def build_quarantine_checks(model: ModelSpec) -> list[dg.AssetChecksDefinition]:
    return [_quarantine_check(model, table) for table in LANDING_TABLES]
