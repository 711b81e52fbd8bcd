"""Model-based Hyperband: samplers that learn where good configurations are from rung values.

The scheduler (ASHA) still decides continue/stop/promote; these samplers only
choose the configurations of new trials (``HyperbandStrategyConfig.Sampler``).

Terms:

- *rung value*: the value a trial reported at a rung level: its first point
  whose resource is at or beyond the level (failed trials excluded). Warm-start
  observations count at the highest rung level at or below their resource.
- *model level*: the highest rung level holding at least ``min_points``
  rung values (default ``max(number of hyperparameters + 2, 6)``): the most
  faithful fidelity with enough data, as in BOHB. With no such level the
  proposal is random.
- *random fraction* (``RandomFraction``, default 1/3 as in BOHB): the share of
  proposals drawn at random whatever the model says, decided per trial by a
  coin from ``trial_rng(seed, index, STREAM_COIN)``. It keeps exploring and
  hedges against a misleading model.

Samplers (and :class:`~hb_core.strategies.multi_fidelity.JointGPSampler`,
``Sampler: MultiFidelityGP``, in its own module on the same base class):

- :class:`RungGPSampler` (``Sampler: Bayesian``): the Gaussian process and
  expected improvement of :mod:`hb_core.strategies.gp`, fitted on the rung values
  at the model level. Trials still running below that level are pending
  (kriging believer). The latest ``max_stopped`` trials stopped below it are
  *known*: they have no value there, but proposing them again would waste a
  trial, which a deterministic EI maximizer otherwise does; so the GP is
  conditioned on its own mean there too (their variance collapses; unlike
  pending ones, they do not raise the incumbent).

BOHB's KDE sampler (``Sampler: KDE``) was removed: over 50 paired seeds on
NAS-Bench-201 it was level with random sampling (HB-stop/HB-KDE 0.97x-1.04x)
at 9x the CPU (``benchmarks/discussion-models.md``); a request naming it is
refused (:data:`hb_core.config.REMOVED_SAMPLERS`).

Purity: a proposal is a function of (state, index) and the construction
arguments. A sampler's only mutable parts are its GP fit memo (a pure cache,
:class:`~hb_core.strategies.gp.FitMemo`) and its
:class:`~hb_core.strategies.base.Fallbacks`, where it notes why a model could
not propose (the runner logs each reason once); neither changes a proposal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

import numpy as np

from hb_core.config import TuningConfig
from hb_core.errors import ConfigError
from hb_core.rungs import rung_levels
from hb_core.space import SearchSpace
from hb_core.state import PriorObservation, Trial, TrialStatus
from hb_core.strategies.base import STREAM_COIN, STREAM_EI, STREAM_RANDOM, Config, Fallbacks, trial_rng
from hb_core.strategies.gp import GPProposer, Layout, capped, encoded, folded

if TYPE_CHECKING:
    from hb_core.state import TuningState

__all__ = ["DEFAULT_RANDOM_FRACTION", "RungData", "RungGPSampler", "RungModelSampler", "rung_value"]

DEFAULT_RANDOM_FRACTION = 1.0 / 3.0
MIN_POINTS = 6


#: The value a trial reported at a rung level (:meth:`Trial.value_at <hb_core.state.Trial.value_at>`), by its
#: name in this module's terms.
rung_value = Trial.value_at


class RungModelSampler:
    """The shared part of the model-based Hyperband samplers: the coin, the rung data at the model level, the
    random fallback (:class:`~hb_core.strategies.multi_fidelity.JointGPSampler` subclasses it too)."""

    uses_history = True

    def __init__(self, space: SearchSpace, levels: Sequence[int], sign: float, *,
                 random_fraction: float = DEFAULT_RANDOM_FRACTION, prior: Sequence[PriorObservation] = (),
                 min_points: int | None = None) -> None:
        if not 0.0 <= random_fraction <= 1.0:
            raise ConfigError("RandomFraction", "`0 <= RandomFraction <= 1` must hold", random_fraction)
        self.space = space
        self.layout = Layout.of(space)
        self.levels = tuple(sorted(levels))
        self.sign = sign
        self.random_fraction = random_fraction
        self.min_points = min_points if min_points is not None else max(len(space.parameters) + 2, MIN_POINTS)
        self.fallbacks = Fallbacks()
        self._prior: dict[int, tuple[list[np.ndarray], list[float]]] = {level: ([], []) for level in self.levels}
        for observation in prior:
            below = [level for level in self.levels if level <= observation.resource]
            if below and space.contains(observation.hyperparameters):
                xs, values = self._prior[below[-1]]
                xs.append(space.encode(observation.hyperparameters))
                values.append(observation.value)

    @classmethod
    def from_config(cls, config: TuningConfig, prior: Sequence[PriorObservation] = ()) -> Self:
        hb = config.hyperband
        if hb is None:
            raise ConfigError("HyperParameterTuningJobConfig.Strategy", "`Strategy is Hyperband` must hold",
                              config.strategy.value)
        levels = rung_levels(hb.min_resource, hb.max_resource, hb.reduction_factor)
        return cls(config.space, levels, config.objective.sign, random_fraction=hb.random_fraction, prior=prior)

    def rung_data(self, state: TuningState) -> RungData | None:
        """The data at the model level, values folded; None when no level has ``min_points`` values."""
        counted = [t for t in state.trials if t.status is not TrialStatus.FAILED and t.points]
        for level in reversed(self.levels):
            prior_x, prior_values = self._prior[level]
            reached = [(t, v) for t in counted if (v := t.value_at(level)) is not None]
            if len(reached) + len(prior_x) < self.min_points:
                continue
            xs = prior_x + [encoded(self.space, t.hyperparameters) for t, _ in reached]
            y = folded(prior_values + [v for _, v in reached], self.sign)
            below = [t for t in state.trials if t.status is not TrialStatus.FAILED and t.resource < level]
            pending = [encoded(self.space, t.hyperparameters) for t in below if t.status.active]
            stopped = [encoded(self.space, t.hyperparameters) for t in below if not t.status.active]
            return RungData(level, _rows(xs, self.space), y, _rows(pending, self.space), _rows(stopped, self.space))
        return None

    def propose(self, state: TuningState, index: int) -> Config | None:
        if trial_rng(state.seed, index, STREAM_COIN).random() >= self.random_fraction:
            point = self._model_point(state, index)
            if point is not None:
                if isinstance(point, str):
                    self.fallbacks.add(point)
                else:
                    proposal = self.space.decode(point)
                    # A configuration already tried teaches nothing new, and duplicates tie at every rung:
                    # on all-categorical spaces a collapsed model would keep proposing the same one.
                    if not any(dict(t.hyperparameters) == proposal for t in state.trials):
                        return proposal
        return self.space.sample(trial_rng(state.seed, index, STREAM_RANDOM))

    def _model_point(self, state: TuningState, index: int) -> np.ndarray | str | None:
        """The model's unit-cube proposal, a reason it has none, or None when there is too little data."""
        data = self.rung_data(state)
        return None if data is None else self._from_model(state, index, data)

    def _from_model(self, state: TuningState, index: int, data: RungData) -> np.ndarray | str:
        raise NotImplementedError


@dataclass(frozen=True)
class RungData:
    """What a model learns from at the model ``level``: ``x`` (unit cube) and folded values ``y`` of the
    trials that reached it; ``pending``: running trials below it; ``stopped``: ended (or paused) trials
    that never reached it, oldest first."""

    level: int
    x: np.ndarray
    y: np.ndarray
    pending: np.ndarray
    stopped: np.ndarray


def _rows(points: list[np.ndarray], space: SearchSpace) -> np.ndarray:
    return np.array(points, dtype=float).reshape(len(points), space.dimensions)


class RungGPSampler(RungModelSampler):
    """GP + EI on the rung values at the model level (``Sampler: Bayesian``), pending-aware."""

    def __init__(self, space: SearchSpace, levels: Sequence[int], sign: float, *, max_observations: int = 500,
                 max_stopped: int = 100, proposer: GPProposer | None = None, **kwargs: object) -> None:
        super().__init__(space, levels, sign, **kwargs)  # type: ignore[arg-type]
        self.max_observations = max_observations
        self.max_stopped = max_stopped
        self.proposer = proposer or GPProposer(space)

    def _from_model(self, state: TuningState, index: int, data: RungData) -> np.ndarray | str:
        keep = capped(len(data.y), data.y, self.max_observations)
        stopped = data.stopped[max(0, len(data.stopped) - self.max_stopped) :]
        return self.proposer.propose(data.x[keep], data.y[keep], data.pending, seed=state.seed,
                                     rng=trial_rng(state.seed, index, STREAM_EI), known=stopped)
