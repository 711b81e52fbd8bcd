"""Benchmark functions for the Bayesian and model-based Hyperband benchmarks.

- :data:`BRANIN` (2-D, minimum 0.397887 at three points) and :data:`HARTMANN6`
  (6-D on the unit cube, minimum -3.32237), the standard Bayesian
  optimization test functions (Dixon and Szego 1978; Jones et al. 1998).
- :func:`learning_curve`: a family of learning curves whose value at
  MaxResource *is* the benchmark function and which improves with resource,
  for virtual-time Hyperband runs. Each configuration learns at its own
  speed, so early values predict final ones only partly (see the docstring).

Every function is a pure function of (hyperparameters, resource).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BRANIN", "FUNCTIONS", "HARTMANN6", "Benchmark", "learning_curve"]

Hyperparameters = Mapping[str, Any]


@dataclass(frozen=True)
class Benchmark:
    """A function to minimize over a box; ``spread`` is a typical gap between poor and good values."""

    name: str
    bounds: tuple[tuple[float, float], ...]
    minimum: float
    spread: float
    function: Callable[[np.ndarray], float]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"x{i}" for i in range(len(self.bounds)))

    def parameter_ranges(self) -> dict[str, Any]:
        """The AMT ``ParameterRanges`` of the box (continuous, linear)."""
        ranges = [
            {"Name": name, "MinValue": str(lo), "MaxValue": str(hi), "ScalingType": "Linear"}
            for name, (lo, hi) in zip(self.names, self.bounds, strict=True)
        ]
        return {"ContinuousParameterRanges": ranges}

    def __call__(self, hyperparameters: Hyperparameters) -> float:
        return self.function(np.array([float(hyperparameters[name]) for name in self.names]))


def _branin(x: np.ndarray) -> float:
    x1, x2 = float(x[0]), float(x[1])
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array([
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
])
_H_P = 1e-4 * np.array([
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
])


def _hartmann6(x: np.ndarray) -> float:
    return -float(_H_ALPHA @ np.exp(-np.sum(_H_A * (x[None, :] - _H_P) ** 2, axis=1)))


BRANIN = Benchmark("Branin", ((-5.0, 10.0), (0.0, 15.0)), 0.397887, 40.0, _branin)
HARTMANN6 = Benchmark("Hartmann6", ((0.0, 1.0),) * 6, -3.32237, 2.0, _hartmann6)
FUNCTIONS = {b.name: b for b in (BRANIN, HARTMANN6)}


def _unit(key: str) -> float:
    """A number in [0, 1) from a stable hash of ``key``."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2.0**64


def _key(hyperparameters: Hyperparameters) -> str:
    return ",".join(f"{k}={hyperparameters[k]!r}" for k in sorted(hyperparameters))


def learning_curve(
    benchmark: Benchmark, max_resource: int, *, tau: tuple[float, float] = (0.03, 0.4), noise: float = 0.05
) -> Callable[[dict[str, Any], int], float]:
    """The loss after ``r`` units of resource; at ``max_resource`` it is the benchmark value.

    ``loss(h, r) = f(h) + g_h * (1 - p(r)) * (1 + noise * e(h, r))`` where
    ``p(r) = (1 - exp(-r / T)) / (1 - exp(-R / T))`` rises from ~0 to 1 at
    ``R = max_resource``, ``T = tau_h * R`` with ``tau_h`` log-uniform in
    ``tau`` (drawn from a hash of the configuration: fast and slow learners,
    unrelated to their final quality), ``g_h`` uniform in [0.5, 1.5] times the
    benchmark's ``spread`` (also from the hash), and ``e`` deterministic noise
    in [-1, 1).
    Early rungs therefore rank configurations by a mix of quality and speed.
    """
    lo, hi = math.log(tau[0]), math.log(tau[1])

    def objective(hyperparameters: dict[str, Any], resource: int) -> float:
        key = _key(hyperparameters)
        scale = math.exp(lo + (hi - lo) * _unit(key)) * max_resource
        progress = (1.0 - math.exp(-resource / scale)) / (1.0 - math.exp(-max_resource / scale))
        gap = benchmark.spread * (0.5 + _unit(f"{key}/gap"))
        wiggle = 2.0 * _unit(f"{key}/{resource}") - 1.0
        return benchmark(hyperparameters) + gap * (1.0 - progress) * (1.0 + noise * wiggle)

    return objective
