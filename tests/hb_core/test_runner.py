"""The one loop (Tuner): duplicate controllers, abort, warm start, in virtual time."""

from __future__ import annotations

import asyncio
import math
from typing import Any, cast

import pytest

from hb_core.backends.clock import VirtualClock
from hb_core.backends.simulated import SimulatedBackend
from hb_core.backends.stores import MemoryStore
from hb_core.config import TuningConfig
from hb_core.curves import mlp_accuracy, mlp_epoch_seconds
from hb_core.errors import ConfigError
from hb_core.runner import Tuner
from hb_core.state import TuningState
from tests.helpers import config, request


def tuner(cfg: TuningConfig, backend: SimulatedBackend, store: MemoryStore, clock: VirtualClock,
          **kwargs: Any) -> Tuner:
    return Tuner(cfg, backend, store, clock, job_name=cfg.name, poll_interval=math.inf, **kwargs)


def test_two_controllers_on_one_store_never_double_a_launch(caplog: pytest.LogCaptureFixture) -> None:
    """An HA duplicate: both poll the same jobs and save to the same store; the loser of each
    compare-and-set adopts the winner's state and decides again."""
    cfg = config("Hyperband", parallel=4, max_jobs=30)

    async def run() -> tuple[TuningState, SimulatedBackend, MemoryStore]:
        clock = VirtualClock()
        backend = SimulatedBackend(mlp_accuracy, clock, cost=mlp_epoch_seconds)
        store = MemoryStore(serialize=True)
        first = tuner(cfg, backend, store, clock)
        await first.start()
        second = tuner(cfg, backend, store, clock)
        await second.start()
        state = first.state
        for turn in range(10_000):
            if state is not None and state.done:
                break
            active = first if turn % 2 == 0 else second
            await clock.sleep_until(active._wake_time())
            state = await active.step()
        assert state is not None
        return state, backend, store

    state, backend, store = asyncio.run(run())
    assert "reloading its state" in caplog.text  # the compare-and-set really was contended
    assert state.done
    assert len(backend.launches) == len(set(backend.launches)), "a job was launched twice"
    assert backend.running() == []
    assert len(state.trials) == 30 and all(t.status.ended for t in state.trials)


def test_abort_stops_every_running_job_and_fails_the_job() -> None:
    cfg = config("Random", parallel=3, max_jobs=30)

    async def run() -> tuple[TuningState | None, SimulatedBackend]:
        clock = VirtualClock()
        backend = SimulatedBackend(mlp_accuracy, clock, cost=mlp_epoch_seconds)
        store = MemoryStore()
        runner = tuner(cfg, backend, store, clock)
        await runner.start()
        for _ in range(5):
            await clock.sleep_until(runner._wake_time())
            await runner.step()
        return await runner.abort("the Airflow task was killed by a user"), backend

    state, backend = asyncio.run(run())
    assert state is not None and state.status.value == "Failed"
    assert state.completion_reason == "the Airflow task was killed by a user"
    assert backend.running() == []
    assert all(t.status.ended for t in state.trials)


def test_abort_with_no_saved_job_does_nothing() -> None:
    cfg = config("Random")
    clock = VirtualClock()
    runner = tuner(cfg, SimulatedBackend(mlp_accuracy, clock), MemoryStore(), clock)
    assert asyncio.run(runner.abort("killed")) is None


def finished_parent(name: str) -> MemoryStore:
    cfg = TuningConfig.from_dict(request("Hyperband", name=name, parallel=4, max_jobs=40))
    clock = VirtualClock()
    store = MemoryStore()
    runner = tuner(cfg, SimulatedBackend(mlp_accuracy, clock, cost=mlp_epoch_seconds), store, clock)
    asyncio.run(runner.run())
    return store


def warm_child(parents: list[str], warm_type: str = "IdenticalDataAndAlgorithm") -> TuningConfig:
    body = request("Hyperband", name="child", parallel=4, max_jobs=20)
    body["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"]["Sampler"] = "MultiFidelityGP"
    body["WarmStartConfig"] = {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": p} for p in parents],
        "WarmStartType": warm_type,
    }
    return TuningConfig.from_dict(body)


def test_warm_start_seeds_the_rungs_and_the_model_from_the_parents() -> None:
    parent = finished_parent("parent")
    child = warm_child(["parent"])

    async def first_round() -> TuningState:
        clock = VirtualClock()
        backend = SimulatedBackend(mlp_accuracy, clock, cost=mlp_epoch_seconds)
        return await tuner(child, backend, MemoryStore(), clock, parents=[parent]).start()

    state = asyncio.run(first_round())
    parent_state = asyncio.run(parent.load())
    assert parent_state is not None
    assert len(state.rungs[0][0].keys) == len(parent_state.rungs[0][0].keys)  # the parents' rung values
    cold = asyncio.run(_cold_first_round(child))
    assert [t.hyperparameters for t in state.trials] != [t.hyperparameters for t in cold.trials]


async def _cold_first_round(cfg: TuningConfig) -> TuningState:
    clock = VirtualClock()
    return await tuner(cfg, SimulatedBackend(mlp_accuracy, clock), MemoryStore(), clock).start()


def test_a_missing_parent_is_a_config_error_naming_it() -> None:
    child = warm_child(["gone"])
    clock = VirtualClock()
    runner = tuner(child, SimulatedBackend(mlp_accuracy, clock), MemoryStore(), clock, parents=[MemoryStore()])
    with pytest.raises(ConfigError, match=r"WarmStartConfig.ParentHyperParameterTuningJobs\[0\]"):
        asyncio.run(runner.start())


def test_max_cost_stops_the_job_when_the_backend_knows_prices() -> None:
    cfg = config("Random", parallel=3, max_jobs=200, extensions={"MaxCost": 2.0})
    clock = VirtualClock()
    backend = SimulatedBackend(mlp_accuracy, clock, cost=mlp_epoch_seconds, price_per_second=0.01)
    state = asyncio.run(tuner(cfg, backend, MemoryStore(), clock).run())
    assert "MaxCost=2 reached" in (state.completion_reason or "")
    assert len(state.trials) < 200
    spent = state.ended_billable_seconds * 0.01
    assert 2.0 <= spent < 2.0 + 3 * 27 * 0.01 * 2  # overshoot at most the running jobs' last steps


def test_max_cost_without_prices_is_a_config_error() -> None:
    cfg = config("Random", extensions={"MaxCost": 2.0})
    clock = VirtualClock()
    runner = tuner(cfg, SimulatedBackend(mlp_accuracy, clock), MemoryStore(), clock)
    with pytest.raises(ConfigError, match="TuningJobExtensions.MaxCost"):
        asyncio.run(runner.start())


def test_an_abort_repeated_on_a_stopping_job_stops_again_and_records_the_ends_it_is_given() -> None:
    """controller.abort is what a retry, a second on_kill or a reader reaches after an abort cut short."""
    from hb_core.controller import abort
    from hb_core.events import Stop, TrialStopped

    cfg = config("Random", parallel=3, max_jobs=30)

    async def started() -> TuningState:
        clock = VirtualClock()
        runner = tuner(cfg, SimulatedBackend(mlp_accuracy, clock, cost=mlp_epoch_seconds), MemoryStore(), clock)
        await runner.start()
        await clock.sleep_until(runner._wake_time())
        return await runner.step()

    running = asyncio.run(started())
    active = [running.trials[i] for i in running.active]
    assert len(active) == 3
    stopping, actions = abort(running, "killed by a user", 100.0)
    stops = cast("tuple[Stop, ...]", actions)  # an abort's actions are Stops until the last trial ends
    assert stopping.status.value == "Stopping" and {a.trial_id for a in stops} == {t.trial_id for t in active}
    again, restops = abort(stopping, "a second reason", 101.0)  # the intent stays; the stops go out again
    assert again.completion_reason == "killed by a user" and restops == tuple(
        Stop(a.trial_id, a.attempt, a.reason) for a in stops)
    ended = [TrialStopped(t.trial_id, t.attempt, 102.0) for t in active[:2]]
    partly, actions = abort(again, "killed by a user", 102.0, ended)
    last = cast("tuple[Stop, ...]", actions)
    assert partly.status.value == "Stopping" and [a.trial_id for a in last] == [active[2].trial_id]
    done, finish = abort(partly, "killed by a user", 103.0, [TrialStopped(active[2].trial_id, active[2].attempt, 103.0)])
    assert done.status.value == "Failed" and done.completion_reason == "killed by a user"
    assert [type(a).__name__ for a in finish] == ["Finish"]
    assert all(t.status.ended for t in done.trials) and not done.active
    assert abort(done, "late", 104.0)[1] == ()
