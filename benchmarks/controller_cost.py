"""What the controller itself costs: decision rounds per second, CPU per round, state size.

For 100, 1,000 and 10,000 trials, a Hyperband job (ASHA stopping, eta 3,
MaxResource 81, the ``quadratic`` curve family of :mod:`hb_core.curves`, cost
from the numpy MLP model) runs through :func:`hb_core.simulate` with
``min(100, trials // 10)`` workers: the product's Tuner and controller on a
virtual clock with an in-memory store, so the CPU measured is the decision
rounds plus the simulated backend, and nothing else. Above 750 trials the job
goes past AMT's Hyperband limit (as ``benchmarks/scale.py`` does): planning
only. The state size is the JSON the store would write after the last round.
The per-rung decision cost against the values at the rung comes from
``benchmarks/scale.py`` (:func:`scale.decision_cost`).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass

import hb_core
from hb_core.config import TuningConfig
from hb_core.curves import make_curve, mlp_epoch_seconds

__all__ = ["Cost", "measure"]


@dataclass(frozen=True)
class Cost:
    trials: int
    workers: int
    rounds: int
    cpu_seconds: float
    state_bytes: int
    rung_decision_us: float

    @property
    def rounds_per_second(self) -> float:
        return self.rounds / self.cpu_seconds

    @property
    def cpu_per_round_us(self) -> float:
        return self.cpu_seconds / self.rounds * 1e6


def _config(trials: int, workers: int) -> TuningConfig:
    from tests.helpers import config

    return config("Hyperband", parallel=workers, max_jobs=trials, max_resource=81)  # past AMT's quotas: hb_core.amt


def measure(trials: int, repeats: int = 3) -> Cost:
    """The median over ``repeats`` of one simulated job with ``trials`` trials (module docstring)."""
    from scale import decision_cost

    workers = max(1, min(100, trials // 10))
    cfg = _config(trials, workers)
    objective, _ = make_curve("quadratic", cfg.space)
    cpu, rounds, size = [], 0, 0
    for _ in range(repeats):
        start = time.process_time()
        result = hb_core.simulate(cfg, objective, cost=mlp_epoch_seconds)
        cpu.append(time.process_time() - start)
        rounds = result.state.revision
        size = len(json.dumps(result.state.to_dict()))
    rung = statistics.median(decision_cost(min(trials, 10_000), repeats=200) for _ in range(3))
    return Cost(trials, workers, rounds, statistics.median(cpu), size, rung)
