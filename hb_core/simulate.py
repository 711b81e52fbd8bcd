"""Whole tuning jobs in virtual time: ``hb_core.simulate(config, objective, ...)``.

The simulation drives the same :class:`~hb_core.runner.Tuner` loop and the
same controller as a real run, with a :class:`SimulatedBackend` and a
:class:`VirtualClock`. It is used by tests, ``hb-tune simulate``, ``hb-tune
plan`` and the benchmarks.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, replace

from hb_core.backends.clock import VirtualClock
from hb_core.backends.simulated import CostFunction, ObjectiveFunction, SimulatedBackend
from hb_core.backends.stores import MemoryStore
from hb_core.config import TuningConfig
from hb_core.errors import ConfigError
from hb_core.runner import Tuner
from hb_core.space import HyperparameterValue
from hb_core.state import TrialStatus, TuningState, signed_key

__all__ = ["SimulationResult", "TrialRecord", "simulate"]


@dataclass(frozen=True)
class TrialRecord:
    """One simulated trial, in SageMaker's words.

    ``status`` is Completed (ran to its full budget), Stopped (stopped early,
    or paused and never promoted) or Failed. ``points`` are (resource, value)
    in the order reported, ``times`` the virtual time of each.
    """

    trial_id: str
    hyperparameters: dict[str, HyperparameterValue]
    status: str
    start_time: float | None
    end_time: float | None
    points: list[tuple[int, float]]
    times: list[float]
    stop_reason: str | None
    bracket: int

    @property
    def last_value(self) -> float | None:
        return self.points[-1][1] if self.points else None

    @property
    def resource(self) -> int:
        return self.points[-1][0] if self.points else 0


@dataclass(frozen=True)
class SimulationResult:
    """What a simulated tuning job did.

    ``best`` is the trial whose last reported value is best (as AMT picks its
    best training job); ``trace`` is the best value observed at any resource,
    as (virtual time, best so far), one entry per improvement: the curve that
    time-to-target is read from. ``elapsed`` is the virtual time at the end;
    ``peak_running`` the most training jobs that ran at once.
    """

    trials: list[TrialRecord]
    best: TrialRecord | None
    best_objective: float | None
    trace: list[tuple[float, float]]
    elapsed: float
    state: TuningState
    peak_running: int = 0

    @property
    def total_resource(self) -> int:
        return sum(t.resource for t in self.trials)

    def time_to(self, target: float) -> float | None:
        """Virtual time at which some trial first reported a value at least as good as ``target``."""
        sign = self.state.config.objective.sign
        for time, value in self.trace:
            if sign * (value - target) >= 0:
                return time
        return None


def simulate(
    config: TuningConfig,
    objective: ObjectiveFunction,
    *,
    cost: CostFunction = 1.0,
    n_workers: int | None = None,
    seed: int | None = None,
    startup_seconds: float = 0.0,
) -> SimulationResult:
    """Run a whole tuning job in virtual time and return what happened.

    ``n_workers`` defaults to the config's MaxParallelTrainingJobs; ``seed`` to
    its RandomSeed. With ``RungBarrierTimeoutSeconds`` in the config the
    simulated training scripts use the rung barrier (:class:`SimulatedBackend`).
    Not callable from inside a running event loop (it runs its own); use
    :class:`~hb_core.runner.Tuner` with a :class:`SimulatedBackend` there.
    """
    if n_workers is not None:
        if n_workers < 1:
            raise ConfigError("n_workers", "`n_workers >= 1` must hold", n_workers)
        limits = replace(config.resource_limits, max_parallel_training_jobs=n_workers)
        config = replace(config, resource_limits=limits)
    if config.max_resource is None:
        raise ConfigError(
            "TrainingJobDefinition.StaticHyperParameters",
            "a simulation needs a budget: HyperbandStrategyConfig.MaxResource or an epochs static hyperparameter",
            None,
        )
    clock = VirtualClock()
    barrier_timeout = config.hyperband.rung_barrier_timeout if config.hyperband is not None else None
    backend = SimulatedBackend(
        objective, clock, cost=cost, startup_seconds=startup_seconds, default_budget=config.max_resource,
        barrier_timeout=barrier_timeout,
    )
    tuner = Tuner(config, backend, MemoryStore(), clock, job_name=config.name or "simulation", seed=seed,
                  poll_interval=math.inf)
    state = asyncio.run(tuner.run())
    return _result(state, clock.now(), backend.peak_running)


def _result(state: TuningState, elapsed: float, peak_running: int) -> SimulationResult:
    records = [
        TrialRecord(
            trial_id=t.trial_id,
            hyperparameters=dict(t.hyperparameters),
            status=t.status.value,
            start_time=t.start_time,
            end_time=t.end_time if t.status.ended else None,
            points=[(r, v) for r, v, _ in t.points],
            times=[time for _, _, time in t.points],
            stop_reason=t.stop_reason if t.status in (TrialStatus.STOPPED, TrialStatus.FAILED) else None,
            bracket=t.bracket,
        )
        for t in state.trials
    ]
    finish = state.finish or {}
    best_id = finish.get("best_trial_id")
    best = next((r for r in records if r.trial_id == best_id), None)
    best_value = best.last_value if best else None
    return SimulationResult(records, best, best_value, _trace(state), elapsed, state, peak_running)


def _trace(state: TuningState) -> list[tuple[float, float]]:
    sign = state.config.objective.sign
    points = sorted((time, value) for t in state.trials if t.status is not TrialStatus.FAILED for _, value, time in t.points)
    trace: list[tuple[float, float]] = []
    for time, value in points:
        if not trace or signed_key(sign, value) < signed_key(sign, trace[-1][1]):
            trace.append((time, value))
    return trace
