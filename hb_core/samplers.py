"""Samplers propose configurations; the scheduler (the controller) decides their fate.

A sampler is a pure function of (state, trial index): each proposal draws from
a ``numpy.random.Generator`` seeded with (tuning job seed, trial index), so the
same trial gets the same configuration in every process and after restarts,
whatever order proposals are asked in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from hb_core.config import Strategy, TuningConfig
from hb_core.space import HyperparameterValue, SearchSpace

if TYPE_CHECKING:
    from hb_core.state import TuningState

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


def make_sampler(config: TuningConfig) -> Sampler:
    """The sampler a tuning config asks for."""
    if config.strategy is Strategy.GRID:
        return GridSampler(config.space)
    return RandomSampler(config.space)
