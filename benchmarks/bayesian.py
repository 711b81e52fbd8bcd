"""Benchmark the model-based strategies against their random counterparts, in virtual time.

Two comparisons, each over ``--seeds`` seeds (RandomSeed = 0, 1, ...):

1. **Bayesian vs Random** (AMT strategies, one worker, each trial one full
   evaluation): the number of evaluations until a trial reaches a target
   (the optimum plus a fixed regret) on Branin and Hartmann-6, within a cap
   per strategy (Random's is large because its runs are cheap; runs that miss
   a target are *censored*).
2. **Model-based Hyperband vs Hyperband** (ASHA stopping variant, eta 3,
   MinResource 1, MaxResource 27, 4 workers, at most 750 trials as AMT allows):
   the virtual time until a reported value reaches the target, with a
   learning-curve objective whose value at MaxResource is the benchmark
   function (:func:`functions.learning_curve`, 1 second per epoch), for the
   MultiFidelityGP and Bayesian (rung-GP) samplers against the random one.

Runs stop at their tightest target (``TargetObjectiveMetricValue``); looser
targets are read from the same run's trace. The table (median,
interquartile range, censored runs) goes to ``benchmarks/BAYESIAN.md`` (not
with ``--quick``, unless ``--out`` says where), with the measured time of one
GP proposal. Seeds run in ``--jobs`` processes (default 2), one BLAS thread each.

    /tmp/venvtest/.venv/bin/python benchmarks/bayesian.py --seeds 10
    /tmp/venvtest/.venv/bin/python benchmarks/bayesian.py --quick
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per run: the machine is shared
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from functions import BRANIN, HARTMANN6, Benchmark, learning_curve

import hb_core
from hb_core.config import TuningConfig
from hb_core.controller import new_state
from hb_core.state import Trial, TrialStatus
from hb_core.strategies import BayesianSampler

OUT = Path(__file__).resolve().parent / "BAYESIAN.md"
MAX_RESOURCE = 27
HB_WORKERS = 4
HB_MAX_JOBS = 750


@dataclass(frozen=True)
class Case:
    """A function, the regrets whose targets (optimum + regret) are timed, and the caps of comparison 1."""

    benchmark: Benchmark
    regrets: tuple[float, ...]
    caps: tuple[tuple[str, int], ...] = ()  # full evaluations per strategy

    def targets(self) -> list[float]:
        return [self.benchmark.minimum + regret for regret in self.regrets]

    def cap(self, strategy: str) -> int:
        return dict(self.caps)[strategy]


FULL_CASES = (
    Case(BRANIN, (0.5, 0.1), (("Random", 3000), ("Bayesian", 100))),
    Case(HARTMANN6, (1.0, 0.5, 0.1), (("Random", 3000), ("Bayesian", 150))),
)
QUICK_FULL_CASES = (
    Case(BRANIN, (0.5,), (("Random", 500), ("Bayesian", 50))),
    Case(HARTMANN6, (1.0,), (("Random", 500), ("Bayesian", 60))),
)
HB_CASES = (Case(BRANIN, (1.0, 0.5, 0.1)), Case(HARTMANN6, (1.0, 0.5)))
QUICK_HB_CASES = (Case(BRANIN, (0.5,)), Case(HARTMANN6, (1.0,)))
FUNCTIONS_BY_NAME = {b.name: b for b in (BRANIN, HARTMANN6)}


def request(benchmark: Benchmark, strategy: str, *, seed: int, max_jobs: int, parallel: int, target: float,
            epochs: int, sampler: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": parallel},
        "ParameterRanges": benchmark.parameter_ranges(),
        "TrainingJobEarlyStoppingType": "Off",
        "TuningJobCompletionCriteria": {"TargetObjectiveMetricValue": target},
        "RandomSeed": seed,
    }
    if strategy == "Hyperband":
        hb: dict[str, Any] = {"MinResource": 1, "MaxResource": epochs, "ReductionFactor": 3}
        if sampler is not None:
            hb["Sampler"] = sampler
        config["StrategyConfig"] = {"HyperbandStrategyConfig": hb}
    return {
        "HyperParameterTuningJobName": f"bench-{benchmark.name.lower()}",
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": {"StaticHyperParameters": {"epochs": str(epochs)}},
    }


def evaluations_to_targets(name: str, strategy: str, targets: list[float], cap: int, seed: int) -> list[float]:
    """Full evaluations until each target is reached, one worker (inf: not within ``cap``).

    The run stops at the tightest target; looser ones are read from its trace.
    """
    benchmark = FUNCTIONS_BY_NAME[name]
    config = TuningConfig.from_dict(request(benchmark, strategy, seed=seed, max_jobs=cap, parallel=1,
                                            target=min(targets), epochs=1))
    result = hb_core.simulate(config, lambda h, r: benchmark(h), cost=1.0)
    return [math.inf if (t := result.time_to(target)) is None else round(t) for target in targets]


def times_to_targets(name: str, sampler: str, targets: list[float], seed: int) -> list[float]:
    """Virtual seconds until a reported value reaches each target (Hyperband, 4 workers); inf if never."""
    benchmark = FUNCTIONS_BY_NAME[name]
    config = TuningConfig.from_dict(request(benchmark, "Hyperband", seed=seed, max_jobs=HB_MAX_JOBS,
                                            parallel=HB_WORKERS, target=min(targets), epochs=MAX_RESOURCE,
                                            sampler=sampler))
    result = hb_core.simulate(config, learning_curve(benchmark, MAX_RESOURCE), cost=1.0)
    return [math.inf if (t := result.time_to(target)) is None else t for target in targets]


def summary(values: Sequence[float], cap: float | None) -> tuple[str, str, int]:
    """(median, IQR, censored) as table cells; censored runs count as beyond the cap."""
    data = np.array(values, dtype=float)
    q1, median, q3 = np.quantile(data, [0.25, 0.5, 0.75], method="inverted_cdf")

    def cell(x: float) -> str:
        if math.isinf(x):
            return f">{cap:g}" if cap is not None else "n.r."
        return f"{x:.0f}"

    return cell(median), f"{cell(q1)} - {cell(q3)}", int(np.sum(np.isinf(data)))


def proposal_seconds(n_observed: int, repeats: int = 3) -> tuple[float, float]:
    """(first proposal with a fit, a further proposal reusing the fit) on Hartmann-6, in seconds."""
    config = TuningConfig.from_dict(request(HARTMANN6, "Bayesian", seed=0, max_jobs=1000, parallel=5,
                                            target=-10.0, epochs=1))
    rng = np.random.default_rng(0)
    trials = []
    for i in range(n_observed):
        hps = config.space.sample(rng)
        trials.append(Trial(f"{i:04d}", hps, 0, TrialStatus.COMPLETED, 1, 0.0, points=((1, HARTMANN6(hps), 1.0),)))
    first, again = [], []
    for r in range(repeats):
        # Another seed each time: the fit is memoized by (seed, data), and the first proposal must fit.
        state = new_state(config, now=0.0, seed=r).with_changes(trials=tuple(trials))
        sampler = BayesianSampler(config.space, config.objective.sign)
        start = time.perf_counter()
        sampler.propose(state, n_observed + 2 * r)
        first.append(time.perf_counter() - start)
        start = time.perf_counter()
        sampler.propose(state, n_observed + 2 * r + 1)
        again.append(time.perf_counter() - start)
    return float(np.median(first)), float(np.median(again))


def run(pool: Executor, label: str, fn: Callable[..., list[float]], args: tuple[Any, ...],
        seeds: int) -> tuple[list[list[float]], float]:
    """``fn(*args, seed)`` for every seed (in the pool); per target, the values over the seeds."""
    start = time.perf_counter()
    per_seed = list(pool.map(fn, *([a] * seeds for a in args), range(seeds)))
    elapsed = time.perf_counter() - start
    per_target = [list(values) for values in zip(*per_seed, strict=True)]
    print(f"  {label}: {per_target}  ({elapsed:.1f} s)", flush=True)
    return per_target, elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 seeds, easier targets, smaller caps (~1 minute)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (one BLAS thread each)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where the table goes (default: {OUT.name} beside this file; --quick: nowhere)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the samplers' random-fallback warnings are expected here
    seeds = 3 if args.quick else args.seeds
    full_cases = QUICK_FULL_CASES if args.quick else FULL_CASES
    hb_cases = QUICK_HB_CASES if args.quick else HB_CASES
    started = time.perf_counter()
    rows_full: list[Any] = []
    rows_hb: list[Any] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for case in full_cases:
            name = case.benchmark.name
            print(f"{name}: evaluations to f <= {case.targets()}", flush=True)
            for strategy in ("Random", "Bayesian"):
                cap = case.cap(strategy)
                values, elapsed = run(pool, strategy, evaluations_to_targets,
                                      (name, strategy, case.targets(), cap), seeds)
                for regret, per_target in zip(case.regrets, values, strict=True):
                    rows_full.append((case, regret, strategy, cap, summary(per_target, cap), elapsed))
        for case in hb_cases:
            name = case.benchmark.name
            print(f"{name} learning curves: virtual seconds to f <= {case.targets()}", flush=True)
            for sampler in ("Random", "MultiFidelityGP", "Bayesian"):
                values, elapsed = run(pool, sampler, times_to_targets, (name, sampler, case.targets()), seeds)
                for regret, per_target in zip(case.regrets, values, strict=True):
                    rows_hb.append((case, regret, sampler, summary(per_target, None), elapsed))
    timings = [(n, *proposal_seconds(n)) for n in ((50, 100) if args.quick else (50, 100, 200, 500))]
    total = time.perf_counter() - started
    command = "benchmarks/bayesian.py " + ("--quick" if args.quick else f"--seeds {seeds}")
    text = report(command, seeds, args.jobs, rows_full, rows_hb, timings, total)
    out = args.out if args.out is not None or args.quick else OUT
    if out is not None:
        out.write_text(text)
    print(text)
    return 0


def report(command: str, seeds: int, jobs: int, rows_full: list[Any], rows_hb: list[Any], timings: list[Any],
           total: float) -> str:
    setup = (
        f"Command: `/tmp/venvtest/.venv/bin/python {command}` ({seeds} seeds, RandomSeed 0..{seeds - 1}; "
        f"wall time {total:.0f} s with {jobs} worker processes, one BLAS thread each). "
        "Wall seconds per row are for all seeds of that method and function."
    )
    full = (
        "Each trial is one full evaluation of the function. A run stops at its tightest target or at its cap; "
        "runs that miss a target are censored (counted as beyond the cap in the median and IQR)."
    )
    hyperband = (
        f"ASHA stopping variant, MinResource 1, MaxResource {MAX_RESOURCE}, eta 3, one bracket, at most "
        f"{HB_MAX_JOBS} trials (AMT's limit), 1 s per epoch; learning curves from `benchmarks/functions.py` "
        "(value at MaxResource = the function; fast and slow learners). Sampler Random is plain Hyperband; "
        "MultiFidelityGP and Bayesian propose at random a third of the time (RandomFraction). "
        f'"n.r." (not reached): the run used its {HB_MAX_JOBS} trials without reaching the target; such runs '
        "count as slower than any other in the median and IQR."
    )
    timing = (
        "The first proposal fits the GP (3 L-BFGS-B starts on the marginal likelihood) and maximizes EI; "
        "a further proposal on the same data reuses the fit (memoized) and only maximizes EI."
    )
    lines = ["# Bayesian and model-based Hyperband: benchmark results", "", setup, ""]
    lines += ["## Bayesian vs Random: full evaluations to the target (one worker)", "", full, ""]
    lines += ["| function | target (optimum + regret) | strategy | median | IQR | censored | cap | wall s |",
              "|---|---|---|---|---|---|---|---|"]
    for case, regret, strategy, cap, (median, iqr, censored), elapsed in rows_full:
        target = case.benchmark.minimum + regret
        lines.append(f"| {case.benchmark.name} | {target:.4g} (+{regret:g}) | {strategy} | {median} | "
                     f"{iqr} | {censored}/{seeds} | {cap} | {elapsed:.0f} |")
    lines += ["", f"## Model-based Hyperband vs Hyperband: virtual seconds to the target ({HB_WORKERS} workers)",
              "", hyperband, ""]
    lines += ["| function | target (optimum + regret) | sampler | median s | IQR s | not reached | wall s |",
              "|---|---|---|---|---|---|---|"]
    for case, regret, sampler, (median, iqr, censored), elapsed in rows_hb:
        target = case.benchmark.minimum + regret
        lines.append(f"| {case.benchmark.name} | {target:.4g} (+{regret:g}) | {sampler} | {median} | "
                     f"{iqr} | {censored}/{seeds} | {elapsed:.0f} |")
    lines += ["", "## Time of one GP proposal (Bayesian strategy, Hartmann-6, no pending trials, one BLAS thread)",
              "", timing, "", "| observations | with a fit (s) | reusing the fit (s) |", "|---|---|---|"]
    lines += [f"| {n} | {first:.3f} | {again:.3f} |" for n, first, again in timings]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
