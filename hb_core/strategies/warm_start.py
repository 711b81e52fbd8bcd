"""Warm start (``WarmStartConfig``): what parent tuning jobs teach a new one.

Pure functions of the parents' states. The runner reads those states from the
parents' state stores once, when it creates the job, and passes them in; what
they teach is then part of the new job's state, so a decision never reads a
parent again (a parent that changes or goes away later changes nothing):

- :func:`prior_observations` turns the parents' trials into observations that
  a model-based sampler folds into its data
  (``make_sampler(config, prior=...)``), so the model is active from the first
  trial when the parents give it enough points. :func:`warm_prior` picks the
  ones a config's sampler uses; the runner keeps them in
  :attr:`~hb_core.state.TuningState.prior`, and
  :func:`hb_core.controller.decide` builds its sampler from them.
- :func:`seed_rungs` (``IdenticalDataAndAlgorithm`` only) inserts the parents'
  values into the new job's rungs, so the first trials are judged against the
  parents' results instead of passing empty rungs.

Which parent trials count (both functions):

- not failed, with at least one reported value;
- ``IdenticalDataAndAlgorithm``: the configuration lies in the new space
  (``space.contains``): a parent with different ranges contributes the
  configurations inside the new ranges;
- ``TransferLearning``: the configuration, restricted to the new space's
  hyperparameters (names the new job no longer tunes are dropped), lies in the
  new space;
- with ``objective`` given, parents whose objective (metric and direction)
  differs contribute nothing: their values would mean something else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hb_core.config import Objective, TuningConfig, WarmStartType
from hb_core.rungs import rung_levels
from hb_core.space import HyperparameterValue, SearchSpace
from hb_core.state import PriorObservation, Trial, TrialStatus, TuningState, evolve

__all__ = ["PriorObservation", "prior_observations", "seed_rungs", "warm_prior"]

#: The ``TuningState.extra`` key recording that :func:`seed_rungs` ran (it runs once).
SEEDED_KEY = "warm_start_rungs"


def _fitting(trial: Trial, space: SearchSpace, transfer: bool) -> dict[str, HyperparameterValue] | None:
    """The trial's configuration as the new space sees it, or None when it does not count."""
    if trial.status is TrialStatus.FAILED or not trial.points:
        return None
    hps = dict(trial.hyperparameters)
    if transfer:
        hps = {name: hps[name] for name in space.names if name in hps}
    return hps if space.contains(hps) else None


def _same_objective(parent: TuningState, objective: Objective | None) -> bool:
    return objective is None or parent.config.objective == objective


def prior_observations(
    parent_states: Sequence[TuningState],
    space: SearchSpace,
    *,
    warm_start_type: WarmStartType = WarmStartType.IDENTICAL_DATA_AND_ALGORITHM,
    objective: Objective | None = None,
    levels: Sequence[int] | None = None,
) -> list[PriorObservation]:
    """The parents' observations for a new job over ``space``, parents in order, trials by index.

    Without ``levels``: one observation per counted trial, its last point.
    With ``levels`` (the new job's rung levels): one per level the trial
    reached, valued at that level (a rung value, as the model-based Hyperband
    samplers use them).
    """
    transfer = warm_start_type is WarmStartType.TRANSFER_LEARNING
    result: list[PriorObservation] = []
    for parent in parent_states:
        if not _same_objective(parent, objective):
            continue
        for trial in parent.trials:
            hps = _fitting(trial, space, transfer)
            if hps is None:
                continue
            if levels is None:
                result.append(PriorObservation(hps, trial.points[-1][1], trial.points[-1][0]))
                continue
            for level in levels:
                value = trial.value_at(level)
                if value is not None:
                    result.append(PriorObservation(hps, value, level))
    return result


def seed_rungs(state: TuningState, parent_states: Sequence[TuningState]) -> TuningState:
    """``state`` with the parents' rung values inserted into every rung of every bracket.

    For ``IdenticalDataAndAlgorithm`` (same data and algorithm: the values are
    comparable). Returns ``state`` unchanged when the job has no rungs, its
    warm start is ``TransferLearning``, or it was seeded already
    (``state.extra[SEEDED_KEY]`` records the count inserted, so a restart does
    not insert twice). Parents with another objective are skipped.
    """
    warm = state.config.warm_start
    if not state.rungs or SEEDED_KEY in state.extra:
        return state
    if warm is not None and warm.warm_start_type is WarmStartType.TRANSFER_LEARNING:
        return state
    space, objective = state.config.space, state.config.objective
    counted = [
        trial
        for parent in parent_states
        if _same_objective(parent, state.config.objective)
        for trial in parent.trials
        if _fitting(trial, space, False) is not None
    ]
    inserted = 0
    brackets = []
    for bracket in state.rungs:
        rungs = []
        for rung in bracket:
            values = [trial.value_at(rung.level) for trial in counted]
            keys = [objective.key(value) for value in values if value is not None]
            inserted += len(keys)
            merged = type(rung.keys)(sorted([*rung.keys, *keys]))  # the rung's own sorted-sequence type
            rungs.append(replace(rung, keys=merged))
        brackets.append(tuple(rungs))
    return evolve(state, rungs=tuple(brackets), extra={**state.extra, SEEDED_KEY: inserted})


def warm_prior(config: TuningConfig, parent_states: Sequence[TuningState]) -> tuple[PriorObservation, ...]:
    """The parents' observations the config's sampler learns from (``make_sampler(config, prior=...)``).

    Model-based Hyperband samplers get one observation per rung level a parent
    trial reached (rung values); the Bayesian strategy gets each trial's last
    value. Random and Grid ignore the prior.
    """
    warm = config.warm_start
    kind = warm.warm_start_type if warm is not None else WarmStartType.IDENTICAL_DATA_AND_ALGORITHM
    hb = config.hyperband
    levels = rung_levels(hb.min_resource, hb.max_resource, hb.reduction_factor) if hb is not None else None
    return tuple(prior_observations(parent_states, config.space, warm_start_type=kind, objective=config.objective,
                                    levels=levels))
