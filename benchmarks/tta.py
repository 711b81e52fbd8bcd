"""Time-to-target statistics: censoring at a cap, bootstrap intervals, speedups, best-so-far bands.

Terms used by every benchmark module:

- *run*: one tuning job of one method with one seed. Its *trace* is the
  best-so-far curve, ``[(seconds since the run started, best value), ...]``,
  one point per improvement.
- *time-to-target*: the first time in the trace at which the best value is at
  least the target (maximization). A run that never gets there within its
  *cap* (seconds, or the trials it may start) is *censored*: it counts as
  taking exactly ``cap`` seconds. A censored median is therefore a lower bound,
  and is printed with ``>=``.
- *bootstrap interval*: the 2.5 and 97.5 percentiles of the statistic over
  ``B`` resamples of the runs with replacement. Speedups resample seeds
  jointly when both methods ran the same seeds (paired), independently
  otherwise.

Everything here is a pure function of its arguments; randomness comes from
an explicit ``numpy.random.Generator`` seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Summary",
    "best_so_far",
    "bootstrap_median",
    "censor",
    "oracle_time",
    "quantile_band",
    "spearman",
    "speedup",
    "summarize",
    "time_to_target",
]

Trace = Sequence[tuple[float, float]]
# Samples of seconds (or values): a plain sequence, or the float array that :func:`censor` returns.
Values = Sequence[float] | npt.NDArray[np.float64]
BOOTSTRAP = 2000


def time_to_target(trace: Trace, target: float) -> float:
    """Seconds until the best value first reaches ``target``; ``inf`` when it never does."""
    for time, value in trace:
        if value >= target:
            return float(time)
    return math.inf


def censor(times: Sequence[float], cap: float) -> npt.NDArray[np.float64]:
    """Times with every value beyond ``cap`` (not reached, or reached too late) set to ``cap``."""
    if not cap > 0:
        raise ValueError(f"`cap > 0` must hold, but got cap={cap!r}")
    censored: npt.NDArray[np.float64] = np.minimum(np.asarray(times, dtype=float), float(cap))
    return censored


def bootstrap_median(values: Values, *, n: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float, float]:
    """(median, low, high): the median and its 95% percentile-bootstrap interval."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("`at least one value` must hold, but got none")
    rng = np.random.default_rng(seed)
    medians = np.median(data[rng.integers(0, data.size, size=(n, data.size))], axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(np.median(data)), float(low), float(high)


def speedup(slower: Values, faster: Values, *, paired: bool, n: int = BOOTSTRAP,
            seed: int = 0) -> tuple[float, float, float]:
    """(ratio, low, high): median(slower) / median(faster) with a 95% bootstrap interval.

    Both inputs are censored times. With ``paired`` the two sequences hold the
    same seeds in the same order and are resampled together.
    """
    a, b = np.asarray(slower, dtype=float), np.asarray(faster, dtype=float)
    if paired and a.size != b.size:
        raise ValueError(f"`paired runs have as many seeds` must hold, but got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, a.size, size=(n, a.size))
    ib = ia if paired else rng.integers(0, b.size, size=(n, b.size))
    ratios = np.median(a[ia], axis=1) / np.median(b[ib], axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(np.median(a) / np.median(b)), float(low), float(high)


@dataclass(frozen=True)
class Summary:
    """One method on one task and worker count: censored median time-to-target with its interval."""

    runs: int
    reached: int
    cap: float
    median: float
    low: float
    high: float

    @property
    def fraction(self) -> float:
        return self.reached / self.runs

    @property
    def censored_median(self) -> bool:
        """True when at least half the runs were censored: the median is the cap, a lower bound."""
        return self.median >= self.cap

    def cell(self, digits: int = 0) -> str:
        """``median [low, high]`` with ``>=`` where a value sits at the cap."""
        def fmt(x: float) -> str:
            text = f"{x:,.{digits}f}"
            return f">={text}" if x >= self.cap else text
        return f"{fmt(self.median)} [{fmt(self.low)}, {fmt(self.high)}]"


def summarize(times: Sequence[float], cap: float, *, seed: int = 0) -> Summary:
    """The :class:`Summary` of raw times (``inf`` for runs that missed the target)."""
    censored = censor(times, cap)
    reached = int(np.sum(np.asarray(times, dtype=float) <= cap))
    median, low, high = bootstrap_median(censored, seed=seed)
    return Summary(len(censored), reached, float(cap), median, low, high)


def best_so_far(trace: Trace, grid: np.ndarray, floor: float = math.nan) -> np.ndarray:
    """The trace as a step function sampled at ``grid`` (``floor`` before its first point)."""
    out = np.full(grid.shape, floor, dtype=float)
    if not trace:
        return out
    times = np.array([t for t, _ in trace], dtype=float)
    values = np.maximum.accumulate(np.array([v for _, v in trace], dtype=float))
    index = np.searchsorted(times, grid, side="right") - 1
    have = index >= 0
    out[have] = values[index[have]]
    return out


def quantile_band(traces: Sequence[Trace], grid: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(25th, 50th, 75th percentile) of best-so-far over runs at each grid time."""
    matrix = np.vstack([best_so_far(trace, grid, floor) for trace in traces])
    q1, q2, q3 = np.percentile(matrix, [25, 50, 75], axis=0)
    return q1, q2, q3


def oracle_time(curve: Sequence[float], seconds_per_step: Sequence[float], target: float,
                startup: float = 0.0) -> float:
    """Seconds for one job training a configuration alone until its curve first reaches ``target``."""
    elapsed = startup
    for value, seconds in zip(curve, seconds_per_step, strict=True):
        elapsed += seconds
        if value >= target:
            return elapsed
    return math.inf


def spearman(a: Values, b: Values) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    ra, rb = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(x.size, dtype=float)
    values = x[order]
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], x.size]
    for s, e in zip(starts, ends, strict=True):
        if e - s > 1:
            ranks[order[s:e]] = (s + e - 1) / 2.0
    return ranks
