"""Gaussian-process maths shared by the GP samplers: the kernel, the fit, expected improvement and its maximizer.

Used by :class:`hb_core.strategies.bayesian.BayesianSampler` (the Bayesian
strategy) and the model-based Hyperband samplers of
:mod:`hb_core.strategies.model_based`.

Terms:

- *unit cube*: the encoding of :meth:`hb_core.space.SearchSpace.encode`; the
  GP works there, so every input is in [0, 1] (categoricals one-hot).
- *observation*: a point and its value, folded with ``Objective.sign`` so the
  GP always *maximizes* (:func:`folded`: a NaN or infinite value counts as the
  worst finite one). Outputs are standardized before the fit.
- *pending*: a trial still holding a slot (launched, maybe in this very
  round). The *kriging believer* conditions the GP on its posterior mean at
  the pending points, as if observed (the incumbent included): the mean is
  unchanged, the variance there collapses, so EI there is ~0 and parallel
  proposals spread out.
- *kernel*: Matern 5/2 with one length scale per hyperparameter (ARD; a
  categorical's one-hot block shares one), a signal variance and a noise
  variance. These are fitted by maximizing the log marginal likelihood (plus
  a weak Gamma prior on the length scales, ``LENGTHSCALE_PRIOR``) with
  L-BFGS-B in log space, within bounds, from a default start and ``restarts``
  random ones. A Cholesky that fails gets an escalating jitter.
- *EI*: expected improvement over the best observation by at least ``xi``
  (standardized units), maximized by L-BFGS-B from the best few of a few
  thousand random (and near-incumbent) candidates (the starts optimized
  together as one separable problem, which saves per-call overhead); the
  winner is projected onto the space (integers rounded, categoricals by
  argmax) before it is scored again and proposed. A winner that is a
  configuration already tried or pending is passed over.

Purity: a fit depends only on (seed, data) (its restarts draw from
``trial_rng(seed, 0, STREAM_FIT)``), so it is cached by data in a
:class:`FitMemo` its sampler owns; every other random choice draws from
``trial_rng(seed, index, stream)``. Same state and index, same proposal. Cost:
O(n^3) per fit. No mutable state outlives its owner, except the
:func:`encoded` cache, a bounded pure function cache (see there).

Some 430 lines, one concern: the likelihood's gradient, EI's gradient and the
maximizer share the kernel's private helpers.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize
from scipy.special import ndtr

from hb_core.space import CategoricalParameter, HyperparameterValue, SearchSpace
from hb_core.strategies.base import STREAM_FIT, trial_rng

__all__ = ["FitMemo", "GPFit", "GPProposer", "Layout", "capped", "encoded", "fit_gp", "folded"]

SQRT5 = math.sqrt(5.0)
LOG_2PI = math.log(2.0 * math.pi)
#: Bounds of the fitted hyperparameters (standardized outputs, inputs in [0, 1]).
LENGTHSCALE_BOUNDS = (0.01, 10.0)
SIGNAL_BOUNDS = (0.05, 20.0)
NOISE_BOUNDS = (1e-6, 1.0)
#: Gamma(shape, rate) prior on each length scale (BoTorch's default; mode 1/3, mean 1/2): with a handful of
#: points, the likelihood alone often sends a length scale to its upper bound (the hyperparameter "does not
#: matter"), and EI then places that coordinate arbitrarily, often on a bound.
LENGTHSCALE_PRIOR = (3.0, 6.0)
JITTERS = (0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2)
#: Below this (standardized units) EI is zero for every purpose: the proposal is random instead.
EI_FLOOR = 1e-12

#: Fitted GPs a :class:`FitMemo` keeps (the most recently used).
FIT_MEMO_SIZE = 16
#: Encodings :func:`encoded` keeps (the most recently used).
ENCODED_CACHE_SIZE = 1 << 16


@dataclass(frozen=True)
class Layout:
    """The unit-cube coordinates of a space: which hyperparameter each belongs to, and the one-hot blocks."""

    groups: np.ndarray  # (D,) index of the hyperparameter of each coordinate
    blocks: tuple[tuple[int, int], ...]  # (start, size) of each categorical's one-hot block
    numeric: np.ndarray  # coordinates of the numeric hyperparameters

    @classmethod
    def of(cls, space: SearchSpace) -> Layout:
        groups: list[int] = []
        blocks: list[tuple[int, int]] = []
        for g, parameter in enumerate(space.parameters):
            if isinstance(parameter, CategoricalParameter):
                blocks.append((len(groups), parameter.dimensions))
            groups += [g] * parameter.dimensions
        array = np.array(groups, dtype=int)
        in_block = np.zeros(len(groups), dtype=bool)
        for start, size in blocks:
            in_block[start : start + size] = True
        return cls(array, tuple(blocks), np.flatnonzero(~in_block))

    @property
    def dimensions(self) -> int:
        return len(self.groups)

    @property
    def n_groups(self) -> int:
        return int(self.groups.max()) + 1 if len(self.groups) else 0

    def random(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """``m`` uniform points: numeric coordinates uniform, each one-hot block a random category."""
        x = rng.random((m, self.dimensions))
        for start, size in self.blocks:
            x[:, start : start + size] = np.eye(size)[rng.integers(size, size=m)]
        return x


def _matern(r: np.ndarray) -> np.ndarray:
    s = SQRT5 * r
    return (1.0 + s + s * s / 3.0) * np.exp(-s)


def _matern_slope(r: np.ndarray) -> np.ndarray:
    """``-(dm/dr) / r`` of the Matern 5/2 correlation: ``5/3 (1 + sqrt5 r) exp(-sqrt5 r)``, finite at r = 0."""
    s = SQRT5 * r
    return (5.0 / 3.0) * (1.0 + s) * np.exp(-s)


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
    return np.asarray(np.maximum(d, 0.0))


def _factor(k: np.ndarray) -> np.ndarray | None:
    """The lower Cholesky factor of ``k``, escalating a diagonal jitter on failure; None if all fail."""
    if not np.all(np.isfinite(k)):
        return None
    scale = float(np.mean(np.diag(k)))
    for jitter in JITTERS:
        try:
            return np.asarray(cholesky(k + jitter * scale * np.eye(len(k)), lower=True, check_finite=False))
        except LinAlgError:
            continue
    return None


@dataclass(frozen=True)
class GPFit:
    """A GP conditioned on data, with fixed hyperparameters; outputs standardized internally.

    ``predict`` answers in the original units; ``expected_improvement`` in
    standardized units, over ``best`` (the best *observed* standardized value).
    """

    x: np.ndarray
    y: np.ndarray
    lengthscales: np.ndarray  # per coordinate
    signal: float
    noise: float
    chol: np.ndarray
    alpha: np.ndarray
    best: float
    y_mean: float
    y_scale: float

    @classmethod
    def build(cls, x: np.ndarray, y: np.ndarray, lengthscales: np.ndarray, signal: float, noise: float,
              best: float, y_mean: float, y_scale: float) -> GPFit | None:
        k = signal * _matern(np.sqrt(_sqdist(x / lengthscales, x / lengthscales))) + noise * np.eye(len(x))
        chol = _factor(k)
        if chol is None:
            return None
        alpha = cho_solve((chol, True), y, check_finite=False)
        return cls(x, y, lengthscales, signal, noise, chol, alpha, best, y_mean, y_scale)

    def _cross(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = np.sqrt(_sqdist(xs / self.lengthscales, self.x / self.lengthscales))
        return r, self.signal * _matern(r)

    def _standardized(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, ks = self._cross(xs)
        mu = ks @ self.alpha
        v = solve_triangular(self.chol, ks.T, lower=True, check_finite=False)
        var = np.maximum(self.signal - np.sum(v * v, axis=0), 1e-12)
        return mu, np.sqrt(var)

    def predict(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function (original units, sign folded)."""
        mu, sd = self._standardized(np.atleast_2d(xs))
        return self.y_mean + self.y_scale * mu, self.y_scale * sd

    def expected_improvement(self, xs: np.ndarray, xi: float = 0.0) -> np.ndarray:
        mu, sd = self._standardized(np.atleast_2d(xs))
        z = (mu - self.best - xi) / sd
        return np.asarray(np.maximum(sd * (z * ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)), 0.0))

    def ei_and_gradient(self, xs: np.ndarray, xi: float) -> tuple[np.ndarray, np.ndarray]:
        """EI at each row of ``xs`` (m, D) and its gradient (m, D) in that row."""
        xs = np.atleast_2d(xs)
        r, ks = self._cross(xs)  # (m, n)
        mu = ks @ self.alpha
        kinv_k = cho_solve((self.chol, True), ks.T, check_finite=False)  # (n, m)
        sd = np.sqrt(np.maximum(self.signal - np.sum(ks.T * kinv_k, axis=0), 1e-12))
        # d k(x, x_i) / d x_j = -signal * slope(r_i) * (x_j - x_ij) / l_j^2
        dk = -(self.signal * _matern_slope(r))[:, :, None] * (xs[:, None, :] - self.x[None, :, :]) / self.lengthscales**2
        dmu = np.einsum("mnd,n->md", dk, self.alpha)
        dsd = -np.einsum("mnd,nm->md", dk, kinv_k) / sd[:, None]
        z = (mu - self.best - xi) / sd
        cdf, pdf = ndtr(z), np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        return np.maximum(sd * (z * cdf + pdf), 0.0), cdf[:, None] * dmu + pdf[:, None] * dsd

    def condition(self, pending: np.ndarray, known: np.ndarray | None = None) -> GPFit:
        """Kriging believer: add ``pending`` (and ``known``) with their posterior mean as values; self if that fails.

        The values believed at ``pending`` points count for the incumbent too,
        so where the model expects an improvement at a pending point, EI does
        not stay high at (and right around) that point. ``known`` points
        (tried, with no value to learn from) only lose their variance.
        """
        extra = pending if known is None or len(known) == 0 else np.vstack([pending, known])
        if len(extra) == 0:
            return self
        mu, _ = self._standardized(extra)
        best = max(self.best, float(np.max(mu[: len(pending)]))) if len(pending) else self.best
        fit = GPFit.build(np.vstack([self.x, extra]), np.concatenate([self.y, mu]), self.lengthscales,
                          self.signal, self.noise, best, self.y_mean, self.y_scale)
        return fit if fit is not None else self


def _neg_log_likelihood(theta: np.ndarray, sq: list[np.ndarray], y: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log posterior (marginal likelihood and length-scale prior) and its gradient in
    ``theta = (log l_g..., log signal, log noise)``."""
    n_groups, n = len(sq), len(y)
    ls2 = np.exp(2.0 * theta[:n_groups])
    signal, noise = math.exp(theta[n_groups]), math.exp(theta[n_groups + 1])
    r = np.sqrt(sum(d / l2 for d, l2 in zip(sq, ls2, strict=True)))
    m = _matern(r)
    chol = _factor(signal * m + noise * np.eye(n))
    if chol is None:
        return 1e25, np.zeros_like(theta)
    alpha = cho_solve((chol, True), y, check_finite=False)
    nll = 0.5 * float(y @ alpha) + float(np.sum(np.log(np.diag(chol)))) + 0.5 * n * LOG_2PI
    w = cho_solve((chol, True), np.eye(n), check_finite=False) - np.outer(alpha, alpha)
    common = w * (signal * _matern_slope(r))
    grad = np.empty_like(theta)
    for g in range(n_groups):
        grad[g] = 0.5 * float(np.sum(common * sq[g])) / ls2[g]
    grad[n_groups] = 0.5 * signal * float(np.sum(w * m))
    grad[n_groups + 1] = 0.5 * noise * float(np.trace(w))
    # Gamma(a, b) prior on each length scale, as a density of log l: a log l - b l (+ const).
    a, b = LENGTHSCALE_PRIOR
    lengthscales = np.exp(theta[:n_groups])
    nll -= float(np.sum(a * theta[:n_groups] - b * lengthscales))
    grad[:n_groups] -= a - b * lengthscales
    return nll, grad


def fit_gp(x: np.ndarray, y: np.ndarray, layout: Layout, rng: np.random.Generator, *,
           restarts: int = 2, maxiter: int = 60) -> GPFit | str:
    """Fit the GP to ``(x, y)`` (y to be maximized); a string says why it could not be fitted."""
    if len(y) < 2:
        return "fewer than 2 observations"
    if not np.all(np.isfinite(y)):
        return "no observed value is a finite number"
    y_mean, y_scale = float(np.mean(y)), float(np.std(y))
    if not np.isfinite(y_scale) or y_scale < 1e-12 * max(1.0, abs(y_mean)):
        return "all observed values are equal"
    ys = (y - y_mean) / y_scale
    n_groups = layout.n_groups
    sq = [_sqdist(x[:, layout.groups == g], x[:, layout.groups == g]) for g in range(n_groups)]
    ln = math.log
    bounds = [(ln(LENGTHSCALE_BOUNDS[0]), ln(LENGTHSCALE_BOUNDS[1]))] * n_groups
    bounds += [(ln(SIGNAL_BOUNDS[0]), ln(SIGNAL_BOUNDS[1])), (ln(NOISE_BOUNDS[0]), ln(NOISE_BOUNDS[1]))]
    starts = [np.array([ln(0.3)] * n_groups + [0.0, ln(1e-3)])]
    for _ in range(restarts):
        starts.append(np.concatenate([rng.uniform(ln(0.05), ln(2.0), n_groups),
                                      [rng.uniform(ln(0.5), ln(2.0)), rng.uniform(ln(1e-5), ln(1e-1))]]))
    best: tuple[float, np.ndarray] | None = None
    for start in starts:
        try:
            result = minimize(_neg_log_likelihood, start, args=(sq, ys), jac=True, method="L-BFGS-B",
                              bounds=bounds, options={"maxiter": maxiter})
        except (ValueError, LinAlgError, FloatingPointError):
            continue
        if np.isfinite(result.fun) and result.fun < 1e24 and (best is None or result.fun < best[0]):
            best = (float(result.fun), result.x)
    if best is None:
        return "the GP hyperparameter fit failed"
    theta = best[1]
    lengthscales = np.exp(theta[:n_groups])[layout.groups]
    fit = GPFit.build(x, ys, lengthscales, math.exp(theta[n_groups]), math.exp(theta[n_groups + 1]),
                      float(np.max(ys)), y_mean, y_scale)
    return fit if fit is not None else "the GP covariance is not positive definite, even with jitter"


class FitMemo:
    """:func:`fit_gp` with its restarts drawn from ``trial_rng(seed, 0, STREAM_FIT)``, memoized.

    A pure cache: the fit is a function of (seed, x, y, layout's groups,
    restarts) alone, and the key is a hash of exactly those, so a hit returns
    what a fresh fit would (a restarted controller, with an empty memo, makes
    the same proposals). Bounded: the ``size`` most recently used fits. Owned
    by the sampler that fits (so it lives as long as the sampler: the runner
    keeps one sampler per tuning job, and most of its rounds bring no new
    observation); nothing is shared between samplers or jobs.
    """

    def __init__(self, size: int = FIT_MEMO_SIZE) -> None:
        self.size = size
        self._fits: OrderedDict[bytes, GPFit | str] = OrderedDict()
        self._lock = threading.Lock()  # a runner may decide in a worker thread (``Tuner(offload=True)``)

    def __len__(self) -> int:
        return len(self._fits)

    def fit(self, x: np.ndarray, y: np.ndarray, layout: Layout, seed: int, *, restarts: int = 2) -> GPFit | str:
        parts = (np.int64(seed), np.int64(restarts), layout.groups, x, y)
        key = hashlib.blake2b(b"".join(np.ascontiguousarray(p).tobytes() for p in parts), digest_size=16).digest()
        with self._lock:
            if key in self._fits:
                self._fits.move_to_end(key)
                return self._fits[key]
        fit = fit_gp(x, y, layout, trial_rng(seed, 0, STREAM_FIT), restarts=restarts)
        with self._lock:
            self._fits[key] = fit
            while len(self._fits) > self.size:
                self._fits.popitem(last=False)
        return fit


class GPProposer:
    """Fits a GP (cached by data) and maximizes EI over a space; shared by the GP samplers.

    ``propose`` returns a unit-cube point that decodes to a new configuration,
    or a string saying why there is none (the caller falls back to random).
    """

    def __init__(self, space: SearchSpace, *, n_candidates: int = 2048, n_starts: int = 5, restarts: int = 2,
                 xi: float = 0.01) -> None:
        self.space = space
        self.layout = Layout.of(space)
        self.n_candidates = n_candidates
        self.n_starts = n_starts
        self.restarts = restarts
        self.xi = xi
        self.memo = FitMemo()

    def fit(self, x: np.ndarray, y: np.ndarray, seed: int) -> GPFit | str:
        """The GP fitted to (x, y): see :class:`FitMemo`."""
        return self.memo.fit(x, y, self.layout, seed, restarts=self.restarts)

    def propose(self, x: np.ndarray, y: np.ndarray, pending: np.ndarray, *, seed: int, rng: np.random.Generator,
                known: np.ndarray | None = None) -> np.ndarray | str:
        """A new point given observations (x, y), ``pending`` points and ``known`` ones (see :meth:`GPFit.condition`)."""
        fit = self.fit(x, y, seed)
        if isinstance(fit, str):
            return fit
        return self.maximize_ei(fit.condition(pending, known), rng)

    def maximize_ei(self, fit: GPFit, rng: np.random.Generator) -> np.ndarray | str:
        layout = self.layout
        n_local = self.n_candidates // 4
        candidates = np.vstack([layout.random(rng, self.n_candidates - n_local), self._near_best(fit, rng, n_local)])
        ei = fit.expected_improvement(candidates, self.xi)
        if not np.max(ei) > EI_FLOOR:
            return "expected improvement vanishes everywhere (the GP sees no signal it could improve on)"
        order = np.argsort(-ei, kind="stable")
        finalists = [candidates[i] for i in order[:20]]
        starts = candidates[order[: self.n_starts]]
        scales = np.maximum(ei[order[: self.n_starts]], 1e-300)
        dims = layout.dimensions

        def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
            # The starts are optimized together: the sum of their scaled EIs is separable in them.
            values, grads = fit.ei_and_gradient(flat.reshape(-1, dims), self.xi)
            return -float(np.sum(values / scales)), -(grads / scales[:, None]).ravel()

        result = minimize(objective, starts.ravel(), jac=True, method="L-BFGS-B",
                          bounds=[(0.0, 1.0)] * starts.size, options={"maxiter": 100})
        if np.all(np.isfinite(result.x)):
            finalists = list(np.clip(result.x.reshape(-1, dims), 0.0, 1.0)) + finalists
        projected = np.array([self.space.encode(self.space.decode(z)) for z in finalists])
        scores = fit.expected_improvement(projected, self.xi)
        for i in np.argsort(-scores, kind="stable"):
            if np.min(np.sum((fit.x - projected[i]) ** 2, axis=1)) > 1e-12:
                return np.asarray(projected[i])
        return "every EI maximizer is a configuration already tried or pending"

    def _near_best(self, fit: GPFit, rng: np.random.Generator, m: int) -> np.ndarray:
        """Gaussian perturbations (sd 0.05, numeric coordinates only) of the best few observed points."""
        top = fit.x[np.argsort(-fit.y, kind="stable")[:5]]
        points = top[rng.integers(len(top), size=m)].copy()
        numeric = self.layout.numeric
        points[:, numeric] += rng.normal(0.0, 0.05, size=(m, len(numeric)))
        return np.asarray(np.clip(points, 0.0, 1.0))


@functools.lru_cache(maxsize=ENCODED_CACHE_SIZE)
def _encode(space: SearchSpace, items: tuple[tuple[str, HyperparameterValue], ...]) -> np.ndarray:
    point = space.encode(dict(items))
    point.flags.writeable = False
    return point


def encoded(space: SearchSpace, hyperparameters: Mapping[str, HyperparameterValue]) -> np.ndarray:
    """``space.encode(hyperparameters)``, memoized (read-only): samplers encode every trial on every proposal.

    The one process-wide cache of the strategies, and a pure one: the key is
    the (immutable, hashable) space and the configuration, the value a
    read-only array that is a function of them alone. Bounded at
    ``ENCODED_CACHE_SIZE`` entries (least recently used out; a few hundred
    bytes each), so it cannot change a proposal nor grow without bound.
    """
    return _encode(space, tuple(sorted(hyperparameters.items())))


def folded(values: Sequence[float], sign: float) -> np.ndarray:
    """Values with the objective's sign folded in (larger is better); non-finite ones become the worst finite."""
    y = sign * np.asarray(values, dtype=float)
    finite = np.isfinite(y)
    if finite.any():
        y[~finite] = np.min(y[finite])
    return y


def capped(n: int, y: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the observations kept for the fit: all, or the best half and the most recent rest of ``limit``."""
    if n <= limit:
        return np.arange(n)
    best = np.argsort(-y, kind="stable")[: limit // 2]
    rest = np.setdiff1d(np.arange(n), best)[-(limit - len(best)) :]
    return np.sort(np.concatenate([best, rest]))
