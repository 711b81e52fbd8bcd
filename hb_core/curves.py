"""Built-in learning-curve families for simulations (``hb-tune simulate``, ``plan``, tests).

- ``mlp``: a stand-in for the seed article's MLP (hyperparameters ``units``,
  ``learning_rate``, ``l2``, ``batch_size``). Final accuracy peaks near
  learning_rate 3e-3, small l2, many units and mid-size batches; a curve rises
  as ``1 - exp(-r / tau)`` with tau shorter for larger learning rates, plus a
  small deterministic noise per (config, epoch). Its cost per epoch is the
  numpy cost model measured on this kind of machine
  (``0.30 (u/1000)^2 + (4000/b)(58e-6 + 1.7e-3 (u/1000)^2)`` seconds).
- ``quadratic``: any search space; quality falls with the distance of the
  config's unit-cube encoding from an optimum drawn from the seed.
- ``constant``: any search space; the value does not change with resource, so
  the best config sampled must reach MaxResource under ASHA (a property test).

Every curve is a pure function of (hyperparameters, resource).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from hb_core.rungs import stable_unit
from hb_core.space import HyperparameterValue, SearchSpace

__all__ = ["CURVES", "make_curve", "mlp_accuracy", "mlp_epoch_seconds"]

Curve = Callable[[dict[str, HyperparameterValue], int], float]
Cost = Callable[[dict[str, HyperparameterValue], int], float]


def _noise(hyperparameters: Mapping[str, HyperparameterValue], *key: object) -> float:
    """Deterministic noise in [-1, 1) for a config (and any extra key)."""
    text = ",".join(f"{k}={hyperparameters[k]!r}" for k in sorted(hyperparameters))
    return 2.0 * stable_unit(text, *map(str, key)) - 1.0


def mlp_accuracy(hyperparameters: Mapping[str, HyperparameterValue], epoch: int) -> float:
    """Validation accuracy of the simulated MLP after ``epoch`` epochs."""
    lr = float(hyperparameters.get("learning_rate", 3e-3))
    l2 = float(hyperparameters.get("l2", 1e-5))
    units = float(hyperparameters.get("units", 100))
    batch = float(hyperparameters.get("batch_size", 50))
    q_lr = math.exp(-(((math.log10(lr) - math.log10(3e-3)) / 0.9) ** 2))
    q_l2 = 1.0 / (1.0 + (l2 / 1e-2) ** 1.5)
    q_units = 1.0 - 0.25 * math.exp(-units / 60.0)
    q_batch = 0.92 + 0.08 * math.exp(-(((math.log10(batch) - math.log10(40.0)) / 0.8) ** 2))
    final = 0.5 + 0.475 * q_lr * q_l2 * q_units * q_batch + 0.004 * _noise(hyperparameters)
    tau = min(60.0, max(0.4, 2.5 * math.sqrt(3e-3 / lr) * math.sqrt(batch / 50.0)))
    accuracy = 0.5 + (final - 0.5) * (1.0 - math.exp(-epoch / tau)) + 0.002 * _noise(hyperparameters, epoch)
    return min(1.0, max(0.0, float(accuracy)))


def mlp_epoch_seconds(hyperparameters: Mapping[str, HyperparameterValue], epoch: int) -> float:
    """Seconds per epoch of the numpy MLP on one core (the measured cost model)."""
    u = float(hyperparameters.get("units", 100)) / 1000.0
    b = float(hyperparameters.get("batch_size", 50))
    return 0.30 * u * u + (4000.0 / b) * (58e-6 + 1.7e-3 * u * u)


def _quadratic(space: SearchSpace, seed: int) -> Curve:
    optimum = np.random.default_rng([seed, 7]).uniform(0.2, 0.8, size=space.dimensions)

    def curve(hyperparameters: dict[str, HyperparameterValue], resource: int) -> float:
        distance = float(np.sum((space.encode(hyperparameters) - optimum) ** 2)) / max(1, space.dimensions)
        final = math.exp(-distance / 0.05)
        return final * (1.0 - math.exp(-resource / 3.0)) + 0.01 * _noise(hyperparameters, resource)

    return curve


def _constant(space: SearchSpace, seed: int) -> Curve:
    def curve(hyperparameters: dict[str, HyperparameterValue], resource: int) -> float:
        return _noise(hyperparameters, seed)

    return curve


def _unit_cost(hyperparameters: dict[str, HyperparameterValue], resource: int) -> float:
    return 1.0


CURVES = ("mlp", "quadratic", "constant")


def make_curve(name: str, space: SearchSpace, seed: int = 0) -> tuple[Curve, Cost]:
    """The (objective, cost) pair of a built-in curve family for ``space``."""
    if name == "mlp":
        return mlp_accuracy, mlp_epoch_seconds
    if name == "quadratic":
        return _quadratic(space, seed), _unit_cost
    if name == "constant":
        return _constant(space, seed), _unit_cost
    raise ValueError(f"curve must be one of {', '.join(CURVES)}, but got {name!r}")
