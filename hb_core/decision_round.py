"""One decision round of :func:`hb_core.controller.decide`: the mutable working copy a round changes.

A :class:`Round` is made from a state, applies events, checks completion
criteria and limits, fills the free parallel slots, finishes the tuning job
when nothing is left, and freezes into the next state. What differs between
Random/Grid/Bayesian and the two Hyperband variants is asked of a
:class:`~hb_core.variants.Variant`. The rules it applies are documented in
:mod:`hb_core.controller`, which is its only user.
"""

from __future__ import annotations

import math
from typing import Any

from hb_core.config import TuningConfig
from hb_core.events import (
    Action,
    Event,
    Finish,
    Launch,
    MetricReported,
    Resume,
    Stop,
    TrialCompleted,
    TrialFailed,
    TrialStarted,
    TrialStopped,
    WarmPoolReleased,
)
from hb_core.pstruct import PVector
from hb_core.state import (
    PRICE_KEY,
    Decision,
    Trial,
    TrialStatus,
    TuningState,
    TuningStatus,
    best_reported,
    evolve,
    trial_id_for,
    trial_index,
)
from hb_core.strategies import Sampler
from hb_core.variants import variant_for

__all__ = ["CONVERGENCE_TOLERANCE", "FAIL_FAST_COUNT", "Round", "converged", "convergence_window", "launch_action"]

#: Relative improvement of the best below which a window of jobs counts as converged.
CONVERGENCE_TOLERANCE = 1e-4
#: Ended trials that must all fail, with no success, for the default fail-fast rule.
FAIL_FAST_COUNT = 3


def convergence_window(config: TuningConfig) -> int:
    """Training jobs over which convergence is judged: ``max(10, 2 * MaxParallelTrainingJobs)``."""
    return max(10, 2 * config.resource_limits.max_parallel_training_jobs)


def converged(best_keys: tuple[float, ...], window: int) -> bool:
    """Our convergence test (AMT does not publish its own).

    Converged when the last ``window`` ended training jobs improved the best
    objective by less than ``CONVERGENCE_TOLERANCE`` relative to
    ``max(1, |best|)``. ``best_keys`` is the best key after each ended job.
    """
    if len(best_keys) <= window:
        return False
    before, after = best_keys[-window - 1], best_keys[-1]
    if not (math.isfinite(before) and math.isfinite(after)):
        return False
    return before - after < CONVERGENCE_TOLERANCE * max(1.0, abs(after))


def launch_action(trial: Trial, rung_levels: tuple[int, ...] = ()) -> Action:
    """The job of the trial's current attempt; ``rung_levels``: where it waits for verdicts (barrier on)."""
    if trial.attempt > 1 and trial.resource > 0 and trial.budget is not None:
        return Resume(trial.trial_id, trial.attempt, trial.hyperparameters, trial.resource, trial.budget, rung_levels)
    return Launch(trial.trial_id, trial.attempt, trial.hyperparameters, trial.budget, rung_levels)


class Round:
    """The mutable working copy of one decision round; ``freeze`` makes the new state.

    The state's fields a round changes besides trials, active trials and rungs are carried by name: the
    class annotations below (:data:`CARRIED`) are read from the state and written back by :meth:`freeze`.
    What differs between the ways trials are scheduled is asked of the variant (:mod:`hb_core.variants`).
    """

    status: TuningStatus
    outcome: TuningStatus | None
    completion_reason: str | None
    best_index: int | None
    best_key: float | None
    best_seen: float | None
    best_keys: tuple[float, ...]
    not_improving: int
    n_ended: int
    n_failed: int
    ended_billable_seconds: float
    retained_billable_seconds: float
    finish: Finish | None

    def __init__(self, state: TuningState, now: float, sampler: Sampler) -> None:
        self.state = state
        self.now = now
        self.sampler = sampler
        config = state.config
        self.config = config
        self.objective = config.objective
        self.variant = variant_for(config)
        self.trials: PVector[Trial] = state.trials  # updates share structure with the old state
        self.active = list(state.active)
        self.rungs = [list(bracket) for bracket in state.rungs]
        for name in CARRIED:
            setattr(self, name, getattr(state, name))
        self.fail_reason: str | None = None
        self.exhausted_reason: str | None = None
        self.decisions: list[Decision] = []
        self.actions: list[Action] = []

    # ------------------------------------------------------------ bookkeeping

    def decide_(self, action: str, trial_id: str | None = None, message: str = "", **rung: Any) -> None:
        self.decisions.append(Decision(self.now, action, trial_id, message, **rung))

    def freeze(self) -> tuple[TuningState, tuple[Action, ...]]:
        state = evolve(
            self.state,
            **{name: getattr(self, name) for name in CARRIED},
            trials=self.trials,
            active=tuple(self.active),
            rungs=tuple(tuple(bracket) for bracket in self.rungs),
            decisions=tuple(self.decisions),
            decision_count=self.state.decision_count + len(self.decisions),
            revision=self.state.revision + 1,
        )
        return state, tuple(self.actions)

    def raw(self, key: float | None) -> float | None:
        """The metric value of a key (as a decision shows it)."""
        return None if key is None else self.objective.value(key)

    def launch_action(self, trial: Trial) -> Action:
        """The job of the trial's current attempt, waiting for verdicts where the variant's barrier says."""
        return launch_action(trial, self.variant.barrier_levels(trial.bracket))

    # ------------------------------------------------------------ events

    def apply(self, event: Event) -> None:
        index = trial_index(event.trial_id)
        if index is None or index >= len(self.trials):
            self.decide_("ignore", event.trial_id, f"{event.kind} for a trial this tuning job does not have")
            return
        trial = self.trials[index]
        if isinstance(event, WarmPoolReleased):  # billing only; it comes after its job ended
            self.retained_billable_seconds += event.retained_seconds
            self.trials = self.trials.set(index, evolve(trial, retained_seconds=trial.retained_seconds
                                                        + event.retained_seconds))
            return
        stopped = trial.status is TrialStatus.STOPPED
        if isinstance(event, MetricReported) and event.attempt == trial.attempt and stopped:
            # printed before its stop landed, seen after its end (a backend reports a stop's end at once): recorded
            # like every value printed after a stop decision, in no rung
            self.trials = self.trials.set(index, self._metric(trial, event))
            return
        if event.attempt != trial.attempt or not trial.status.active:
            return  # an earlier attempt's event, or one after the trial ended: nothing to decide
        if isinstance(event, TrialStarted):
            self.trials = self.trials.set(index, self._started(trial, event.time))
        elif isinstance(event, MetricReported):
            trial = self._started(trial, event.time)
            # Values a job prints after its stop was decided are recorded too (they enter no rung): the
            # trial's resource is what its job trained, and its last value what AMT reports for the job.
            trial = self._metric(trial, event)
            self.trials = self.trials.set(index, trial)
        elif isinstance(event, TrialCompleted):
            self._completed(index, self._bill(trial, event.time, event.billable_seconds))
        elif isinstance(event, TrialStopped):
            trial = self._bill(trial, event.time, event.billable_seconds)
            self._end(index, trial, TrialStatus.STOPPED, trial.stop_reason or "stopped outside the controller")
        elif isinstance(event, TrialFailed):
            self._failed(index, self._bill(trial, event.time, event.billable_seconds), event)

    def _started(self, trial: Trial, time: float) -> Trial:
        if trial.segment_start is not None:
            return trial
        status = TrialStatus.IN_PROGRESS if trial.status is TrialStatus.PENDING else trial.status
        start = trial.start_time if trial.start_time is not None else time
        return evolve(trial, status=status, start_time=start, segment_start=time)

    def _bill(self, trial: Trial, time: float, billable: float | None) -> Trial:
        if billable is None:
            billable = time - trial.segment_start if trial.segment_start is not None else 0.0
        self.ended_billable_seconds += billable
        return evolve(trial, billable_seconds=trial.billable_seconds + billable, segment_start=None, end_time=time)

    def _metric(self, trial: Trial, event: MetricReported) -> Trial:
        seq = event.seq if event.seq is not None else len(trial.points) + 1
        resource = event.resource if event.resource is not None else seq
        if seq <= len(trial.points) or resource <= trial.resource:
            return trial  # a duplicate, or a point not beyond what the trial already reported
        value = float(event.value)
        trial = evolve(trial, points=trial.points + ((resource, value, event.time),))
        key = self.objective.key(value)
        if self.best_seen is None or key < self.objective.key(self.best_seen):
            self.best_seen = value
        if trial.status is TrialStatus.IN_PROGRESS:
            trial = self.variant.reached(self, trial, resource, value, key)
        return trial

    def _unrecord_rungs(self, trial: Trial) -> None:
        """Take a failed trial's values out of its rungs: failed trials do not enter rung statistics."""
        if not self.rungs:
            return
        bracket = self.rungs[trial.bracket]
        for j in range(trial.rung_index):
            value = trial.value_at(bracket[j].level)
            if value is None:
                continue
            bracket[j] = evolve(bracket[j], keys=bracket[j].keys.remove(self.objective.key(value)))

    def _completed(self, index: int, trial: Trial) -> None:
        if trial.status is TrialStatus.STOPPING:  # it finished before the stop landed: still a stopped trial
            self._end(index, trial, TrialStatus.STOPPED, f"{trial.stop_reason} (the job ended before the stop landed)")
        elif not self.variant.completed(self, index, trial):  # the variant pauses it, or promotes it again
            self._end(index, trial, TrialStatus.COMPLETED, None)

    def _failed(self, index: int, trial: Trial, event: TrialFailed) -> None:
        if trial.status is TrialStatus.STOPPING:
            self._end(index, trial, TrialStatus.STOPPED, f"{trial.stop_reason}; the job then failed: {event.reason}")
            return
        retries_left = self.config.extensions.max_retries_per_trial - trial.retries
        if event.retriable and retries_left > 0 and self.status is TuningStatus.IN_PROGRESS:
            trial = evolve(
                trial, status=TrialStatus.PENDING, attempt=trial.attempt + 1, retries=trial.retries + 1, end_time=None
            )
            self.trials = self.trials.set(index, trial)
            self.actions.append(self.launch_action(trial))
            self.decide_("retry", trial.trial_id, f"attempt {trial.attempt} after a retriable failure: {event.reason}")
            return
        self._unrecord_rungs(trial)
        self._end(index, trial, TrialStatus.FAILED, event.reason)
        limit = self.config.extensions.max_failed_training_jobs
        if limit is not None and self.n_failed > limit:
            self.fail_reason = f"{self.n_failed} training jobs failed, more than MaxFailedTrainingJobs={limit}"
        elif limit is None and self.n_failed >= FAIL_FAST_COUNT and self.n_failed == self.n_ended:
            self.fail_reason = f"the first {self.n_failed} training jobs all failed; the last: {event.reason}"

    def _end(self, index: int, trial: Trial, status: TrialStatus, reason: str | None) -> None:
        trial = evolve(trial, status=status, stop_reason=reason)
        self.trials = self.trials.set(index, trial)
        if index in self.active:
            self.active.remove(index)
        self.n_ended += 1
        if status is TrialStatus.FAILED:
            self.n_failed += 1
        else:
            self.job_ended(index, trial)
        self.decide_(status.value.lower(), trial.trial_id, reason or "", value=trial.last_value)

    def job_ended(self, index: int, trial: Trial) -> None:
        """A training job ended with a value: update the best and the not-improving count."""
        if trial.last_value is None:
            return
        key = self.objective.key(trial.last_value)
        if self.best_key is None or key < self.best_key:
            self.best_index, self.best_key, self.not_improving = index, key, 0
        else:
            self.not_improving += 1
        window = convergence_window(self.config)
        self.best_keys = (self.best_keys + (self.best_key,))[-(window + 1) :]

    # ------------------------------------------------------------ completion

    def check_completion(self) -> None:
        if self.status is not TuningStatus.IN_PROGRESS:
            return
        reason = self.fail_reason or self._criterion_met()
        if reason is not None:
            self.begin_stopping(reason, TuningStatus.FAILED if self.fail_reason else TuningStatus.COMPLETED)

    def _criterion_met(self) -> str | None:
        config, criteria = self.config, self.config.completion
        target = criteria.target_objective_metric_value
        if target is not None and self.best_seen is not None and self.objective.reaches(self.best_seen, target):
            return f"TargetObjectiveMetricValue {target:g} reached ({self.best_seen:.6g})"
        patience = criteria.max_number_of_training_jobs_not_improving
        if patience is not None and self.not_improving >= patience:
            return f"BestObjectiveNotImproving: {self.not_improving} training jobs without improvement"
        if criteria.complete_on_convergence and converged(self.best_keys, convergence_window(config)):
            return f"ConvergenceDetected: no improvement over the last {convergence_window(config)} training jobs"
        limit = config.resource_limits.max_runtime_in_seconds
        if limit is not None and self.now - self.state.created_time >= limit:
            return f"MaxRuntimeInSeconds={limit} reached"
        budget = config.extensions.max_billable_seconds
        if budget is not None and self._billable_now() >= budget:
            return f"MaxBillableSeconds={budget:g} reached ({self._billable_now():.0f} s billed)"
        price, max_cost = self.state.extra.get(PRICE_KEY), config.extensions.max_cost
        if max_cost is not None and price is not None and self._billable_now() * price >= max_cost:
            return f"MaxCost={max_cost:g} reached ({self._billable_now() * price:.2f} spent)"
        return None

    def _billable_now(self) -> float:
        running = (self.trials[i].segment_start for i in self.active)
        ended = self.ended_billable_seconds + self.retained_billable_seconds
        return ended + sum(self.now - start for start in running if start is not None)

    def begin_stopping(self, reason: str, outcome: TuningStatus) -> None:
        self.status, self.outcome, self.completion_reason = TuningStatus.STOPPING, outcome, reason
        self.decide_("stopping", None, reason)
        for index in self.active:
            trial = self.trials[index]
            if trial.status is not TrialStatus.STOPPING:
                message = f"tuning job is stopping: {reason}"
                stopping = evolve(trial, status=TrialStatus.STOPPING, stop_reason=message,
                                  stop_resource=trial.resource)
                self.trials = self.trials.set(index, stopping)
                self.actions.append(Stop(trial.trial_id, trial.attempt, message))

    def restop(self) -> None:
        """Stop again every stopping trial still active: its stop is not known to have landed."""
        for index in self.active:
            trial = self.trials[index]
            if trial.status is TrialStatus.STOPPING:
                self.actions.append(Stop(trial.trial_id, trial.attempt, trial.stop_reason or "stop requested"))

    # ------------------------------------------------------------ slots

    def fill_slots(self) -> None:
        if self.status is not TuningStatus.IN_PROGRESS:
            return
        limit = self.config.resource_limits.max_parallel_training_jobs
        while len(self.active) < limit:
            if self.variant.promote(self):
                continue
            if not self._launch_new():
                return

    def _launch_new(self) -> bool:
        index = len(self.trials)
        max_jobs = self.config.resource_limits.max_number_of_training_jobs
        if max_jobs is not None and index >= max_jobs:
            self.exhausted_reason = f"MaxNumberOfTrainingJobs={max_jobs} reached"
            return False
        view = self.state
        if self.sampler.uses_history:  # model-based samplers see this round's launches too
            view = evolve(self.state, trials=self.trials, active=tuple(self.active))
        hyperparameters = self.sampler.propose(view, index)
        if hyperparameters is None:
            self.exhausted_reason = "every configuration of the search space was tried"
            return False
        trial_id = trial_id_for(index)
        bracket, budget = self.variant.place(self.state.job_name, trial_id, self.rungs)
        trial = Trial(trial_id, hyperparameters, bracket, TrialStatus.PENDING, budget, created_time=self.now)
        self.trials = self.trials.append(trial)
        self.active.append(index)
        self.actions.append(self.launch_action(trial))
        self.decide_("launch", trial_id, f"bracket {bracket}, budget {budget}, {_compact(hyperparameters)}")
        return True

    # ------------------------------------------------------------ finishing

    def maybe_finish(self) -> None:
        if self.status is TuningStatus.IN_PROGRESS and not self.active:
            self.begin_stopping(self.exhausted_reason or "no trial left to run", TuningStatus.COMPLETED)
        if self.status is not TuningStatus.STOPPING or self.active:
            return
        for index, trial in enumerate(self.trials):
            if trial.status is TrialStatus.PAUSED:  # its job already ended and counted when it paused
                reason = f"paused at resource {trial.resource}; not promoted before the tuning job ended"
                self.trials = self.trials.set(index, evolve(trial, status=TrialStatus.STOPPED, stop_reason=reason))
                self.n_ended += 1
                self.decide_("stopped", trial.trial_id, reason, value=trial.last_value)
        best = best_reported(self.trials, self.objective)
        outcome = self.outcome or TuningStatus.COMPLETED
        reason = self.completion_reason or ""
        if best is None and outcome is TuningStatus.COMPLETED:
            outcome, reason = TuningStatus.FAILED, f"{reason}; no training job reported the objective metric"
        counts: dict[str, int] = {}
        for trial in self.trials:
            counts[trial.status.value] = counts.get(trial.status.value, 0) + 1
        finish = Finish(
            outcome.value,
            reason,
            best.trial_id if best else None,
            best.last_value if best else None,
            {"trial_counts": counts, "total_resource": sum(t.resource for t in self.trials)},
        )
        self.status, self.finish = outcome, finish
        self.actions.append(finish)
        self.decide_("finish", None, f"{outcome.value}: {reason}; best trial {finish.best_trial_id}",
                     value=finish.best_objective)


#: The state's fields a round carries over by name (the class annotations of :class:`Round`).
CARRIED: tuple[str, ...] = tuple(Round.__annotations__)


def _compact(hyperparameters: Any) -> str:
    parts = []
    for name, value in hyperparameters.items():
        parts.append(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}")
    return " ".join(parts)
