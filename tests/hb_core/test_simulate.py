"""Whole tuning jobs in virtual time: the scheduler's properties, end to end."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hb_core
from hb_core import cli
from hb_core.backends.clock import VirtualClock
from hb_core.backends.simulated import SimulatedBackend
from hb_core.backends.stores import MemoryStore
from hb_core.config import TuningConfig
from hb_core.curves import make_curve, mlp_accuracy, mlp_epoch_seconds
from hb_core.runner import Tuner
from hb_core.state import TuningState, TuningStatus
from tests.helpers import config, request

VARIANTS = [{}, {"variant": "Promotion"}, {"brackets": 3}, {"brackets": 2, "variant": "Promotion"}]


def test_simulate_returns_the_documented_result() -> None:
    cfg = config("Hyperband", parallel=4, max_jobs=40)
    result = hb_core.simulate(cfg, mlp_accuracy, cost=mlp_epoch_seconds)
    assert len(result.trials) == 40
    assert {t.status for t in result.trials} <= {"Completed", "Stopped", "Failed"}
    assert result.best is not None and result.best_objective == result.best.last_value
    assert result.best_objective == max(t.last_value for t in result.trials if t.last_value is not None)
    assert result.trace and result.trace[-1][1] >= result.best_objective
    assert [v for _, v in result.trace] == sorted(v for _, v in result.trace)
    assert result.elapsed == pytest.approx(max(t.end_time for t in result.trials if t.end_time is not None))
    stopped = [t for t in result.trials if t.status == "Stopped"]
    assert stopped and all(t.stop_reason and "rung" in t.stop_reason for t in stopped)
    for record in result.trials:
        assert [r for r, _ in record.points] == list(range(1, len(record.points) + 1))
        assert record.start_time is not None and record.end_time is not None
        assert record.start_time <= record.end_time


@pytest.mark.parametrize("extra", VARIANTS)
def test_never_more_than_max_parallel_and_never_stopped_below_min_resource(extra: dict[str, Any]) -> None:
    cfg = config("Hyperband", parallel=5, max_jobs=80, min_resource=2, max_resource=54, **extra)
    result = hb_core.simulate(cfg, mlp_accuracy, cost=mlp_epoch_seconds)
    assert result.peak_running == 5  # never more, and the free slots are kept busy
    levels = [r.level for r in result.state.rungs[0]]
    for record in result.trials:
        if record.status == "Stopped":
            bracket_first = result.state.rungs[record.bracket][0].level
            assert record.resource >= bracket_first >= 2
            assert record.resource in levels or record.resource == record.points[-1][0]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), eta=st.sampled_from([2, 3, 4]), parallel=st.integers(1, 8))
def test_on_constant_curves_the_best_config_reaches_max_resource(seed: int, eta: int, parallel: int) -> None:
    """Stopping variant: a config whose value never changes is never stopped if it is the best sampled."""
    cfg = config("Hyperband", parallel=parallel, max_jobs=40, eta=eta, seed=seed)
    objective, _ = make_curve("constant", cfg.space, seed=seed)
    result = hb_core.simulate(cfg, objective)
    best_value = max(t.points[0][1] for t in result.trials)
    winners = [t for t in result.trials if t.points[0][1] == best_value]
    assert winners[0].status == "Completed" and winners[0].resource == 27


@pytest.mark.parametrize("extra", VARIANTS)
def test_same_seed_same_decisions(extra: dict[str, Any]) -> None:
    cfg = config("Hyperband", parallel=4, max_jobs=30, **extra)
    first = hb_core.simulate(cfg, mlp_accuracy, cost=mlp_epoch_seconds)
    second = hb_core.simulate(cfg, mlp_accuracy, cost=mlp_epoch_seconds)
    assert first.state.to_dict() == second.state.to_dict()
    other = hb_core.simulate(cfg, mlp_accuracy, cost=mlp_epoch_seconds, seed=12345)
    assert other.trials[0].hyperparameters != first.trials[0].hyperparameters


def test_stopping_variant_spends_far_less_than_random_on_constant_curves() -> None:
    ratios = []
    for seed in range(5):
        hb = config("Hyperband", parallel=5, max_jobs=100, seed=seed)
        rnd = config("Random", parallel=5, max_jobs=100, seed=seed)
        objective, _ = make_curve("constant", hb.space, seed=seed)
        spent_hb = hb_core.simulate(hb, objective).total_resource
        spent_rnd = hb_core.simulate(rnd, objective).total_resource
        assert spent_rnd == 100 * 27
        ratios.append(spent_hb / spent_rnd)
    assert sorted(ratios)[2] < 0.35  # median; the nominal successive-halving share is 2.25/27 = 0.083


def test_an_objective_that_raises_fails_that_trial_only() -> None:
    def objective(hps: dict[str, Any], resource: int) -> float:
        if hps["units"] > 500:
            raise RuntimeError("CUDA out of memory")
        return mlp_accuracy(hps, resource)

    cfg = config("Hyperband", parallel=3, max_jobs=30)
    result = hb_core.simulate(cfg, objective)
    failed = [t for t in result.trials if t.status == "Failed"]
    assert failed and all("CUDA out of memory" in (t.stop_reason or "") for t in failed)
    assert all(cast(int, t.hyperparameters["units"]) > 500 for t in failed)  # an integer range
    assert result.best is not None and result.best.status != "Failed"
    assert all(key != -failed[0].points[0][1] for key in result.state.rungs[0][0].keys) if failed[0].points else True


def test_target_objective_stops_the_job_early() -> None:
    cfg = config("Random", parallel=3, max_jobs=200, completion={"TargetObjectiveMetricValue": 0.95})
    result = hb_core.simulate(cfg, mlp_accuracy, cost=mlp_epoch_seconds)
    assert len(result.trials) < 200
    assert result.best_objective is not None
    assert result.time_to(0.95) is not None
    assert "TargetObjectiveMetricValue" in (result.state.completion_reason or "")


def test_grid_runs_every_combination_once() -> None:
    cfg = config("Grid", parallel=2, max_jobs=None)
    objective, _ = make_curve("constant", cfg.space)
    result = hb_core.simulate(cfg, objective)
    combos = {tuple(sorted(t.hyperparameters.items())) for t in result.trials}
    assert len(result.trials) == len(combos) == 6
    assert all(t.status == "Completed" and t.resource == 27 for t in result.trials)


def test_n_workers_overrides_max_parallel() -> None:
    cfg = config("Random", parallel=2, max_jobs=20)
    result = hb_core.simulate(cfg, mlp_accuracy, cost=1.0, n_workers=10)
    assert result.peak_running == 10
    with pytest.raises(ValueError, match="n_workers"):
        hb_core.simulate(cfg, mlp_accuracy, n_workers=0)


@pytest.mark.parametrize("extra", VARIANTS)
def test_restart_from_the_store_mid_run_changes_nothing(extra: dict[str, Any]) -> None:
    """Kill the controller after any round and start a new one on the same store: same outcome, no double launch."""
    cfg = config("Hyperband", parallel=4, max_jobs=30, **extra)
    reference = hb_core.simulate(cfg, mlp_accuracy, cost=mlp_epoch_seconds)

    async def run_with_restarts(every: int) -> tuple[TuningState, SimulatedBackend]:
        clock = VirtualClock()
        backend = SimulatedBackend(mlp_accuracy, clock, cost=mlp_epoch_seconds)
        store = MemoryStore(serialize=True)
        state = None
        while state is None or not state.done:
            tuner = Tuner(cfg, backend, store, clock, job_name=cfg.name, poll_interval=math.inf)
            state = await tuner.start()
            for _ in range(every):
                if state.done:
                    break
                await clock.sleep_until(tuner._wake_time())
                state = await tuner.step()
        return state, backend

    for every in (1, 3):
        state, backend = asyncio.run(run_with_restarts(every))
        assert len(backend.launches) == len(set(backend.launches)), "a job was launched twice"
        assert backend.running() == []
        assert state.finish == reference.state.finish
        assert json.dumps([t.to_dict() for t in state.trials]) == json.dumps(
            [t.to_dict() for t in reference.state.trials]
        )


@pytest.mark.parametrize(("trials", "workers"), [(5_000, 100), (10_000, 200)])
def test_past_amt_quotas_from_a_validated_request(tmp_path: Any, capsys: pytest.CaptureFixture[str],
                                                  trials: int, workers: int) -> None:
    """AMT's quotas (750 Hyperband jobs, 100 in parallel) are not the controller's: a validated request runs."""
    body = request("Hyperband", max_jobs=trials, parallel=workers, max_resource=9)
    result = hb_core.simulate(TuningConfig.from_dict(body), make_curve("quadratic", config().space)[0])
    assert len(result.trials) == trials and result.state.status is TuningStatus.COMPLETED
    assert result.peak_running == workers
    path = tmp_path / "big.json"
    path.write_text(json.dumps(body))
    assert cli.main(["validate", str(path)]) == 0
    assert cli.main(["validate", "--amt", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"ResourceLimits.MaxNumberOfTrainingJobs: `MaxNumberOfTrainingJobs <= 750 with Hyperband` (AMT's quota) " \
           f"must hold, but got {trials}" in err
    assert ("MaxParallelTrainingJobs <= 100" in err) is (workers > 100)
