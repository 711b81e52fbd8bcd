"""What the dashboard shows of a tuning state, as JSON-able dicts: pure functions.

The HTML page and the JSON API are built from the same dicts, so they cannot
disagree. Non-finite numbers (a diverged trial's NaN) become None: JSON has no NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hb_airflow.ui.jobs import DecisionPage, LoadedJob
from hb_core.errors import ConfigError
from hb_core.naming import training_job_name
from hb_core.report import summary
from hb_core.rungs import keep_count
from hb_core.state import Decision, Trial, TuningState, TuningStatus

__all__ = [
    "TaskLink",
    "best_so_far",
    "best_trial",
    "billable_seconds",
    "decision_page",
    "job_detail",
    "job_row",
    "json_safe",
    "rung_rows",
    "trial_row",
    "trial_rows",
]

#: Status shown for a job whose state.json cannot be read.
UNREADABLE = "Unreadable"


@dataclass(frozen=True)
class TaskLink:
    """The Airflow task instance that started a tuning job (from its ``tuning_job_name`` XCom)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {"dag_id": self.dag_id, "run_id": self.run_id, "task_id": self.task_id, "map_index": self.map_index}


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, mappings and sequences copied."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def job_row(job: LoadedJob, link: TaskLink | None) -> dict[str, Any]:
    """One line of the job list."""
    row: dict[str, Any] = {
        "tuning_job_name": job.name,
        "dag_id": link.dag_id if link else None,
        "run_id": link.run_id if link else None,
        "task_id": link.task_id if link else None,
        "map_index": link.map_index if link else None,
        "updated_time": job.updated_time,
    }
    state = job.state
    if state is None:
        return row | {"status": UNREADABLE, "error": job.error, "objective": None, "best_objective": None,
                      "best_trial_id": None, "trials": None, "trial_counts": {}, "billable_seconds": None,
                      "created_time": None, "running": False}
    s = summary(state)
    best = best_trial(state)
    return row | {
        "status": state.status.value,
        "error": None,
        "objective": s["objective"],
        "objective_type": state.config.objective.type.value,
        "best_objective": best.last_value if best else None,
        "best_trial_id": best.trial_id if best else None,
        "trials": s["trials"],
        "trial_counts": s["trial_counts"],
        "billable_seconds": billable_seconds(state, job.updated_time),
        "created_time": state.created_time,
        "running": not state.done,
    }


def job_detail(job: LoadedJob, link: TaskLink | None) -> dict[str, Any]:
    """A job's summary, rungs and best-so-far curve (the trials and decisions have their own calls)."""
    row = job_row(job, link)
    state = job.state
    if state is None:
        return row
    hb = state.config.hyperband
    return row | {
        "summary": summary(state),
        "strategy": state.config.strategy.value,
        "hyperband": None if hb is None else {
            "min_resource": hb.min_resource, "max_resource": hb.max_resource,
            "reduction_factor": hb.reduction_factor, "brackets": len(state.rungs),
            "variant": hb.variant.value, "sampler": hb.sampler.value,
        },
        "max_resource": state.config.max_resource,
        "completion_reason": state.completion_reason,
        "revision": state.revision,
        "decision_count": state.decision_count,
        "active_trials": len(state.active),
        "rungs": rung_rows(state),
        "best_so_far": [{"elapsed": t, "value": v} for t, v in best_so_far(state)],
    }


def billable_seconds(state: TuningState, as_of: float) -> float:
    """Billable seconds of the ended training jobs, plus the running ones' up to ``as_of`` (the last checkpoint)."""
    running = 0.0
    for index in state.active:
        trial: Trial = state.trials[index]
        if trial.segment_start is not None:
            running += max(0.0, as_of - trial.segment_start)
    return round(state.billed_seconds + running, 3)


def rung_rows(state: TuningState) -> list[dict[str, Any]]:
    """Per bracket and rung level: trials recorded there, paused ones, best value and cutoff.

    ``cutoff`` is the worst value the keep rule still keeps (the top ``ceil(n/eta)``).
    """
    hb = state.config.hyperband
    if hb is None:
        return []
    objective = state.config.objective
    rows = []
    for b, bracket in enumerate(state.rungs):
        for j, rung in enumerate(bracket):
            n = len(rung.keys)
            cutoff = rung.cutoff(hb.reduction_factor)
            rows.append({
                "bracket": b,
                "rung": j,
                "level": rung.level,
                "trials": n,
                "kept": keep_count(n, hb.reduction_factor) if n else 0,
                "paused": len(rung.paused),
                "best": json_safe(objective.value(rung.keys[0])) if n else None,
                "cutoff": None if cutoff is None else json_safe(objective.value(cutoff)),
            })
    return rows


def trial_row(state: TuningState, trial: Trial, best: Trial | None = None, *,
              as_of: float | None = None) -> dict[str, Any]:
    """One trial: what it is, how far it got, why it stopped, and its points; ``best``: the job's best trial."""
    try:
        job = training_job_name(state.job_name, trial.trial_id, trial.attempt)
    except ConfigError:
        job = None
    return {
        "trial_id": trial.trial_id,
        "hyperparameters": dict(trial.hyperparameters),
        "bracket": trial.bracket,
        "status": trial.status.value,
        "resource": trial.resource,
        "judged_resource": trial.judged_resource,
        "last_value": trial.last_value,
        "rungs_reached": trial.rung_index,
        "stop_reason": trial.stop_reason,
        "training_job_name": job,
        "attempt": trial.attempt,
        "billable_seconds": trial.billable_seconds + (
            max(0.0, as_of - trial.segment_start)
            if as_of is not None and trial.status.active and trial.segment_start is not None else 0.0),
        "start_time": trial.start_time,
        "end_time": trial.end_time,
        "best": best is not None and best.index == trial.index,
        "points": [{"resource": r, "value": v, "time": t} for r, v, t in trial.points],
    }


def trial_rows(state: TuningState, *, order: str = "best", as_of: float | None = None) -> list[dict[str, Any]]:
    """Every trial; ``order="best"``: best last value first (no value last), else by trial id.

    ``as_of``: count running training jobs' billable time up to then (the state's last checkpoint).
    """
    trials: Sequence[Trial] = list(state.trials)
    if order == "best":
        objective = state.config.objective
        trials = sorted(trials, key=lambda t: (t.last_value is None,
                                               objective.key(t.last_value) if t.last_value is not None else 0.0,
                                               t.index))
    best = best_trial(state)
    return [trial_row(state, t, best, as_of=as_of) for t in trials]


def best_so_far(state: TuningState) -> list[tuple[float, float]]:
    """(seconds since the job was created, best value reported so far): :meth:`TuningState.best_so_far`."""
    return [(max(0.0, time - state.created_time), value) for time, value in state.best_so_far()]


def decision_page(page: DecisionPage) -> dict[str, Any]:
    return {"total": page.total, "offset": page.offset, "limit": page.limit,
            "decisions": [decision_dict(d) for d in page.decisions]}


def decision_dict(decision: Decision) -> dict[str, Any]:
    return decision.to_dict() | {"line": decision.line()}


def is_running(state: TuningState | None) -> bool:
    return state is not None and state.status in (TuningStatus.IN_PROGRESS, TuningStatus.STOPPING)


def best_trial(state: TuningState) -> Trial | None:
    """The trial the dashboard marks best: :meth:`TuningState.best_trial` so far."""
    return state.best_trial(so_far=True)
