"""Materialize a model's whole graph for a date range, in-process, as one run per model.

Used by the command line (``closedloop run`` and ``closedloop demo``): the runs go to the
Dagster instance in DAGSTER_HOME, so the UI shows them like any scheduled run. An in-process run
bypasses the instance's run queue, so each holds its model's ``pipeline`` lock in the lake: two
``closedloop run`` of one model run one after the other, never interleaved.
"""

import datetime as dt
import multiprocessing
import os
import sys
import threading
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import dagster as dg

from checks.ops_guards import GUARD_CHECK_NAMES
from closedloop.core.lake import Lake
from closedloop.core.specs import Registry
from orchestration.definitions import build_definitions
from orchestration.ingested import ingested_in
from orchestration.jobs import pipeline_job_name, report_job_name
from orchestration.runbook_jobs import INCIDENT_JOB
from orchestration.sensors import INCIDENT_SENSOR
from wiring.tags import MODEL_TAG

# The event log keeps everything (the UI shows it by run id); the terminal shows the progress
# bar and, on failure, one line that names the run.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
PIPELINE_LOCK = "pipeline"  # held by an in-process pipeline run of the model, for its whole run
_STEP_ENDS = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SKIPPED}


@dataclass(frozen=True)
class FailedCheck:
    """A check that did not pass in a run: what it is, how bad, and when."""

    asset: str
    check: str
    severity: str
    days: tuple[str, ...]  # the days of its failing periods (hours fold into their day); none for ops guards
    first_failure: str | None


@dataclass(frozen=True)
class RunOutcome:
    model: str
    run_id: str
    success: bool
    failure: str | None = None
    failed_checks: tuple[FailedCheck, ...] = ()
    ingested: dict = field(default_factory=dict)  # per landing table, as the run's ingest steps measured it


def _definitions(registry: Registry) -> dg.Definitions:
    # Single-run backfill policies are beta in Dagster 1.13 and used deliberately; say so once, here.
    # Dagster resolves definitions lazily, and resolving repeats its beta notices: resolve them here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        defs = build_definitions(registry)
        defs.get_repository_def()
        return defs


def count_steps(registry: Registry, models: list[str]) -> int:
    """How many steps (assets and checks) the runs of ``models`` will execute."""
    defs = _definitions(registry)
    return sum(
        len(defs.resolve_job_def(pipeline_job_name(registry.model(m))).nodes_in_topological_order) for m in models
    )


def materialize_range(
    registry: Registry,
    models: list[str],
    start: dt.date,
    end: dt.date,
    instance: dg.DagsterInstance,
    on_step: Callable[[str, str], None] | None = None,
    on_wait: Callable[[str, Path], None] | None = None,
) -> list[RunOutcome]:
    """One run per model covering ``start``..``end``; ``on_step(model, step)`` as each step ends, and
    ``on_wait(model, lock_file)`` before waiting for another in-process run of that model to end.

    The models' runs share nothing but the instance, so on an instance that other processes can
    write to (DAGSTER_HOME's storage, not an in-memory one) they run at once, one process each, up
    to one per core: what a deployment's run queue does with several runs, here without a daemon.
    A run in its own process says on stderr that it waits.
    """
    run_ids = {name: str(uuid.uuid4()) for name in models}
    watchers = [
        _StepWatcher(instance, run_ids[name], lambda step, name=name: on_step and on_step(name, step))
        for name in models
    ]
    for watcher in watchers:
        watcher.start()
    try:
        run = partial(_run_range, registry, start=start, end=end, run_ids=run_ids)
        return _per_model(
            instance, models, partial(run, on_wait=on_wait or _print_waiting), partial(run, on_wait=_print_waiting)
        )
    finally:
        for watcher in watchers:
            watcher.stop()


def waiting_notice(model: str, lock: Path) -> str:
    return f"closedloop run: another run of {model} is in progress ({lock}); waiting for it to end"


def _print_waiting(model: str, lock: Path) -> None:
    print(waiting_notice(model, lock), file=sys.stderr)


def _per_model(
    instance: dg.DagsterInstance,
    models: list[str],
    run: Callable[[str, dg.DagsterInstance | None], RunOutcome],
    run_apart: Callable[[str, dg.DagsterInstance | None], RunOutcome] | None = None,
) -> list[RunOutcome]:
    """``run(model, instance)`` for each model; ``run_apart(model, None)`` in a process each when the instance allows.

    A process of its own cannot call back into this one: ``run_apart`` is what it runs instead.
    """
    workers = min(len(models), len(os.sched_getaffinity(0)))
    if workers < 2 or instance.is_ephemeral:
        return [run(name, instance) for name in models]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = [pool.submit(run_apart or run, name, None) for name in models]
        return [r.result() for r in runs]


def _run_range(
    registry: Registry,
    name: str,
    instance: dg.DagsterInstance | None,
    *,
    on_wait: Callable[[str, Path], None],
    start: dt.date,
    end: dt.date,
    run_ids: dict[str, str],
) -> RunOutcome:
    """``name``'s run of the range in this process, holding its pipeline lock; without ``instance``, DAGSTER_HOME's."""
    job = _definitions(registry).resolve_job_def(pipeline_job_name(registry.model(name)))
    lake = Lake(registry.lake, registry.landing)
    with lake.locked(name, PIPELINE_LOCK, lambda path: on_wait(name, path)):
        result = job.execute_in_process(
            instance=instance or dg.DagsterInstance.get(),
            run_config=QUIET,
            run_id=run_ids[name],
            raise_on_error=False,
            tags={
                "dagster/asset_partition_range_start": start.isoformat(),
                "dagster/asset_partition_range_end": end.isoformat(),
                "closedloop/launched_by": "cli",
            },
        )
    failure = None if result.success else failure_reason(result)
    ingested = ingested_in(result, registry.model(name), start, end)
    return RunOutcome(name, result.run_id, result.success, failure, _failed_checks(result), ingested)


def materialize_reports(
    registry: Registry, models: list[str], day: dt.date, instance: dg.DagsterInstance
) -> list[RunOutcome]:
    """Each model's report of ``day``, as the daily report schedule writes it: one run per model, at once."""
    return _per_model(instance, models, partial(_report_run, registry, day=day))


def _report_run(registry: Registry, name: str, instance: dg.DagsterInstance | None, *, day: dt.date) -> RunOutcome:
    result = (
        _definitions(registry)
        .resolve_job_def(report_job_name(registry.model(name)))
        .execute_in_process(
            instance=instance or dg.DagsterInstance.get(),
            run_config=QUIET,
            partition_key=day.isoformat(),
            raise_on_error=False,
            tags={"closedloop/launched_by": "cli"},
        )
    )
    return RunOutcome(name, result.run_id, result.success, None if result.success else failure_reason(result))


def handle_incidents(registry: Registry, instance: dg.DagsterInstance) -> list[RunOutcome]:
    """Evaluate the incident sensor once, in-process, and execute the incident runs it requests.

    What the daemon does every 30 seconds under ``dagster dev``, for a run made from the command
    line: newly breached SLOs open incidents (and act), recovered ones close them. The sensor
    skips what the lake shows handled already, so it starts without a cursor.
    """
    defs = _definitions(registry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resolving the sensor repeats Dagster's beta and resource notices
        sensor = defs.get_sensor_def(INCIDENT_SENSOR)
    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    requests = result if isinstance(result, list) else []
    job = defs.get_job_def(INCIDENT_JOB)
    outcomes = []
    for request in requests:
        run = job.execute_in_process(
            run_config={**request.run_config, **QUIET},
            instance=instance,
            tags={**request.tags, "closedloop/launched_by": "cli"},
            raise_on_error=False,
        )
        model = request.tags[MODEL_TAG]
        outcomes.append(RunOutcome(model, run.run_id, run.success, None if run.success else failure_reason(run)))
    return outcomes


def _failing_days(check: str, periods: list[str]) -> tuple[str, ...]:
    """The days a check failed on; none for an ops guard, whose summary line names its first failing hour."""
    if check in GUARD_CHECK_NAMES.values():
        return ()
    return tuple(sorted({period[:10] for period in periods}))


def _verdicts(result: dg.ExecuteInProcessResult) -> list[dg.AssetCheckEvaluation]:
    """Each check's result over the whole run: its last evaluation (a range run records each day's before it)."""
    return list({e.asset_check_key: e for e in result.get_asset_check_evaluations()}.values())


def _failed_checks(result: dg.ExecuteInProcessResult) -> tuple[FailedCheck, ...]:
    failed = []
    for evaluation in _verdicts(result):
        if evaluation.passed:
            continue
        periods = evaluation.metadata.get("failing_periods")
        first = evaluation.metadata.get("first_failure")
        failed.append(
            FailedCheck(
                asset=evaluation.asset_key.to_user_string(),
                check=evaluation.check_name,
                severity=evaluation.severity.value,
                days=_failing_days(evaluation.check_name, periods.value if periods else []),
                first_failure=first.value if first else None,
            )
        )
    return tuple(failed)


def failure_reason(result: dg.ExecuteInProcessResult) -> str:
    """One line that says which step failed first and why.

    The step that failed is what stopped the run; a failed check that blocked nothing (an ERROR
    check that is not blocking) is listed among the failed checks, never given as the reason. A
    step stopped by a blocking check is named by that check and its first failure.
    """
    for event in result.all_events:
        if event.event_type != dg.DagsterEventType.STEP_FAILURE:
            continue
        error = event.step_failure_data.error
        while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
            error = error.cause
        if error.cls_name == "DagsterAssetCheckFailedError":
            blocking = [e for e in _verdicts(result) if not e.passed and _named_in(e, error.message or "")]
            if blocking:
                detail = blocking[0].metadata.get("first_failure")
                return f"check {blocking[0].asset_check_key.to_user_string()} failed" + (
                    f" on {detail.value}" if detail else ""
                )
        first_line = (error.message or error.cls_name).strip().splitlines()[0]
        _, marker, rest = first_line.partition(f"{error.cls_name}: ")
        return f"{event.step_key}: {rest if marker else first_line}"
    return "the run failed before any step ran; see the run in the Dagster UI"


def _named_in(evaluation: dg.AssetCheckEvaluation, message: str) -> bool:
    """Whether a blocking-check failure's message (``asset: check`` per line) names this check."""
    return f"{evaluation.asset_key.to_user_string()}: {evaluation.check_name}" in message.splitlines()


class _StepWatcher:
    """Reads the run's new step ends from its event log, so a progress bar can advance as steps end."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, on_step: Callable[[str], None]):
        self._instance, self._run_id, self._on_step = instance, run_id, on_step
        self._cursor: str | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._poll()

    def _loop(self) -> None:
        while not self._stopped.wait(1.0):
            self._poll()

    def _poll(self) -> None:
        page = self._instance.get_records_for_run(self._run_id, cursor=self._cursor, of_type=_STEP_ENDS)
        self._cursor = page.cursor
        for record in page.records:
            if record.event_log_entry.step_key:
                self._on_step(record.event_log_entry.step_key)
