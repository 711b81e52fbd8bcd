"""Faults and restarts at every point of the loop, in virtual time: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

import hb_core
from hb_core.backends.clock import VirtualClock
from hb_core.backends.simulated import SimulatedBackend
from hb_core.backends.stores import MemoryStore
from hb_core.config import TuningConfig
from hb_core.curves import make_curve, mlp_accuracy, mlp_epoch_seconds
from hb_core.runner import Tuner
from hb_core.state import TuningState
from tests.helpers import config
from tests.reliability.faults import (
    CRASH_POINTS,
    ControllerCrash,
    CrashingBackend,
    CrashingStore,
    CrashPlan,
    FaultRates,
    FaultyBackend,
    check_invariants,
)

VARIANTS: list[dict[str, Any]] = [{}, {"variant": "Promotion"}, {"brackets": 2}]
MAX_RESTARTS = 50


def trials_json(state: TuningState) -> str:
    return json.dumps([t.to_dict() for t in state.trials])


async def run_with_crash(cfg: TuningConfig, plan: CrashPlan) -> tuple[TuningState, SimulatedBackend, int]:
    """Run to the end; whenever the controller dies, start a new one on the same store and backend."""
    clock = VirtualClock()
    cloud = SimulatedBackend(mlp_accuracy, clock, cost=mlp_epoch_seconds)  # outlives every controller
    store = MemoryStore(serialize=True)
    restarts = 0
    while restarts < MAX_RESTARTS:
        tuner = Tuner(cfg, CrashingBackend(cloud, plan), CrashingStore(store, plan), clock, job_name=cfg.name,
                      poll_interval=math.inf)
        try:
            state = await tuner.run()
            return state, cloud, restarts
        except ControllerCrash:
            restarts += 1
    raise AssertionError("the controller never finished")


CASES = [
    pytest.param(point, extra, id=f"{point}-{name}")
    for name, extra in zip(["stopping", "promotion", "brackets"], VARIANTS, strict=True)
    for point in CRASH_POINTS
    if not (point.startswith("stop:") and extra.get("variant") == "Promotion")  # that variant never stops a trial
]


def plan_for(point: str, at: int) -> CrashPlan:
    if point.startswith("reconcile:"):  # only a restarted controller reconciles: crash once before
        return CrashPlan("poll:after", at + 1, then=((point, 1),))
    return CrashPlan(point, at)


@pytest.mark.parametrize(("point", "extra"), CASES)
def test_a_crash_at_any_point_changes_nothing(point: str, extra: dict[str, Any]) -> None:
    cfg = config("Hyperband", parallel=3, max_jobs=12, max_resource=9, **extra)
    reference = hb_core.simulate(cfg, mlp_accuracy, cost=mlp_epoch_seconds)
    crashes = 0
    for at in (1, 2, 5):
        state, cloud, restarts = asyncio.run(run_with_crash(cfg, plan_for(point, at)))
        check_invariants(state, cloud.launches, cloud.running())
        crashes += restarts
        assert trials_json(state) == trials_json(reference.state), f"{point} #{at} changed the outcome"
        assert state.finish == reference.state.finish
    assert crashes >= 2, f"the loop passed {point} too rarely for the test to mean anything"


@pytest.mark.parametrize("seed", range(4))
def test_transient_event_faults_keep_the_best_trial(seed: int) -> None:
    """Delays, duplicates and reordering lose nothing: on constant curves the best config still wins."""
    cfg = config("Hyperband", parallel=4, max_jobs=40, seed=seed)
    objective, _ = make_curve("constant", cfg.space, seed=seed)
    reference = hb_core.simulate(cfg, objective)
    rates = FaultRates(delay=0.2, duplicate=0.2, reorder=0.2)
    assert rates.transient_only
    state, cloud, faulty = asyncio.run(run_faulty(cfg, objective, rates, seed))
    check_invariants(state, cloud.launches, cloud.running())
    assert sum(faulty.injected.values()) > 20, faulty.injected
    assert state.finish is not None and reference.state.finish is not None
    assert state.finish["best_trial_id"] == reference.state.finish["best_trial_id"]
    assert state.finish["best_objective"] == reference.state.finish["best_objective"]


async def run_faulty(cfg: TuningConfig, objective: Any, rates: FaultRates,
                     seed: int) -> tuple[TuningState, SimulatedBackend, FaultyBackend]:
    clock = VirtualClock()
    cloud = SimulatedBackend(objective, clock, cost=1.0)
    faulty = FaultyBackend(cloud, rates, seed=seed, clock=clock)
    tuner = Tuner(cfg, faulty, MemoryStore(serialize=True), clock, job_name=cfg.name, poll_interval=math.inf)
    return await tuner.run(), cloud, faulty


@pytest.mark.parametrize("seed", range(3))
def test_lossy_faults_still_account_for_every_trial(seed: int) -> None:
    cfg = config("Hyperband", parallel=4, max_jobs=40, seed=seed, extensions={"MaxFailedTrainingJobs": 40})
    rates = FaultRates(delay=0.1, duplicate=0.1, reorder=0.1, drop_metric=0.1, crash_trial=0.02,
                       spot_interrupt=0.03)
    state, cloud, faulty = asyncio.run(run_faulty(cfg, mlp_accuracy, rates, seed))
    check_invariants(state, cloud.launches, cloud.running())
    assert faulty.injected.get("spot_interrupt", 0) + faulty.injected.get("crash_trial", 0) > 0, faulty.injected
    retried = [t for t in state.trials if t.retries]
    interrupted = faulty.injected.get("spot_interrupt", 0)
    assert len(retried) >= min(1, interrupted)  # a reclaimed trial comes back as a new attempt
    for trial in state.trials:
        if trial.status.value == "Failed":
            assert "injected" in (trial.stop_reason or "")
