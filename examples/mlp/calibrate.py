#!/usr/bin/env python3
"""Calibrate the MLP example: how hard is the target for random configurations?

Samples N random configurations (seeded) from the tuning space of
tuning.json, trains each in-process for the maximum number of epochs with
train.py's own code, and reports

* the fraction of configurations reaching the target validation accuracy at
  any epoch (and for a few neighbouring targets),
* the best accuracy seen,
* the Spearman rank correlation between accuracy at early epochs (1, 3, 9, ...)
  and at the final epoch,
* seconds per epoch (mean / median / max, on however many BLAS threads the
  caller allowed; use OPENBLAS_NUM_THREADS=1 to match one job per core).

Example:
    OPENBLAS_NUM_THREADS=1 python examples/mlp/calibrate.py --n 40 --epochs 27
"""

import argparse
import json
import math
import os
import sys
import time
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as mlp  # noqa: E402  (the example's own training script)

# mirrors ParameterRanges in tuning.json (all log-scaled): name -> (low, high, type)
SPACE: dict[str, tuple[float, float, type[int] | type[float]]] = {
    "units": (10, 1000, int),
    "learning_rate": (1e-4, 0.1, float),
    "l2": (1e-6, 2.0, float),
    "batch_size": (10, 200, int),
}


def sample_configs(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.Generator(np.random.PCG64(seed))
    configs = []
    for _ in range(n):
        c: dict[str, Any] = {}
        for name, (lo, hi, typ) in SPACE.items():
            if typ is int:
                # log-uniform over [lo - 0.5, hi + 0.5) then rounded, as AMT
                # does for logarithmic integer ranges
                v = math.exp(rng.uniform(math.log(lo - 0.5), math.log(hi + 0.5)))
                c[name] = int(min(hi, max(lo, round(v))))
            else:
                c[name] = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        configs.append(c)
    return configs


def rankdata(a: npt.ArrayLike) -> npt.NDArray[np.float64]:
    a = np.asarray(a, dtype=float)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(1, len(a) + 1)
    # average ranks of ties
    vals = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and vals[j + 1] == vals[i]:
            j += 1
        if j > i:
            ranks[order[i:j + 1]] = (i + j + 2) / 2.0
        i = j + 1
    return ranks


def spearman(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    try:
        from scipy.stats import spearmanr
        res = spearmanr(a, b)
        return float(getattr(res, "statistic", res[0]))
    except ImportError:
        ra, rb = rankdata(a), rankdata(b)
        if ra.std() == 0 or rb.std() == 0:
            return float("nan")
        return float(np.corrcoef(ra, rb)[0, 1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--n", type=int, default=40, help="number of random configurations")
    ap.add_argument("--epochs", type=int, default=27, help="max epochs (resource budget)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the configuration sampler")
    ap.add_argument("--target", type=float, default=mlp.TARGET_ACCURACY,
                    help="target validation accuracy (default: train.TARGET_ACCURACY)")
    ap.add_argument("--configs", default=None,
                    help="JSON list of configurations to train instead of random ones "
                         "(e.g. hand-tuned ones), each repeated for every --model-seeds")
    ap.add_argument("--model-seeds", default="0",
                    help="comma-separated model seeds used with --configs (default 0)")
    ap.add_argument("--data", default=None,
                    help="JSON overrides of train.DATA_PARAMS (for exploring difficulty)")
    ap.add_argument("--json-out", default=None, help="write per-configuration curves here")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    data_params = dict(mlp.DATA_PARAMS)
    if args.data:
        data_params.update(json.loads(args.data))
    X_tr, y_tr, X_va, y_va = mlp.builtin_data(data_params)
    X_tr, X_va, _, _ = mlp.standardize(X_tr, X_va)
    data = (X_tr, y_tr, X_va, y_va)

    if args.configs:
        base = json.loads(args.configs)
        seeds = [int(s) for s in args.model_seeds.split(",")]
        configs = [dict(c, seed=s) for c in base for s in seeds]
    else:
        configs = sample_configs(args.n, args.seed)
    curves, secs, cpu = [], [], []
    t_all = time.time()
    for i, c in enumerate(configs):
        hps = dict(c, epochs=args.epochs)
        hps.setdefault("seed", 0)
        t0, c0 = time.time(), time.process_time()
        _, hist = mlp.train(hps, data)
        dt = time.time() - t0
        cpu.append((time.process_time() - c0) / args.epochs)
        curve = [h[0] for h in hist]
        curves.append(curve)
        secs.append(dt / args.epochs)
        if not args.quiet:
            print("[%2d/%d] units=%4d lr=%.2e l2=%.2e batch=%3d  best=%.4f final=%.4f  %.3f s/epoch"
                  % (i + 1, len(configs), c["units"], c["learning_rate"], c["l2"], c["batch_size"],
                     max(curve), curve[-1], dt / args.epochs), file=sys.stderr, flush=True)
    wall = time.time() - t_all

    A = np.array(curves)  # (n, epochs)
    best = A.max(axis=1)
    final = A[:, -1]
    n = len(configs)
    out = []
    out.append("data: %s" % json.dumps(data_params, sort_keys=True))
    out.append("configs: %d (%s), max epochs: %d, target: %.4f"
               % (n, "given by --configs" if args.configs else "random, sampler seed %d" % args.seed,
                  args.epochs, args.target))
    out.append("fraction reaching target at any epoch: %.3f (%d/%d)"
               % ((best >= args.target).mean(), int((best >= args.target).sum()), n))
    out.append("fraction reaching target at the final epoch: %.3f" % (final >= args.target).mean())
    targets = sorted({round(args.target + d, 4) for d in (-0.03, -0.02, -0.01, 0.0, 0.01)})
    out.append("fraction reaching other targets (any epoch): " + ", ".join(
        "%.2f: %.3f" % (t, (best >= t).mean()) for t in targets))
    out.append("best accuracy: %.4f (config %s, at epoch %d)" % (
        best.max(), json.dumps(configs[int(best.argmax())]), int(A[int(best.argmax())].argmax()) + 1))
    q = np.percentile(best, [10, 25, 50, 75, 90])
    out.append("best-accuracy percentiles 10/25/50/75/90: " + " / ".join("%.4f" % v for v in q))
    rc = []
    for e in (1, 3, 9, 27, 81):
        if e < args.epochs:
            rc.append("epoch %d: %.3f" % (e, spearman(A[:, e - 1], final)))
    out.append("Spearman rank correlation with final-epoch accuracy: " + ", ".join(rc))
    # epochs needed by configurations that reach the target
    reach = [int(np.argmax(row >= args.target)) + 1 for row in A if row.max() >= args.target]
    if reach:
        out.append("epoch of first reaching target (configs that do): %s" % sorted(reach))
    s = np.array(secs)
    out.append("seconds per epoch (wall): mean %.4f, median %.4f, max %.4f; total wall %.1f s"
               % (s.mean(), np.median(s), s.max(), wall))
    pc = np.array(cpu)
    out.append("CPU seconds per epoch (process time; less sensitive to other load than wall time): "
               "mean %.4f, median %.4f, max %.4f" % (pc.mean(), np.median(pc), pc.max()))
    top = np.argsort(-best)[:5]
    out.append("top 5 configurations:")
    for i in top:
        c = configs[i]
        out.append("  best=%.4f final=%.4f  units=%d learning_rate=%.2e l2=%.2e batch_size=%d%s"
                   % (best[i], final[i], c["units"], c["learning_rate"], c["l2"], c["batch_size"],
                      " seed=%d" % c["seed"] if "seed" in c else ""))
    print("\n".join(out), flush=True)

    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"data": data_params, "configs": configs, "curves": curves,
                       "seconds_per_epoch": secs, "cpu_seconds_per_epoch": cpu,
                       "target": args.target}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
