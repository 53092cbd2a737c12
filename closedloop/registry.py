"""Loading the registry: its schema (``core.specs``) and everything closedloop computes, checked at once.

``load_registry`` is the one way in: a registry it returns has valid keys and values, drift
limits only on drift metrics closedloop computes, and production metrics (watched by an SLO or
not) only from sources it can read, with business SQL that runs on the model's predictions and
gives a number, so no caller can forget a check and nothing the registry says fails mid-run. Every
problem names the file and the dotted key.
"""

from __future__ import annotations

import os
from pathlib import Path

from closedloop.control.metric_catalog import SourceError, known_sources, parse_source, validate_business_sql
from closedloop.core.specs import ModelSpec, Registry, RegistryError, read_registry
from closedloop.drift.measures import DRIFT_METRICS

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "models.yaml"


def load_registry(path: str | os.PathLike, *, landing: str | None = None, lake: str | None = None) -> Registry:
    """Read and validate a registry file; ``landing``/``lake`` override the file's roots."""
    registry = read_registry(path, landing=landing, lake=lake)
    drift = [problem for model in registry.models.values() for problem in drift_limit_problems(model)]
    if drift:
        raise RegistryError(f"{registry.path}: invalid registry\n" + "\n".join(f"  {p}" for p in drift))
    sources = [problem for model in registry.models.values() for problem in metric_source_problems(model)]
    if sources:
        raise RegistryError(f"{registry.path}: invalid metrics\n" + "\n".join(f"  {p}" for p in sources))
    return registry


def registry_from_environment(config: str | os.PathLike | None = None) -> Registry:
    """The registry named by ``config``, else ``CLOSEDLOOP_CONFIG``, else the project's own."""
    path = config or os.environ.get("CLOSEDLOOP_CONFIG") or DEFAULT_CONFIG
    return load_registry(path, landing=os.environ.get("CLOSEDLOOP_LANDING"), lake=os.environ.get("CLOSEDLOOP_LAKE"))


def drift_limit_problems(model: ModelSpec) -> list[str]:
    """Drift limits given to metrics that drift does not compute (a misspelt ``psy`` would never alert)."""
    known = [m.name for m in DRIFT_METRICS]
    scopes = {
        "thresholds": model.drift.thresholds,
        **{f"columns.{c}": limits for c, limits in model.drift.columns.items()},
    }
    return [
        f"models.{model.name}.drift.{where}: unknown drift metric(s) {unknown}; known metrics are {known}"
        for where, limits in scopes.items()
        if (unknown := sorted(set(limits) - set(known)))
    ]


def metric_source_problems(model: ModelSpec) -> list[str]:
    """Problems with the sources of ``model``'s production metrics, each named by its key (empty when none).

    Every metric is checked, watched by an SLO or not: a metric is shown and reported whether or not
    an SLO judges it, and an SLO added later must not be the first to find its source misspelt.
    """
    problems = []
    for index, metric in enumerate(model.metrics):
        try:
            parse_source(model, metric)
            if metric.sql is not None:
                validate_business_sql(model, metric.sql)
        except SourceError as exc:
            known = "; ".join(known_sources(model))
            problems.append(
                f"models.{model.name}.metrics.{index}: metric {metric.name!r}: {exc}; known sources: {known}"
            )
    return problems
