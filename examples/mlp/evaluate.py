#!/usr/bin/env python3
"""Held-out evaluation of the MLP's ``model.npz``, and the data channels a pipeline trains on.

The held-out set is drawn from *the same distribution* as the training data but
never overlaps it. ``train.make_classification`` draws the problem (cluster
centroids, covariances, redundant-feature mixing, column order) and the points
from one generator seeded with ``train.DATA_SEED``. Seeding it differently
would give another problem, not another sample of this one. So
:func:`problem` replays those draws to recover the problem, and
:func:`held_out` samples new points from it with an independent generator
(``HOLDOUT_SEED``). ``tests/examples/test_mlp_evaluate.py`` checks that the
replay rebuilds ``train.builtin_data()`` bit for bit.

Only numpy, the standard library and ``train.py`` (beside this file) are used,
so this file runs wherever ``train.py`` does.

Commands::

    python evaluate.py MODEL            # MODEL: model.npz or the directory holding it; prints metrics JSON
    python evaluate.py --write-channels DIR
        # DIR/{train,validation,full}/: the train and validation channels of train.py --write-data,
        # and ``full`` = train + validation (what the best configuration is retrained on)
"""

import argparse
import importlib.util
import json
import math
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
HOLDOUT_SEED = 7_700_001  # any seed but the data's: the held-out points are independent of train/validation
HOLDOUT_SIZE = 2000
FULL_CHANNEL = "full"


def _train_module() -> types.ModuleType:
    """``train.py`` beside this file, imported under a private name (it is a script, not a package)."""
    module = sys.modules.get("hb_mlp_train")
    if module is None:
        spec = importlib.util.spec_from_file_location("hb_mlp_train", HERE / "train.py")
        if spec is None or spec.loader is None:  # only for a path without a .py loader; train.py has one
            raise ImportError(f"cannot load {HERE / 'train.py'}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["hb_mlp_train"] = module
        spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Problem:
    """What ``make_classification`` draws before it samples points: the classification problem itself.

    - ``centroids[k]``: cluster k's centre (a hypercube vertex) in the informative subspace;
    - ``covariances[k]``: the linear map applied to cluster k's standard normal draws;
    - ``labels[k]``: cluster k's class (``k % n_classes``);
    - ``redundant``: the map from informative to redundant features;
    - ``columns``: the final column permutation.
    """

    centroids: np.ndarray
    covariances: tuple[np.ndarray, ...]
    labels: np.ndarray
    redundant: np.ndarray | None
    columns: np.ndarray
    n_features: int
    flip_y: float
    n_classes: int


def _cluster_sizes(n_samples: int, n_clusters: int) -> list[int]:
    sizes = [n_samples // n_clusters] * n_clusters
    for i in range(n_samples - sum(sizes)):
        sizes[i % n_clusters] += 1
    return sizes


def replay(seed: int | None = None, params: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray, Problem]:
    """Repeat ``train.make_classification``'s draws, in its order: returns (X, y, problem).

    X and y equal ``train.make_classification(seed=seed, **params)``; the test suite checks it.
    Only the defaults of ``train.DATA_PARAMS`` that the MLP uses are supported (no repeated features).
    """
    train = _train_module()
    seed = train.DATA_SEED if seed is None else seed
    p = {"n_classes": 2, "n_repeated": 0, **(train.DATA_PARAMS if params is None else params)}
    if p["n_repeated"]:
        raise ValueError(f"`n_repeated == 0` must hold, but got n_repeated={p['n_repeated']!r}")
    n, n_inf, n_red, n_feat = p["n_samples"], p["n_informative"], p["n_redundant"], p["n_features"]
    n_classes, sep = p["n_classes"], p["class_sep"]
    n_clusters = n_classes * p["n_clusters_per_class"]
    rng = np.random.Generator(np.random.PCG64(seed))

    codes = rng.choice(2 ** n_inf, size=n_clusters, replace=False)
    bits = (codes[:, None] >> np.arange(n_inf)[None, :]) & 1
    centroids = bits.astype(np.float64) * (2.0 * sep) - sep
    X = np.zeros((n, n_feat), dtype=np.float64)
    y = np.zeros(n, dtype=np.int64)
    X[:, :n_inf] = rng.standard_normal((n, n_inf))
    covariances = []
    stop = 0
    for k, size in enumerate(_cluster_sizes(n, n_clusters)):
        start, stop = stop, stop + size
        y[start:stop] = k % n_classes
        A = 2.0 * rng.random((n_inf, n_inf)) - 1.0
        covariances.append(A)
        X[start:stop, :n_inf] = X[start:stop, :n_inf] @ A + centroids[k]
    redundant = None
    if n_red > 0:
        redundant = 2.0 * rng.random((n_inf, n_red)) - 1.0
        X[:, n_inf:n_inf + n_red] = X[:, :n_inf] @ redundant
    if n_feat > n_inf + n_red:
        X[:, n_inf + n_red:] = rng.standard_normal((n, n_feat - n_inf - n_red))
    if p["flip_y"] > 0:
        flip = rng.random(n) < p["flip_y"]
        y[flip] = rng.integers(0, n_classes, size=int(flip.sum()))
    rows = rng.permutation(n)
    columns = rng.permutation(n_feat)
    problem = Problem(centroids, tuple(covariances), np.arange(n_clusters) % n_classes, redundant, columns,
                      n_feat, float(p["flip_y"]), n_classes)
    return X[rows][:, columns].astype(np.float32), y[rows], problem


def sample(problem: Problem, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` new points of ``problem`` from a generator seeded with ``seed`` (balanced clusters, same label noise)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    n_inf = problem.centroids.shape[1]
    n_red = 0 if problem.redundant is None else problem.redundant.shape[1]
    X = np.zeros((n, problem.n_features), dtype=np.float64)
    y = np.zeros(n, dtype=np.int64)
    stop = 0
    for k, size in enumerate(_cluster_sizes(n, len(problem.covariances))):
        start, stop = stop, stop + size
        y[start:stop] = problem.labels[k]
        X[start:stop, :n_inf] = rng.standard_normal((size, n_inf)) @ problem.covariances[k] + problem.centroids[k]
    if n_red and problem.redundant is not None:  # n_red > 0 only with a redundant map
        X[:, n_inf:n_inf + n_red] = X[:, :n_inf] @ problem.redundant
    if problem.n_features > n_inf + n_red:
        X[:, n_inf + n_red:] = rng.standard_normal((n, problem.n_features - n_inf - n_red))
    if problem.flip_y > 0:
        flip = rng.random(n) < problem.flip_y
        y[flip] = rng.integers(0, problem.n_classes, size=int(flip.sum()))
    rows = rng.permutation(n)
    return X[rows][:, problem.columns].astype(np.float32), y[rows]


def held_out(n: int = HOLDOUT_SIZE, seed: int = HOLDOUT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The held-out set: ``n`` fresh points of the training data's problem (deterministic in ``seed``)."""
    if seed == _train_module().DATA_SEED:
        raise ValueError(f"`seed != train.DATA_SEED` must hold (that seed drew train/validation), but got {seed!r}")
    return sample(replay()[2], n, seed)


def _model_path(model: str | os.PathLike[str]) -> Path:
    path = Path(model)
    return path / _train_module().MODEL_FILE if path.is_dir() else path


def evaluate(model: str | os.PathLike[str], n: int = HOLDOUT_SIZE, seed: int = HOLDOUT_SEED) -> dict[str, float]:
    """Metrics of ``model`` (``model.npz`` or its directory) on the held-out set.

    Returns ``accuracy``, ``log_loss`` (mean binary cross-entropy) and ``n``. The features are
    standardised with the mean and std stored in the model, as ``train.py`` did.
    """
    train = _train_module()
    path = _model_path(model)
    with np.load(path, allow_pickle=False) as z:
        params = {k: np.asarray(z[k], dtype=np.float32) for k in train.PARAM_NAMES}
        mean, std = z["feature_mean"], z["feature_std"]
    X, y = held_out(n, seed)
    if X.shape[1] != params["W1"].shape[0]:
        raise ValueError(f"`the model takes {params['W1'].shape[0]} features` must hold, but the held-out set "
                         f"has {X.shape[1]}")
    z = train.forward_logits(params, (X - mean) / std).astype(np.float64)
    log_loss = float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))
    accuracy = float(np.mean((z > 0) == (y == 1)))
    return {"accuracy": accuracy, "log_loss": log_loss if math.isfinite(log_loss) else float("inf"), "n": float(n)}


def write_channels(directory: str | os.PathLike[str]) -> dict[str, str]:
    """``train`` and ``validation`` (``train.py --write-data``) plus ``full`` = both, in ``full/train.npz``."""
    train = _train_module()
    paths = train.write_data(str(directory))
    X_tr, y_tr, X_va, y_va = train.builtin_data()
    full = os.path.join(str(directory), FULL_CHANNEL)
    train._atomic_savez(os.path.join(full, train.TRAIN_FILE), X=np.concatenate([X_tr, X_va]),
                        y=np.concatenate([y_tr, y_va]))
    return {**paths, FULL_CHANNEL: full}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="model.npz, or the directory holding it (SM_MODEL_DIR)")
    parser.add_argument("--n", type=int, default=HOLDOUT_SIZE, help="held-out points")
    parser.add_argument("--seed", type=int, default=HOLDOUT_SEED, help="held-out seed")
    parser.add_argument("--write-channels", metavar="DIR", help="write the train/validation/full channels")
    args = parser.parse_args(argv)
    if args.write_channels:
        print(json.dumps(write_channels(args.write_channels)))
        return 0
    if not args.model:
        parser.error("a MODEL or --write-channels DIR is required")
    print(json.dumps(evaluate(args.model, args.n, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
