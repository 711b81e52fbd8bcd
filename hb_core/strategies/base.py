"""Samplers propose configurations; the scheduler (the controller) decides their fate.

A sampler is a pure function of (state, trial index): each proposal draws from
a ``numpy.random.Generator`` seeded with (tuning job seed, trial index), so the
same trial gets the same configuration in every process and after restarts,
whatever order proposals are asked in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from hb_core.config import SamplerType, Strategy, TuningConfig
from hb_core.space import HyperparameterValue, SearchSpace

if TYPE_CHECKING:
    from hb_core.state import TuningState
    from hb_core.warm_start import PriorObservation

__all__ = ["GridSampler", "RandomSampler", "Sampler", "make_sampler", "trial_rng"]

Config = dict[str, HyperparameterValue]


class Sampler(Protocol):
    """Proposes configurations.

    A sampler whose ``uses_history`` is true is given a state that includes
    the trials launched earlier in the same decision round (so a model can
    account for pending trials); others get the state as the round began.
    """

    uses_history: bool

    def propose(self, state: TuningState, index: int) -> Config | None:
        """The configuration of trial ``index``, or None when the space is exhausted."""
        ...


def trial_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """The generator for one trial's random choices: derived from (seed, index, stream) only."""
    return np.random.default_rng([seed, index, stream])


class RandomSampler:
    """Independent uniform draws under each parameter's scaling type."""

    uses_history = False

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def propose(self, state: TuningState, index: int) -> Config | None:
        return self.space.sample(trial_rng(state.seed, index))


class GridSampler:
    """The cartesian product of the categorical values, in declaration order, then exhausted."""

    uses_history = False

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self._size = space.grid_size()
        self._grid: list[Config] | None = None

    def propose(self, state: TuningState, index: int) -> Config | None:
        if index >= self._size:
            return None
        if self._grid is None:
            self._grid = list(self.space.grid())
        return dict(self._grid[index])


def make_sampler(config: TuningConfig, *, prior: Sequence[PriorObservation] = ()) -> Sampler:
    """The sampler a tuning config asks for.

    Grid and Random strategies get :class:`GridSampler` and :class:`RandomSampler`;
    Bayesian gets :class:`hb_core.bayesian.BayesianSampler`; Hyperband gets the
    sampler its ``HyperbandStrategyConfig.Sampler`` names (Random,
    :class:`hb_core.model_based.KDESampler`, :class:`hb_core.model_based.RungGPSampler` or
    :class:`hb_core.model_based.JointGPSampler`).
    ``prior`` (warm-start observations, :func:`hb_core.warm_start.prior_observations`)
    seeds the model-based samplers; the others ignore it.
    """
    if config.strategy is Strategy.GRID:
        return GridSampler(config.space)
    if config.strategy is Strategy.BAYESIAN:
        from hb_core.bayesian import BayesianSampler  # imports this module: import on use

        return BayesianSampler(config.space, config.objective.sign, prior=prior)
    hb = config.hyperband
    if hb is not None and hb.sampler is not SamplerType.RANDOM:
        from hb_core.model_based import JointGPSampler, KDESampler, RungGPSampler

        chosen = {SamplerType.KDE: KDESampler, SamplerType.BAYESIAN: RungGPSampler,
                  SamplerType.MULTI_FIDELITY_GP: JointGPSampler}[hb.sampler]
        return chosen.from_config(config, prior)
    return RandomSampler(config.space)
