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
from hb_core.latency import Latency, profile
from hb_core.runner import Tuner
from hb_core.space import HyperparameterValue
from hb_core.state import TrialStatus, TuningState

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
    ``trained_resource`` is the simulator's own count of every resource unit a
    job trained (the truth :attr:`total_resource`, the controller's record,
    is checked against); ``billable_seconds`` the jobs' billed training
    time; ``retained_seconds`` the billed warm-pool time; ``warm_starts`` the
    jobs that started on a warm instance, under ``latency``.
    """

    trials: list[TrialRecord]
    best: TrialRecord | None
    best_objective: float | None
    trace: list[tuple[float, float]]
    elapsed: float
    state: TuningState
    peak_running: int = 0
    trained_resource: int = 0
    billable_seconds: float = 0.0
    retained_seconds: float = 0.0
    warm_starts: int = 0
    latency: Latency = Latency()

    @property
    def total_resource(self) -> int:
        """Resource trained as the controller recorded it (values printed after a stop included; those of a stopped
        job that arrive after the tuning job ended are missing: ``trained_resource`` counts them)."""
        return sum(t.resource for t in self.trials)

    @property
    def billed_seconds(self) -> float:
        """Job-seconds billed: the jobs' billable time plus warm-pool retention, the pools left at the end
        billed to the end of their keep-alive period."""
        return self.billable_seconds + self.retained_seconds

    def time_to(self, target: float) -> float | None:
        """Virtual time at which some trial first reported a value at least as good as ``target``."""
        objective = self.state.config.objective
        for time, value in self.trace:
            if objective.reaches(value, target):
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
    latency: Latency | str | None = None,
) -> SimulationResult:
    """Run a whole tuning job in virtual time and return what happened.

    ``n_workers`` defaults to the config's MaxParallelTrainingJobs; ``seed`` to
    its RandomSeed. ``latency`` (a :class:`~hb_core.latency.Latency` or the
    name of a profile, default ideal) puts a platform's start-up, metric
    delay, stop delay and polling between the controller and the jobs; warm
    pools follow the request's ``KeepAlivePeriodInSeconds`` or the product's
    default (:meth:`~hb_core.config.TuningConfig.keep_alive_seconds`).
    ``startup_seconds`` is the older spelling of ``Latency(startup_seconds=...)``.
    With ``RungBarrierTimeoutSeconds`` in the config the simulated training
    scripts use the rung barrier (:class:`SimulatedBackend`).
    Not callable from inside a running event loop (it runs its own); use
    :class:`~hb_core.runner.Tuner` with a :class:`SimulatedBackend` there.
    """
    if isinstance(latency, str):
        latency = profile(latency)
    if latency is None:
        latency = Latency(startup_seconds=startup_seconds)
    elif startup_seconds:
        raise ConfigError("startup_seconds", "`startup_seconds is given only without latency` must hold",
                          startup_seconds)
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
    first_rung = None
    if config.hyperband is not None and not callable(cost):
        first_rung = float(cost) * config.hyperband.min_resource
    keep_alive = config.keep_alive_seconds(startup_seconds=latency.startup_seconds, first_rung_seconds=first_rung)
    barrier_timeout = config.hyperband.rung_barrier_timeout if config.hyperband is not None else None
    backend = SimulatedBackend(objective, clock, cost=cost, latency=latency, keep_alive_seconds=keep_alive,
                               default_budget=config.max_resource, barrier_timeout=barrier_timeout)
    tuner = Tuner(config, backend, MemoryStore(), clock, job_name=config.name or "simulation", seed=seed,
                  poll_interval=latency.poll_interval_seconds or math.inf)
    state = asyncio.run(tuner.run())
    result = _result(state, clock.now(), backend.peak_running)
    return replace(result, trained_resource=backend.trained_resource, billable_seconds=backend.billable_seconds,
                   retained_seconds=backend.retained_seconds + backend.pending_retained_seconds(),
                   warm_starts=backend.warm_starts, latency=latency)


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
    best_trial = state.best_trial()
    best = records[best_trial.index] if best_trial is not None else None
    best_value = best.last_value if best else None
    return SimulationResult(records, best, best_value, state.best_so_far(), elapsed, state, peak_running)
