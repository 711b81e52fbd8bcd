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
the rule of :meth:`Promotion.promote <hb_core.variants.Promotion.promote>` with the arriving trial among the
candidates; else its verdict ends it there and it pauses as without the
barrier. If its job had already ended (its wait timed out) when an in-place
promotion was decided, the promotion becomes a ``Resume``.

Where it is written: this module holds the public calls; one round's working
copy is :class:`hb_core.decision_round.Round`, and what differs between
Random/Grid/Bayesian, the stopping and the promotion variant is one class each
in :mod:`hb_core.variants`.

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

from collections.abc import Sequence
from dataclasses import replace

from hb_core.config import Strategy, TuningConfig
from hb_core.decision_round import CONVERGENCE_TOLERANCE, Round, converged, convergence_window, launch_action
from hb_core.errors import ConfigError
from hb_core.events import Action, Event, RungVerdict, Stop
from hb_core.rungs import rung_levels, stable_unit
from hb_core.state import Rung, TrialStatus, TuningState, TuningStatus
from hb_core.strategies import Sampler, make_sampler
from hb_core.variants import variant_for

__all__ = [
    "CONVERGENCE_TOLERANCE",
    "abort",
    "converged",
    "convergence_window",
    "decide",
    "new_state",
    "outstanding_actions",
]

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
    state: TuningState, events: Sequence[Event], now: float, *, sampler: Sampler | None = None
) -> tuple[TuningState, tuple[Action, ...]]:
    """One decision round. ``sampler`` defaults to the one the config asks for, with the state's warm-start prior."""
    if state.done:
        return replace(state, decisions=()), ()
    round_ = Round(state, now, sampler or make_sampler(state.config, prior=state.prior or ()))
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
    round_ = Round(state, now, make_sampler(state.config))
    for event in events:
        round_.apply(event)
    if round_.status is TuningStatus.STOPPING:
        round_.restop()
    else:
        round_.begin_stopping(reason, TuningStatus.FAILED)
    round_.maybe_finish()
    return round_.freeze()


def outstanding_actions(state: TuningState) -> tuple[Action, ...]:
    """Actions a restarted controller must (re)issue: launches not known to have
    started, and stops not known to have ended. Backends make both idempotent."""
    actions: list[Action] = []
    variant = variant_for(state.config)
    for index in state.active:
        trial = state.trials[index]
        if trial.status is TrialStatus.PENDING:
            actions.append(launch_action(trial, variant.barrier_levels(trial.bracket)))
        elif trial.status is TrialStatus.STOPPING:
            actions.append(Stop(trial.trial_id, trial.attempt, trial.stop_reason or "stop requested"))
        elif trial.budget is not None and trial.resource in variant.barrier_levels(trial.bracket):
            actions.append(RungVerdict(trial.trial_id, trial.attempt, trial.resource, trial.budget))  # rewritten: same
    return tuple(actions)
