"""Multi-fidelity model-based Hyperband: one Gaussian process over (configuration, rung level).

:class:`JointGPSampler` (``Sampler: MultiFidelityGP``) shares the coin, the
warm-start prior and the random fallback of
:class:`~hb_core.strategies.model_based.RungModelSampler`; its terms (rung
value, ``RandomFraction``) are those of :mod:`hb_core.strategies.model_based`.
Unlike the rung-GP sampler, it learns from the values at every rung
level at once (the class docstring says how).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hb_core.space import SearchSpace
from hb_core.state import TrialStatus
from hb_core.strategies.base import STREAM_EI, trial_rng
from hb_core.strategies.gp import EI_FLOOR, FitMemo, GPFit, Layout, capped, encoded, folded
from hb_core.strategies.model_based import RungModelSampler

if TYPE_CHECKING:
    from hb_core.state import TuningState

__all__ = ["JOINT_MAX_FIT", "JOINT_MAX_OBSERVATIONS", "JointData", "JointGPSampler", "refit_size"]


#: Observations a :class:`JointGPSampler` conditions on, and fits its hyperparameters to (class docstring).
JOINT_MAX_OBSERVATIONS, JOINT_MAX_FIT = 256, 160


def refit_size(n: int, first: int, every_below: int = 64) -> int:
    """The observation count at which the joint GP's hyperparameters were last fitted: ``n`` itself below
    ``every_below`` (small fits are cheap, and early ones change most), then the largest size ``<= n`` in the
    schedule ``every_below * 1.5**k`` (rounded up); 0 below ``first``.

    Refitting only on this schedule (on the earliest observations) keeps the fit a pure function of the
    state that most rounds find in the memo: eight large fits in a 1,000-observation job.
    """
    if n < first:
        return 0
    if n < every_below:
        return n
    size, last = every_below, every_below
    while size <= n:
        last = size
        size = math.ceil(size * 1.5)
    return last


@dataclass(frozen=True)
class JointData:
    """Every rung value as one observation of ``f(x, t)``: ``x`` in the unit cube plus ``t`` (the rung's fidelity
    coordinate, ``log(level / min) / log(max / min)``) as the last column; ``y`` folded; ``order`` sorts them by the
    time they were reported (warm-start ones first); ``levels`` is each one's rung level."""

    x: np.ndarray
    y: np.ndarray
    levels: np.ndarray
    order: np.ndarray
    pending: np.ndarray
    tried: frozenset[tuple[tuple[str, object], ...]]


class JointGPSampler(RungModelSampler):
    """One Gaussian process over (configuration, fidelity), fitted to every rung value (``Sampler: MultiFidelityGP``).

    In the spirit of MOBSTER (Klein et al., 2020; Syne Tune's ``MOBSTER``): one joint model learns from every rung,
    so the many cheap rung-1 values inform where the few full-fidelity ones will be good, and the model is usable
    after the first few reports, long before a single rung has ``min_points`` of them (BOHB's model level).

    - *Data*: each non-failed trial's rung values at every rung level it reached (:meth:`~hb_core.state.Trial.value_at`), as
      observations at ``(x, t(level))``; warm-start observations at their rung level. Capped at
      ``max_observations`` (per level from the highest down, each level's share the best half and the most
      recent rest, :func:`hb_core.strategies.gp.capped`).
    - *Kernel*: the Matern 5/2 ARD kernel of :mod:`hb_core.strategies.gp` with ``t`` as one more coordinate (its own
      length scale): the correlation between fidelities is learned, as in MOBSTER's ``matern52-res`` kernel.
    - *Hyperparameters*: fitted (marginal likelihood, :func:`hb_core.strategies.gp.fit_gp`) only when the count of
      observations crosses :func:`refit_size`'s schedule, on the earliest ``max_fit`` of them (capped the same
      way); between refits the GP is conditioned on the current data with the last fitted hyperparameters.
    - *Pending*: a running trial is fantasised at its next rung level with the posterior mean (kriging
      believer), so simultaneous launches spread out.
    - *Acquisition*: expected improvement at the *acquisition level*: the highest rung level with at least
      ``min_points`` observations (MOBSTER's default ``resource_acq="bohb"``), over the best value observed or
      believed there. Candidates: uniform draws, and neighbours of the best configurations at that level
      (numeric coordinates jittered, one categorical changed), twice refined around the best candidates.
      A candidate already tried or pending is passed over.

    Before ``min_points`` observations exist anywhere, and whenever EI vanishes or the fit fails, the proposal
    is random (as it is for a share ``RandomFraction`` of trials).
    """

    def __init__(self, space: SearchSpace, levels: Sequence[int], sign: float, *,
                 max_observations: int = JOINT_MAX_OBSERVATIONS, max_fit: int = JOINT_MAX_FIT,
                 n_candidates: int = 256, **kwargs: object) -> None:
        super().__init__(space, levels, sign, **kwargs)  # type: ignore[arg-type]
        self.max_observations = max_observations
        self.max_fit = max_fit
        self.n_candidates = n_candidates
        self.memo = FitMemo()
        d = self.layout.dimensions
        self.joint_layout = Layout(np.append(self.layout.groups, self.layout.n_groups), self.layout.blocks,
                                   np.append(self.layout.numeric, d))
        low, high = self.levels[0], self.levels[-1]
        span = math.log(high / low) if high > low else 1.0
        self._t = {level: math.log(level / low) / span for level in self.levels}

    def joint_data(self, state: TuningState) -> JointData:
        rows: list[np.ndarray] = []
        values: list[float] = []
        levels: list[int] = []
        times: list[float] = []
        for level in self.levels:
            prior_x, prior_values = self._prior[level]
            rows += [np.append(x, self._t[level]) for x in prior_x]
            values += prior_values
            levels += [level] * len(prior_x)
            times += [-math.inf] * len(prior_x)
        pending: list[np.ndarray] = []
        tried = []
        for trial in state.trials:
            tried.append(tuple(sorted(trial.hyperparameters.items())))
            if trial.status is TrialStatus.FAILED:
                continue
            x = encoded(self.space, trial.hyperparameters)
            reached = 0
            for level in self.levels:
                point = trial.point_at(level)
                if point is None:
                    break
                rows.append(np.append(x, self._t[level]))
                values.append(point[1])
                levels.append(level)
                times.append(point[2])
                reached = level
            if trial.status.active:
                upcoming = [level for level in self.levels if level > max(reached, trial.resource)]
                if upcoming:
                    pending.append(np.append(x, self._t[upcoming[0]]))
        d = self.joint_layout.dimensions
        return JointData(np.array(rows, dtype=float).reshape(len(rows), d), folded(values, self.sign),
                         np.array(levels, dtype=int), np.argsort(np.array(times), kind="stable"),
                         np.array(pending, dtype=float).reshape(len(pending), d), frozenset(tried))

    def _capped(self, data: JointData, among: np.ndarray, limit: int) -> np.ndarray:
        """Indices (into ``data``) kept of ``among``: per level from the highest down, an equal share of what is left."""
        kept: list[np.ndarray] = []
        left = limit
        present = [level for level in reversed(self.levels) if np.any(data.levels[among] == level)]
        for k, level in enumerate(present):
            mine = among[data.levels[among] == level]
            share = left // (len(present) - k)
            chosen = mine[capped(len(mine), data.y[mine], share)]
            kept.append(chosen)
            left -= len(chosen)
        return np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=int)

    def _model_point(self, state: TuningState, index: int) -> np.ndarray | str | None:
        data = self.joint_data(state)
        n = len(data.y)
        counts = {level: int(np.sum(data.levels == level)) for level in self.levels}
        enough = [level for level in self.levels if counts[level] >= self.min_points]
        if not enough:
            return None
        acq_level = enough[-1]
        # Hyperparameters: fitted on the earliest observations, at the last size of the refit schedule.
        first = data.order[: refit_size(n, self.min_points)]
        fit_rows = self._capped(data, np.sort(first), self.max_fit)
        hyper = self.memo.fit(data.x[fit_rows], data.y[fit_rows], self.joint_layout, state.seed)
        if isinstance(hyper, str):
            return hyper
        keep = self._capped(data, np.arange(n), self.max_observations)
        x, y = data.x[keep], data.y[keep]
        y_mean, y_scale = float(np.mean(y)), float(np.std(y))
        if not y_scale > 0.0:
            return "all observed values are equal"
        ys = (y - y_mean) / y_scale
        at_acq = data.levels[keep] == acq_level
        fit = GPFit.build(x, ys, hyper.lengthscales, hyper.signal, hyper.noise, float(np.max(ys[at_acq])),
                          y_mean, y_scale)
        if fit is None:
            return "the GP covariance is not positive definite, even with jitter"
        if len(data.pending):  # kriging believer at each running trial's next rung
            believed, _ = fit._standardized(data.pending)
            at = np.isclose(data.pending[:, -1], self._t[acq_level])
            best = max(fit.best, float(np.max(believed[at]))) if np.any(at) else fit.best
            conditioned = GPFit.build(np.vstack([x, data.pending]), np.concatenate([ys, believed]), fit.lengthscales,
                                      fit.signal, fit.noise, best, y_mean, y_scale)
            fit = conditioned if conditioned is not None else fit
        return self._maximize(fit, data, x[at_acq, :-1], ys[at_acq], self._t[acq_level],
                              trial_rng(state.seed, index, STREAM_EI))

    def _maximize(self, fit: GPFit, data: JointData, top_x: np.ndarray, top_y: np.ndarray, t: float,
                  rng: np.random.Generator) -> np.ndarray | str:
        """The best new candidate by EI at fidelity ``t`` (class docstring); a reason when EI vanishes."""
        m = self.n_candidates
        best_x = top_x[np.argsort(-top_y, kind="stable")[:8]]
        candidates = np.vstack([self.layout.random(rng, m), self._neighbours(best_x, rng, m)])
        for _ in range(2):
            ei = fit.expected_improvement(np.column_stack([candidates, np.full(len(candidates), t)]))
            leaders = candidates[np.argsort(-ei, kind="stable")[:8]]
            candidates = np.vstack([leaders, self._neighbours(leaders, rng, m // 2)])
        ei = fit.expected_improvement(np.column_stack([candidates, np.full(len(candidates), t)]))
        if not np.max(ei) > EI_FLOOR:
            return "expected improvement vanishes everywhere (the GP sees no signal it could improve on)"
        for i in np.argsort(-ei, kind="stable")[:64]:
            if ei[i] <= EI_FLOOR:
                break
            point = self.space.encode(self.space.decode(candidates[i]))
            if tuple(sorted(self.space.decode(point).items())) not in data.tried:
                return np.asarray(point)
        return "every EI maximizer is a configuration already tried or pending"

    def _neighbours(self, points: np.ndarray, rng: np.random.Generator, m: int) -> np.ndarray:
        """``m`` neighbours of random rows of ``points``: numeric coordinates jittered (sd 0.05), and one
        hyperparameter (a categorical's block) redrawn at random, with probability 1/2 when numeric ones exist."""
        rows = points[rng.integers(len(points), size=m)].copy()
        numeric = self.layout.numeric
        rows[:, numeric] = np.clip(rows[:, numeric] + rng.normal(0.0, 0.05, size=(m, len(numeric))), 0.0, 1.0)
        blocks = self.layout.blocks
        if blocks:
            change = rng.random(m) < (0.5 if len(numeric) else 1.0)
            which = rng.integers(len(blocks), size=m)
            for b, (start, size) in enumerate(blocks):
                rows_b = change & (which == b)
                rows[rows_b, start : start + size] = np.eye(size)[rng.integers(size, size=int(rows_b.sum()))]
        return rows
