"""The ``compare_versions`` job: the CLI's ``closedloop compare``, launchable from the Launchpad.

The run config has the CLI's fields; the run writes the comparison to the lake and carries the
verdict, the headline figures and a link to the report as metadata, so the run's page answers
"what changed in v12?" without opening a terminal.
"""

import datetime as dt

import dagster as dg

from closedloop.compare.comparison import run_comparison
from closedloop.compare.request import CompareError, plan_comparison
from closedloop.core.specs import Registry
from wiring.resources import LakeResource

COMPARE_JOB = "compare_versions"
_HEADLINE_METRICS = ("decision_rate", "roc_auc", "brier", "ece", "mean_logit")


class ComparisonConfig(dg.Config):
    """Which versions of which model, over which days (empty: the canary, else the shadow week, else before/after)."""

    model: str
    baseline: str
    candidate: str
    start: str | None = None
    end: str | None = None
    baseline_start: str | None = None
    baseline_end: str | None = None
    candidate_start: str | None = None
    candidate_end: str | None = None
    segment: str | None = None

    def periods(self) -> dict:
        def day(value: str | None) -> dt.date | None:
            try:
                return None if value is None else dt.date.fromisoformat(value)
            except ValueError:
                raise dg.Failure(f"{value!r} is not a day; write it as YYYY-MM-DD") from None

        days = ("start", "end", "baseline_start", "baseline_end", "candidate_start", "candidate_end")
        return {name: day(getattr(self, name)) for name in days} | {"segment": self.segment}


def build_compare_job(registry: Registry) -> dg.JobDefinition:
    @dg.op(description="Compare two versions of a model and write the comparison, its figures and its report.")
    def compare(context: dg.OpExecutionContext, config: ComparisonConfig, lake: LakeResource) -> None:
        store = lake.get()
        try:
            request = plan_comparison(
                store, registry, config.model, config.baseline, config.candidate, **config.periods()
            )
        except CompareError as exc:
            raise dg.Failure(str(exc)) from None
        context.log.info(request.describe())
        comparison, report = run_comparison(store, registry, request, context.log.info)
        document = comparison.document
        headline = {
            f"{r['section']}/{r['metric']} ({config.candidate} - {config.baseline})": dg.MetadataValue.float(
                r["difference"]
            )
            for r in document["metrics"]
            if r["metric"] in _HEADLINE_METRICS and r["difference"] is not None
        }
        context.add_output_metadata(
            {
                "population": document["comparison"]["population"],
                "verdict": dg.MetadataValue.md(
                    "\n".join(f"- {line}" for line in document["verdict"]["headline"]) or "no difference measured"
                ),
                "worse": dg.MetadataValue.json(document["verdict"]["worse"]),
                "report": dg.MetadataValue.path(str(report)),
                "report_link": dg.MetadataValue.url(report.as_uri()),
                **headline,
            }
        )

    @dg.job(
        name=COMPARE_JOB,
        description="What changed between two versions of a model (paired, canary or across periods), and is it real.",
        tags={"closedloop/kind": "comparison"},
    )
    def compare_versions():
        compare()

    return compare_versions
