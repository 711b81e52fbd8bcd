"""The controller: ``decide(state, events, now) -> (state, actions)``.

``decide`` is pure: no I/O, no clock (``now`` is an argument), no global RNG.
The same state and events give the same new state and actions, bit for bit.
One call is one *decision round*: apply the events, check completion criteria
and limits, fill the free parallel slots, and finish when nothing is left.

Scheduling (the scheduler role; a sampler proposes the configurations):

- Random, Grid and Bayesian: every trial runs to its full budget.
- Hyperband (ASHA), stopping variant (AMT semantics, the default): a trial is
  launched with budget MaxResource. When its metric reaches a rung level of its
  bracket, the value is recorded there and the trial goes on only if its rank
  is within the top ``ceil(n/eta)`` of the n values recorded at that rung
  (:func:`hb_core.rungs.keep_count`); otherwise it is stopped. The last rung
  (MaxResource) only records.
- Hyperband, promotion variant: a trial is launched to the first rung of its
  bracket and pauses there. When a slot frees, the best paused trial at the
  highest rung whose rank is within the top ``floor(n/eta)`` is resumed (from
  its checkpoint) to the next rung; else a new trial is launched.
- Both variants: ``MinRungResults`` (default 1) delays the rule: a rung keeps
  or promotes no trial before it holds that many values; a trial reaching it
  earlier is stopped (Stopping) or stays paused (Promotion). The rule is
  :func:`hb_core.rungs.keeps`, for both variants.

Rung barrier (``RungBarrierTimeoutSeconds``; :mod:`hb_core.barrier`): a job
may wait at each rung of its bracket for a verdict, so the decision taken on
the rung value's arrival is also sent to the job as an action. Stopping
variant: a kept trial gets a :class:`RungVerdict` to go on to its budget (a
stop is the usual :class:`Stop`). Promotion variant: a trial reaching its
budget is promoted *in place* (same job, no checkpoint reload: a
``RungVerdict`` to the next rung) when a slot freed now would promote it,
the rule of :meth:`_Round._promote` with the arriving trial among the
candidates; else its verdict ends it there and it pauses as without the
barrier. If its job had already ended (its wait timed out) when an in-place
promotion was decided, the promotion becomes a ``Resume``.

A decision costs O(log n) in the number of trials: rungs are persistent sorted
multisets with ranks and the trial list a persistent vector
(:mod:`hb_core.pstruct`), so a round shares everything it does not touch with
the previous state instead of copying it.

Completion (checked every round, in this order): the failure limit
(``MaxFailedTrainingJobs``; unset: the first 3 ended trials all failed),
``TargetObjectiveMetricValue`` (any reported value reaching it),
``BestObjectiveNotImproving`` (that many training jobs ended in a row without
improving the best), ``ConvergenceDetected`` (see :func:`converged`),
``MaxRuntimeInSeconds`` and ``MaxBillableSeconds``. Hitting one stops every
running job; the tuning job finishes when the last of them has ended.

Accounting: a stop takes time to land (a metric delay to be decided, a stop
delay to end the job), and the job trains, billed, meanwhile. Values it
prints after its stop was decided are recorded in the trial's points (they
enter no rung), so a trial's resource is what its job trained and its last
value what AMT reports for the job; ``Trial.stop_resource`` keeps what it had
reached when the stop was decided (what was judged). A backend may report a
stopped job's end before its last values; they are recorded for the stopped
trial when they come. ``WarmPoolReleased`` adds the billed time a warm pool
kept an ended job's instance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hb_core.config import HyperbandVariant, Strategy, TuningConfig
from hb_core.errors import ConfigError
from hb_core.events import (
    Action,
    Event,
    Finish,
    Launch,
    MetricReported,
    Resume,
    RungVerdict,
    Stop,
    TrialCompleted,
    TrialFailed,
    TrialStarted,
    TrialStopped,
    WarmPoolReleased,
)
from hb_core.rungs import bracket_for, bracket_weights, keeps, promote_count, rung_levels, stable_unit
from hb_core.state import (
    PRICE_KEY,
    Decision,
    Rung,
    Trial,
    TrialStatus,
    TuningState,
    TuningStatus,
    best_reported,
    evolve,
    trial_id_for,
    trial_index,
)
from hb_core.strategies import Sampler, make_sampler

__all__ = [
    "CONVERGENCE_TOLERANCE",
    "abort",
    "converged",
    "convergence_window",
    "decide",
    "new_state",
    "outstanding_actions",
]

#: Relative improvement of the best below which a window of jobs counts as converged.
CONVERGENCE_TOLERANCE = 1e-4
#: Ended trials that must all fail, with no success, for the default fail-fast rule.
FAIL_FAST_COUNT = 3


def new_state(config: TuningConfig, *, now: float, job_name: str | None = None, seed: int | None = None) -> TuningState:
    """The state of a tuning job before its first decision round.

    The seed is, in order: ``seed``, the config's ``RandomSeed``, or a stable
    hash of the job name (so a restarted job keeps its seed).
    """
    name = job_name or config.name
    if not name:
        raise ConfigError("HyperParameterTuningJobName", "a tuning job name must be given", name)
    if seed is None:
        seed = config.random_seed if config.random_seed is not None else int(stable_unit("seed", name) * 2**31)
    rungs: tuple[tuple[Rung, ...], ...] = ()
    hb = config.hyperband if config.strategy is Strategy.HYPERBAND else None
    if hb is not None:
        levels = rung_levels(hb.min_resource, hb.max_resource, hb.reduction_factor)
        n_brackets = min(hb.number_of_brackets, len(levels))
        rungs = tuple(tuple(Rung(level) for level in levels[b:]) for b in range(n_brackets))
    return TuningState(job_name=name, config=config, seed=seed, created_time=now, rungs=rungs)


def decide(
    state: TuningState, events: tuple[Event, ...] | list[Event], now: float, *, sampler: Sampler | None = None
) -> tuple[TuningState, tuple[Action, ...]]:
    """One decision round. ``sampler`` defaults to the one the config asks for, with the state's warm-start prior."""
    if state.done:
        return replace(state, decisions=()), ()
    round_ = _Round(state, now, sampler or make_sampler(state.config, prior=state.prior or ()))
    for event in events:
        round_.apply(event)
    round_.check_completion()
    round_.fill_slots()
    round_.maybe_finish()
    return round_.freeze()


def abort(
    state: TuningState, reason: str, now: float, events: Sequence[Event] = ()
) -> tuple[TuningState, tuple[Action, ...]]:
    """Stop the tuning job on request (a user killed the task): stop every running job, launch nothing.

    ``events`` (what the backend saw since the last round: jobs that ended,
    values they reported) are applied in the same round, first, so one
    checkpoint holds both. The job ends Failed with ``reason`` once every
    stopped job has ended (this round or a later one). A job already stopping
    keeps its reason and outcome; its stops not known to have landed are
    issued again (backends make them idempotent), so an abort may be repeated
    by whoever comes next.
    """
    if state.done:
        return replace(state, decisions=()), ()
    round_ = _Round(state, now, make_sampler(state.config))
    for event in events:
        round_.apply(event)
    if round_.status is TuningStatus.STOPPING:
        round_.restop()
    else:
        round_._begin_stopping(reason, TuningStatus.FAILED)
    round_.maybe_finish()
    return round_.freeze()


def outstanding_actions(state: TuningState) -> tuple[Action, ...]:
    """Actions a restarted controller must (re)issue: launches not known to have
    started, and stops not known to have ended. Backends make both idempotent."""
    actions: list[Action] = []
    hb = state.config.hyperband if state.config.strategy is Strategy.HYPERBAND else None
    for index in state.active:
        trial = state.trials[index]
        if trial.status is TrialStatus.PENDING:
            actions.append(_launch_action(trial, hb.barrier_levels(trial.bracket) if hb else ()))
        elif trial.status is TrialStatus.STOPPING:
            actions.append(Stop(trial.trial_id, trial.attempt, trial.stop_reason or "stop requested"))
        elif hb is not None and trial.budget is not None and trial.resource in hb.barrier_levels(trial.bracket):
            actions.append(RungVerdict(trial.trial_id, trial.attempt, trial.resource, trial.budget))  # rewritten: same
    return tuple(actions)


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


def _launch_action(trial: Trial, rung_levels: tuple[int, ...] = ()) -> Action:
    """The job of the trial's current attempt; ``rung_levels``: where it waits for verdicts (barrier on)."""
    if trial.attempt > 1 and trial.resource > 0 and trial.budget is not None:
        return Resume(trial.trial_id, trial.attempt, trial.hyperparameters, trial.resource, trial.budget, rung_levels)
    return Launch(trial.trial_id, trial.attempt, trial.hyperparameters, trial.budget, rung_levels)


class _Round:
    """The mutable working copy of one decision round; ``freeze`` makes the new state."""

    def __init__(self, state: TuningState, now: float, sampler: Sampler) -> None:
        self.state = state
        self.now = now
        self.sampler = sampler
        config = state.config
        self.config = config
        self.objective = config.objective
        self.hb = config.hyperband if config.strategy is Strategy.HYPERBAND else None
        self.promotion = self.hb is not None and self.hb.variant is HyperbandVariant.PROMOTION
        self.eta = self.hb.reduction_factor if self.hb else 3
        self.barrier = self.hb is not None and self.hb.rung_barrier_timeout is not None
        self.trials = state.trials  # a PVector: updates share structure with the old state
        self.active = list(state.active)
        self.rungs = [list(bracket) for bracket in state.rungs]
        self.status = state.status
        self.outcome = state.outcome
        self.completion_reason = state.completion_reason
        self.best_index = state.best_index
        self.best_key = state.best_key
        self.best_seen = state.best_seen
        self.best_keys = state.best_keys
        self.not_improving = state.not_improving
        self.n_ended = state.n_ended
        self.n_failed = state.n_failed
        self.ended_billable = state.ended_billable_seconds
        self.retained = state.retained_billable_seconds
        self.finish: Finish | None = state.finish
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
            status=self.status,
            outcome=self.outcome,
            completion_reason=self.completion_reason,
            trials=self.trials,
            active=tuple(self.active),
            rungs=tuple(tuple(bracket) for bracket in self.rungs),
            best_index=self.best_index,
            best_key=self.best_key,
            best_seen=self.best_seen,
            best_keys=self.best_keys,
            not_improving=self.not_improving,
            n_ended=self.n_ended,
            n_failed=self.n_failed,
            ended_billable_seconds=self.ended_billable,
            retained_billable_seconds=self.retained,
            finish=self.finish,
            decisions=tuple(self.decisions),
            decision_count=self.state.decision_count + len(self.decisions),
            revision=self.state.revision + 1,
        )
        return state, tuple(self.actions)

    def raw(self, key: float | None) -> float | None:
        """The metric value of a key (as a decision shows it)."""
        return None if key is None else self.objective.value(key)

    # ------------------------------------------------------------ events

    def apply(self, event: Event) -> None:
        index = trial_index(event.trial_id)
        if index is None or index >= len(self.trials):
            self.decide_("ignore", event.trial_id, f"{event.kind} for a trial this tuning job does not have")
            return
        trial = self.trials[index]
        if isinstance(event, WarmPoolReleased):  # billing only; it comes after its job ended
            self.retained += event.retained_seconds
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
        self.ended_billable += billable
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
        if self.hb is not None and trial.status is TrialStatus.IN_PROGRESS:
            trial = self._record_rungs(trial, resource, value, key)
        return trial

    def _record_rungs(self, trial: Trial, resource: int, value: float, key: float) -> Trial:
        assert self.hb is not None
        bracket = self.rungs[trial.bracket]
        j = trial.rung_index
        while j < len(bracket) and resource >= bracket[j].level:
            rung = bracket[j]
            rung = bracket[j] = evolve(rung, keys=rung.keys.insert(key))
            n, position = len(rung.keys), rung.rank(key)
            facts = {"rung": rung.level, "value": value, "cutoff": self.raw(rung.cutoff(self.eta)), "rank": position,
                     "n": n}
            j += 1
            judged = not self.promotion and rung.level < self.hb.max_resource
            if judged and not keeps(position, n, self.eta, self.hb.min_rung_results):
                reason = _stop_reason(position, n, rung.level, self.eta, self.hb.min_rung_results)
                trial = evolve(trial, rung_index=j, status=TrialStatus.STOPPING, stop_reason=reason,
                               stop_resource=trial.resource)
                self.actions.append(Stop(trial.trial_id, trial.attempt, reason))
                self.decide_("stop", trial.trial_id, **facts)
                return trial
            self.decide_("continue" if judged else "record", trial.trial_id, **facts)
            if judged and self.barrier and trial.budget is not None:
                self.actions.append(RungVerdict(trial.trial_id, trial.attempt, rung.level, trial.budget))
        trial = evolve(trial, rung_index=j)
        if self.barrier and self.promotion and trial.budget is not None and resource == trial.budget < bracket[-1].level:
            trial = self._promote_in_place(trial, key)
        return trial

    def _promote_in_place(self, trial: Trial, key: float) -> Trial:
        """Promotion variant with the barrier: the trial waits at its budget's rung; promote it there, or end it."""
        bracket = self.rungs[trial.bracket]
        j = trial.rung_index - 1
        rung, level = bracket[j], bracket[j].level
        n = len(rung.keys)
        position = rung.rank(key)
        paused = self._best_paused()
        if position > promote_count(n, self.eta) or (paused is not None and paused[:2] < (-level, key)):
            self.actions.append(RungVerdict(trial.trial_id, trial.attempt, level, level))  # ends here: it pauses
            return trial
        to_level = bracket[j + 1].level
        self.actions.append(RungVerdict(trial.trial_id, trial.attempt, level, to_level))
        self.decide_("promote", trial.trial_id, f"to rung {to_level} in place", rung=level, value=self.raw(key),
                     cutoff=self.raw(rung.cutoff(self.eta, paused=True)), rank=position, n=n)
        return evolve(trial, budget=to_level)

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
        hb = self.hb
        pausing = (
            self.promotion
            and hb is not None
            and trial.status is TrialStatus.IN_PROGRESS
            and trial.budget is not None
            and trial.budget < hb.max_resource
            and trial.rung_index > 0
            and trial.resource >= trial.budget
        )
        if trial.status is TrialStatus.STOPPING:  # it finished before the stop landed: still a stopped trial
            self._end(index, trial, TrialStatus.STOPPED, f"{trial.stop_reason} (the job ended before the stop landed)")
            return
        if self._missed_in_place_promotion(trial):
            trial = evolve(trial, status=TrialStatus.PENDING, attempt=trial.attempt + 1, end_time=None)
            self.trials = self.trials.set(index, trial)
            self._job_ended(index, trial)
            self.actions.append(self._launch_action(trial))
            message = f"to rung {trial.budget} as a new job: its job ended before the in-place promotion reached it"
            self.decide_("promote", trial.trial_id, message, rung=trial.resource, value=trial.last_value)
            return
        if not pausing:
            self._end(index, trial, TrialStatus.COMPLETED, None)
            return
        j = trial.rung_index - 1
        rung = self.rungs[trial.bracket][j]
        key = self.objective.key(trial.last_value if trial.last_value is not None else math.nan)
        self.rungs[trial.bracket][j] = evolve(rung, paused=rung.paused.insert((key, index)))
        self.trials = self.trials.set(index, evolve(trial, status=TrialStatus.PAUSED))
        self.active.remove(index)
        self._job_ended(index, trial)
        self.decide_("pause", trial.trial_id, rung=rung.level, value=trial.last_value)

    def _missed_in_place_promotion(self, trial: Trial) -> bool:
        """Promotion variant with the barrier: the job ended waiting at the rung below the budget it was promoted to."""
        if not (self.barrier and self.promotion and trial.status is TrialStatus.IN_PROGRESS) or trial.budget is None:
            return False
        bracket = self.rungs[trial.bracket]
        j = trial.rung_index - 1
        return 0 <= j < len(bracket) - 1 and trial.resource == bracket[j].level and trial.budget == bracket[j + 1].level

    def _launch_action(self, trial: Trial) -> Action:
        return _launch_action(trial, self.hb.barrier_levels(trial.bracket) if self.hb else ())

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
            self.actions.append(self._launch_action(trial))
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
            self._job_ended(index, trial)
        self.decide_(status.value.lower(), trial.trial_id, reason or "", value=trial.last_value)

    def _job_ended(self, index: int, trial: Trial) -> None:
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
            self._begin_stopping(reason, TuningStatus.FAILED if self.fail_reason else TuningStatus.COMPLETED)

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
        return self.ended_billable + self.retained + sum(self.now - start for start in running if start is not None)

    def _begin_stopping(self, reason: str, outcome: TuningStatus) -> None:
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
            if self.promotion and self._promote():
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
        bracket, budget = 0, self.config.max_resource
        if self.hb is not None:
            n_brackets = len(self.rungs)
            if n_brackets > 1:
                weights = bracket_weights(len(self.rungs[0]), n_brackets, self.eta)
                bracket = bracket_for(self.state.job_name, trial_id, weights)
            if self.promotion:
                budget = self.rungs[bracket][0].level
        trial = Trial(trial_id, hyperparameters, bracket, TrialStatus.PENDING, budget, created_time=self.now)
        self.trials = self.trials.append(trial)
        self.active.append(index)
        self.actions.append(self._launch_action(trial))
        self.decide_("launch", trial_id, f"bracket {bracket}, budget {budget}, {_compact(hyperparameters)}")
        return True

    def _best_paused(self) -> tuple[int, float, int, int] | None:
        """The paused trial a freed slot promotes: (-level, key, bracket, rung index) of the best, or None."""
        best: tuple[int, float, int, int] | None = None
        for b, bracket in enumerate(self.rungs):
            for j in range(len(bracket) - 1):
                rung = bracket[j]
                if not rung.paused:
                    continue
                key = rung.paused[0][0]
                if keeps(rung.rank(key), len(rung.keys), self.eta, self.hb.min_rung_results, paused=True):
                    candidate = (-rung.level, key, b, j)
                    best = candidate if best is None or candidate < best else best
        return best

    def _promote(self) -> bool:
        best = self._best_paused()
        if best is None:
            return False
        _, key, b, j = best
        rung = self.rungs[b][j]
        first = rung.paused[0]
        index = first[1]
        self.rungs[b][j] = evolve(rung, paused=rung.paused.remove(first))
        to_level = self.rungs[b][j + 1].level
        trial = evolve(self.trials[index], status=TrialStatus.PENDING, attempt=self.trials[index].attempt + 1)
        trial = evolve(trial, budget=to_level, end_time=None)
        self.trials = self.trials.set(index, trial)
        self.active.append(index)
        self.actions.append(self._launch_action(trial))
        n = len(rung.keys)
        self.decide_(
            "promote", trial.trial_id, f"to rung {to_level}", rung=rung.level, value=self.raw(key),
            cutoff=self.raw(rung.cutoff(self.eta, paused=True)), rank=rung.rank(key), n=n,
        )
        return True

    # ------------------------------------------------------------ finishing

    def maybe_finish(self) -> None:
        if self.status is TuningStatus.IN_PROGRESS and not self.active:
            self._begin_stopping(self.exhausted_reason or "no trial left to run", TuningStatus.COMPLETED)
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


def _stop_reason(position: int, n: int, level: int, eta: int, min_results: int) -> str:
    """Why the rung rule (:func:`hb_core.rungs.keeps`) stopped the value of rank ``position`` among ``n``."""
    if n < min_results:
        return f"rung {level} holds {n} of the MinRungResults={min_results} values it needs before it keeps a trial"
    return f"rank {position} of {n} at rung {level} is outside the top 1/{eta}"


def _compact(hyperparameters: Any) -> str:
    parts = []
    for name, value in hyperparameters.items():
        parts.append(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}")
    return " ".join(parts)
