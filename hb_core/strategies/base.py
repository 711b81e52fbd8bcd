"""Samplers propose configurations; the scheduler (the controller) decides their fate.

A sampler is a pure function of (state, trial index): each proposal draws from
a ``numpy.random.Generator`` seeded with (tuning job seed, trial index, stream),
so the same trial gets the same configuration in every process and after
restarts, whatever order proposals are asked in.

This module holds what every strategy shares: the :class:`Sampler` protocol,
:func:`trial_rng` and its stream numbers, the plain :class:`RandomSampler`
and :class:`GridSampler`, and :class:`Fallbacks` (why a model-based sampler
proposed at random, for the runner to log).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from hb_core.space import HyperparameterValue, SearchSpace

if TYPE_CHECKING:
    from hb_core.state import TuningState

__all__ = ["Config", "Fallbacks", "GridSampler", "RandomSampler", "Sampler", "fallbacks_of", "trial_rng"]

Config = dict[str, HyperparameterValue]

#: ``trial_rng`` streams, one home so no two uses share one. 0 is the plain random proposal (the Random
#: strategy's draw, which every model-based sampler falls back to); EI: the acquisition's candidates; FIT: a GP
#: fit's restarts (drawn with index 0: a fit depends on the data, not on the trial); COIN: a model-based
#: Hyperband sampler's ``RandomFraction`` coin. (4 was the removed KDE sampler's; do not reuse it.)
STREAM_RANDOM, STREAM_EI, STREAM_FIT, STREAM_COIN = 0, 1, 2, 3


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


def trial_rng(seed: int, index: int, stream: int = STREAM_RANDOM) -> np.random.Generator:
    """The generator for one trial's random choices: derived from (seed, index, stream) only."""
    return np.random.default_rng([seed, index, stream])


class Fallbacks:
    """Why a model-based sampler proposed at random instead of from its model: each reason once per sampler.

    The sampler stays pure (it neither logs nor keeps process-wide state):
    it records the reason here, and whoever drives it (the runner, once per
    decision round) takes the new ones and logs them. A reason does not
    change any proposal. Bounded: one entry per distinct reason, and the
    reasons are a handful of fixed sentences.
    """

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._new: list[str] = []

    def add(self, reason: str) -> None:
        if reason not in self._seen:
            self._seen.add(reason)
            self._new.append(reason)

    def take(self) -> list[str]:
        """The reasons recorded since the last call, each the first time it happened, in order."""
        new, self._new = self._new, []
        return new


def fallbacks_of(sampler: Sampler) -> list[str]:
    """:meth:`Fallbacks.take` of a sampler that records them (model-based ones); [] for any other."""
    notes = getattr(sampler, "fallbacks", None)
    return notes.take() if isinstance(notes, Fallbacks) else []


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
