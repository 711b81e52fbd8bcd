"""What one proposal of a model-based Hyperband sampler costs, at a given count of rung observations.

A decision round runs in the Airflow triggerer's event loop (or the local Tuner's), so a proposal must not
block it. This measures :meth:`hb_core.strategies.multi_fidelity.JointGPSampler.propose`
(``Sampler: MultiFidelityGP``) and, for comparison, the rung-GP sampler (``Sampler: Bayesian``), on a state built like a
real stopping-variant ASHA job on NAS-Bench-201's space (six categorical edges of five operations; rungs 1, 3, 9, 27, 81, 200): trials
reach each rung in ASHA's proportions (a third go on), values from a smooth function of the configuration
plus noise, ``workers`` trials still running. ``observations`` counts the rung values the joint model sees.

Two figures per sampler, both CPU seconds (``time.process_time``) per proposal, median over ``repeats``
proposals (indices ``n, n+1, ...``, so every one maximizes its own acquisition):

- *warm*: the hyperparameter fit is in the sampler's memo (what almost every round sees: the joint GP refits
  only when the observation count crosses :func:`hb_core.strategies.multi_fidelity.refit_size`'s schedule);
- *cold*: a new sampler, its memo empty, for each proposal (a round that crosses the schedule, or the first
  round after a triggerer restart).

    python benchmarks/sampler_cost.py                # 1,000 observations; writes results/SAMPLER_COST.md
    python benchmarks/sampler_cost.py --observations 300 --repeats 3 --out /tmp/x.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np

from hb_core.config import TuningConfig
from hb_core.controller import new_state
from hb_core.state import Trial, TrialStatus, TuningState
from hb_core.strategies import make_sampler

__all__ = ["Cost", "measure", "state_with"]

LEVELS = (1, 3, 9, 27, 81, 200)
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
SAMPLERS = ("MultiFidelityGP", "Bayesian")


@dataclass(frozen=True)
class Cost:
    sampler: str
    observations: int
    trials: int
    warm_seconds: float
    cold_seconds: float


def config(sampler: str, workers: int) -> TuningConfig:
    return TuningConfig.from_dict({
        "HyperParameterTuningJobName": "sampler-cost",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Hyperband",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "accuracy"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 750, "MaxParallelTrainingJobs": workers},
            "ParameterRanges": {"CategoricalParameterRanges": [
                {"Name": f"Op{i}", "Values": list(OPS)} for i in range(6)]},
            "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 200,
                                                           "Sampler": sampler, "RandomFraction": 0}},
            "RandomSeed": 7,
        },
    })


def state_with(cfg: TuningConfig, observations: int, workers: int) -> TuningState:
    """An ASHA-shaped state holding about ``observations`` rung values (module docstring)."""
    rng = np.random.default_rng(11)
    weights = rng.normal(size=(6, len(OPS)))
    trials: list[Trial] = []
    seen = 0
    while seen < observations:
        i = len(trials)
        hps = cfg.space.sample(rng)
        quality = sum(weights[e, OPS.index(str(hps[f"Op{e}"]))] for e in range(6))
        reach = 1
        while reach < len(LEVELS) and rng.random() < 1 / 3:
            reach += 1
        reach = min(reach, len(LEVELS))
        points = tuple((LEVELS[k], float(quality * (1 + k) / 6 + rng.normal(0, 0.5)), float(i + k))
                       for k in range(reach))
        seen += reach
        running = i >= 0 and len(trials) % max(1, observations // workers) == 0 and reach < len(LEVELS)
        status = TrialStatus.IN_PROGRESS if running else TrialStatus.STOPPED
        trials.append(Trial(f"{i:04d}", hps, 0, status, 200, 0.0, points=points))
    active = tuple(i for i, t in enumerate(trials) if t.status is TrialStatus.IN_PROGRESS)
    return new_state(cfg, now=0.0, seed=7).with_changes(trials=tuple(trials), active=active)


def measure(sampler: str, observations: int, *, repeats: int = 5, workers: int = 16) -> Cost:
    cfg = config(sampler, workers)
    state = state_with(cfg, observations, workers)
    n = len(state.trials)
    proposer = make_sampler(cfg)
    proposer.propose(state, n)  # warm the memo (and the encoders) once
    warm, cold = [], []
    for r in range(repeats):
        started = time.process_time()
        proposer.propose(state, n + 1 + r)
        warm.append(time.process_time() - started)
        started = time.process_time()
        make_sampler(cfg).propose(state, n + 1 + r)  # a new sampler: its fit memo is empty
        cold.append(time.process_time() - started)
    return Cost(sampler, observations, n, statistics.median(warm), statistics.median(cold))


def markdown(costs: list[Cost], command: str) -> str:
    lines = [
        "# Proposal time of the model-based samplers",
        "",
        f"Generated by `{command}` on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}, one BLAS thread; "
        f"{time.strftime('%Y-%m-%d %H:%M')}. The state is described in `benchmarks/sampler_cost.py`. CPU "
        "seconds per proposal, median of the repeats; the machine was shared with other work (load "
        f"{os.getloadavg()[0]:.1f} at the end), so these are upper bounds of a quiet machine's figures.",
        "",
        "| sampler | rung observations | trials | warm (s) | cold: hyperparameters refitted (s) |",
        "|---|---|---|---|---|",
    ]
    for c in costs:
        lines.append(f"| {c.sampler} | {c.observations:,} | {c.trials:,} | {c.warm_seconds:.3f} | "
                     f"{c.cold_seconds:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "SAMPLER_COST.md")
    args = parser.parse_args(argv)
    costs = [measure(s, args.observations, repeats=args.repeats) for s in args.samplers.split(",")]
    command = " ".join(["benchmarks/sampler_cost.py", *(argv if argv is not None else sys.argv[1:])])
    text = markdown(costs, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
