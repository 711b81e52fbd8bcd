"""The Bayesian strategy: a Gaussian process with expected improvement, aware of pending trials.

The GP, its fit and EI are :mod:`hb_core.strategies.gp`'s. Here:

- *observation*: a trial's last reported value (trials with at least one point
  that are neither failed nor still running), and the warm-start prior's
  values at its largest resource; folded with ``Objective.sign``.
- *pending*: a trial still holding a slot (launched, maybe in this very
  round): the GP is conditioned on its own mean there (kriging believer).
- until ``n_initial`` observations exist, and whenever the fit fails or the
  data are degenerate, the proposal is the Random strategy's draw
  (``trial_rng(seed, index, STREAM_RANDOM)``); the reason is recorded in the
  sampler's :class:`~hb_core.strategies.base.Fallbacks` for the runner to log.

Purity: the proposal is a function of (state, index) and the sampler's
construction arguments; its fit memo (:class:`~hb_core.strategies.gp.FitMemo`)
is a pure cache. Cost: O(n^3) per fit, n capped at ``max_observations``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hb_core.space import SearchSpace
from hb_core.state import PriorObservation, TrialStatus
from hb_core.strategies.base import STREAM_EI, STREAM_RANDOM, Config, Fallbacks, trial_rng
from hb_core.strategies.gp import GPProposer, capped, encoded, folded

if TYPE_CHECKING:
    from hb_core.state import TuningState

__all__ = ["BayesianSampler"]


class BayesianSampler:
    """AMT's ``Bayesian`` strategy: GP + EI over all trials' last values, pending-aware (see the module docstring).

    - ``prior``: warm-start observations (:func:`hb_core.strategies.warm_start.prior_observations`);
      those at the largest resource in the prior join the data.
    - ``n_initial``: observations needed before the model is used (default
      ``max(3, number of hyperparameters + 1)``); until then, and whenever the
      fit fails or the data are degenerate, a random proposal (the Random
      strategy's draw).
    - ``max_observations``: cap of the training set (see :func:`~hb_core.strategies.gp.capped`).
    """

    uses_history = True

    def __init__(self, space: SearchSpace, sign: float, *, prior: Sequence[PriorObservation] = (),
                 n_initial: int | None = None, max_observations: int = 500, proposer: GPProposer | None = None) -> None:
        self.space = space
        self.sign = sign
        self.n_initial = n_initial if n_initial is not None else max(3, len(space.parameters) + 1)
        self.max_observations = max_observations
        self.proposer = proposer or GPProposer(space)
        self.fallbacks = Fallbacks()
        top = max((p.resource for p in prior), default=0)
        kept = [p for p in prior if p.resource == top and space.contains(p.hyperparameters)]
        self._prior_x = [space.encode(p.hyperparameters) for p in kept]
        self._prior_values = [p.value for p in kept]

    def observations(self, state: TuningState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, pending): observed points and folded values (prior first), and the pending points."""
        xs, values, pending = list(self._prior_x), list(self._prior_values), []
        for trial in state.trials:
            if trial.status.active:
                pending.append(encoded(self.space, trial.hyperparameters))
            elif trial.status is not TrialStatus.FAILED and trial.points:
                xs.append(encoded(self.space, trial.hyperparameters))
                values.append(trial.points[-1][1])
        return _arrays(xs, folded(values, self.sign), pending, self.space.dimensions)

    def propose(self, state: TuningState, index: int) -> Config | None:
        x, y, pending = self.observations(state)
        if len(y) < self.n_initial:
            return self.space.sample(trial_rng(state.seed, index, STREAM_RANDOM))
        keep = capped(len(y), y, self.max_observations)
        point = self.proposer.propose(x[keep], y[keep], pending, seed=state.seed,
                                      rng=trial_rng(state.seed, index, STREAM_EI))
        if isinstance(point, str):
            self.fallbacks.add(point)
            return self.space.sample(trial_rng(state.seed, index, STREAM_RANDOM))
        return self.space.decode(point)


def _arrays(xs: list[np.ndarray], y: np.ndarray, pending: list[np.ndarray],
            dimensions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def stack(rows: list[np.ndarray]) -> np.ndarray:
        return np.array(rows, dtype=float).reshape(len(rows), dimensions)

    return stack(xs), y, stack(pending)
