"""The controller trigger on the local backend: restart, duplicate instances, and on_kill.

Each test drives real trigger instances (rebuilt from their serialized kwargs,
as the triggerer does) over real subprocess trials. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hb_airflow.spec import TuningSpec
from hb_airflow.triggers import HyperbandControllerTrigger, TuningStateTrigger
from hb_core.backends.stores import LocalFileStore
from hb_core.state import TuningState
from tests.hb_airflow.conftest import live_group_members, tiny_request

WAIT = 120.0  # upper bound on any wait in these tests, in seconds


def spec_for(tmp_path: Path, name: str, **request: Any) -> TuningSpec:
    return TuningSpec(request=tiny_request(name=name, **request), job_name=name, backend="local",
                      state_uri=str(tmp_path / name), base_dir=str(tmp_path), poll_interval=0.1)


def rebuilt(trigger: HyperbandControllerTrigger) -> HyperbandControllerTrigger:
    """A fresh instance from ``serialize()``, as the triggerer builds it after a restart."""
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls(**json.loads(json.dumps(kwargs)))  # type: ignore[no-any-return]


async def first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload  # type: ignore[no-any-return]
    raise AssertionError("the trigger ended without an event")


async def wait_for(store: LocalFileStore, predicate: Callable[[TuningState], bool]) -> TuningState:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while loop.time() < deadline:
        state = await store.load()
        if state is not None and predicate(state):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def launched_jobs(launches: Path) -> list[str]:
    return launches.read_text().split() if launches.exists() else []


@pytest.fixture
def launches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "launches.txt"
    monkeypatch.setenv("HB_TEST_LAUNCHES", str(path))
    return path


async def test_restart_mid_run_gives_the_same_result_with_no_duplicate(tmp_path: Path, launches: Path) -> None:
    # One trial at a time makes the decisions independent of process timing, so runs can be compared.
    reference = spec_for(tmp_path, "reference", parallel=1, jobs=6, sleep=0.1)
    expected = await first_event(HyperbandControllerTrigger(reference.to_dict()))
    reference_jobs = launched_jobs(launches)
    launches.unlink()

    spec = spec_for(tmp_path, "restarted", parallel=1, jobs=6, sleep=0.1)
    trigger = HyperbandControllerTrigger(spec.to_dict())
    task = asyncio.create_task(first_event(trigger))
    store = LocalFileStore(spec.state_uri)
    await wait_for(store, lambda s: len(s.trials) >= 3)
    task.cancel()  # the triggerer restarts: cleanup only, the trial keeps running
    with pytest.raises(asyncio.CancelledError):
        await task
    event = await asyncio.wait_for(first_event(rebuilt(trigger)), WAIT)

    assert event["status"] == "Completed"
    jobs = launched_jobs(launches)
    assert len(jobs) == len(set(jobs)), f"a training job was launched twice: {jobs}"
    assert len(jobs) == len(reference_jobs)
    state = await store.load()
    assert state is not None and all(t.status.ended for t in state.trials)
    assert event["summary"]["best_trial_id"] == expected["summary"]["best_trial_id"]
    assert event["summary"]["best_objective"] == expected["summary"]["best_objective"]
    assert event["summary"]["trial_counts"] == expected["summary"]["trial_counts"]


async def test_two_triggers_at_once_launch_each_job_once(tmp_path: Path, launches: Path) -> None:
    spec = spec_for(tmp_path, "twins", parallel=3, jobs=9, sleep=0.1)
    first = HyperbandControllerTrigger(spec.to_dict())
    second = rebuilt(first)
    one, two = await asyncio.wait_for(asyncio.gather(first_event(first), first_event(second)), WAIT)
    assert one["status"] == two["status"] == "Completed"
    jobs = launched_jobs(launches)
    assert len(jobs) == len(set(jobs)), f"a training job was launched twice: {sorted(jobs)}"
    state = await LocalFileStore(spec.state_uri).load()
    assert state is not None and len(state.trials) == 9
    assert all(t.status.ended and t.stop_reason != "stopped outside the controller" for t in state.trials)


async def cancelled_mid_run(spec: TuningSpec) -> tuple[HyperbandControllerTrigger, LocalFileStore]:
    """Run ``spec``'s controller trigger until two trials report values, then cancel it (as the triggerer does
    before ``on_kill``); its store is returned for the assertions."""
    trigger = HyperbandControllerTrigger(spec.to_dict())
    task = asyncio.create_task(first_event(trigger))
    store = LocalFileStore(spec.state_uri)
    await wait_for(store, lambda s: sum(1 for t in s.trials if t.points and not t.status.ended) >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return trigger, store


async def test_on_kill_stops_every_running_trial(tmp_path: Path, launches: Path) -> None:
    spec = spec_for(tmp_path, "killed", parallel=3, jobs=9, sleep=0.5, max_resource=27)
    trigger, store = await cancelled_mid_run(spec)
    await asyncio.wait_for(rebuilt(trigger).on_kill(), WAIT)

    state = await store.load()
    assert state is not None and state.status.value == "Failed"
    assert "killed by a user" in (state.completion_reason or "")
    assert all(t.status.ended for t in state.trials)
    groups = [json.loads(p.read_text()).get("pid") for p in Path(spec.state_uri).rglob("pid.json")]
    assert len([g for g in groups if g]) >= 2
    assert not [pid for g in groups if g for pid in live_group_members(int(g))], "a trial process survived on_kill"


async def test_state_trigger_waits_for_a_condition(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "watched", parallel=2, jobs=4, sleep=0.05)
    watcher = TuningStateTrigger(spec.to_dict(), {"kind": "trial_rung", "trial_id": "0000", "rung": 3}, 0.05)
    both = asyncio.gather(first_event(HyperbandControllerTrigger(spec.to_dict())), first_event(watcher))
    done, watched = await asyncio.wait_for(both, WAIT)
    assert done["status"] == "Completed"
    assert watched["condition"]["kind"] == "trial_rung"
    assert watched["reached"] or watched["status"] in ("Stopped", "Failed")


async def test_on_kill_finishes_the_abort_when_the_triggerer_cancels_it_again(tmp_path: Path,
                                                                              launches: Path) -> None:
    """The triggerer cancels a finishing trigger again on each loop: the abort must go on to a terminal state."""
    spec = spec_for(tmp_path, "rekilled", parallel=3, jobs=9, sleep=0.5, max_resource=27)
    trigger, store = await cancelled_mid_run(spec)
    killing = asyncio.create_task(rebuilt(trigger).on_kill())
    await wait_for(store, lambda s: s.status.value == "Stopping")
    killing.cancel()  # as the triggerer's next loop does, well before the stopped trials have ended
    with pytest.raises(asyncio.CancelledError):
        await killing

    state = await wait_for(store, lambda s: s.done)
    assert state.status.value == "Failed" and "killed by a user" in (state.completion_reason or "")
    assert all(t.status.ended for t in state.trials) and not state.active
    groups = [json.loads(p.read_text()).get("pid") for p in Path(spec.state_uri).rglob("pid.json")]
    assert not [pid for g in groups if g for pid in live_group_members(int(g))], "a trial process survived on_kill"


async def test_a_reader_finishes_a_job_whose_abort_died_midway(tmp_path: Path, launches: Path) -> None:
    """The triggerer dies right after the abort's first checkpoint: the job stays Stopping until the next reader
    (the dashboard here; ``hb-tune show`` too: ``settle_local``) sees every trial ended and records it."""
    from hb_airflow.spec import build_tuner
    from hb_airflow.ui.jobs import StateRoot

    spec = spec_for(tmp_path, "orphaned", parallel=3, jobs=9, sleep=0.5, max_resource=27)
    trigger, store = await cancelled_mid_run(spec)
    dying = build_tuner(spec)
    stopping = await dying.abort("the Airflow task was killed by a user", timeout=0)
    await dying.backend.close()  # the triggerer is gone: nobody records the ends
    assert stopping is not None and stopping.status.value == "Stopping" and stopping.active

    root = StateRoot(tmp_path)  # one root, as the API server keeps it: a stopping job is not served from its cache

    async def read() -> TuningState | None:  # what the dashboard shows of it (it reads in a worker thread)
        return (await asyncio.to_thread(root.load, "orphaned")).state

    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    state = await read()
    while state is not None and not state.done and loop.time() < deadline:
        await asyncio.sleep(0.2)
        state = await read()
    assert state is not None and state.status.value == "Failed" and not state.active
    assert "killed by a user" in (state.completion_reason or "")
    assert (await store.load()) == state


async def test_a_reader_stops_the_jobs_of_an_abort_that_died_before_its_stops(tmp_path: Path,
                                                                              launches: Path) -> None:
    """The triggerer dies after the abort's checkpoint (every active trial Stopping) but before any stop is sent:
    the next reader sends the stops again, so no trial trains, and bills, to its end."""
    from hb_airflow.ui.jobs import StateRoot
    from hb_core.controller import abort

    spec = spec_for(tmp_path, "unstopped", parallel=3, jobs=9, sleep=0.5, max_resource=27)
    _, store = await cancelled_mid_run(spec)
    stored = await store.load()
    assert stored is not None
    stopping, _ = abort(stored, "the Airflow task was killed by a user", time.time(), [])
    await store.save(stopping, stored.revision)  # the controller dies here: its stops are never sent
    assert stopping.status.value == "Stopping" and stopping.active

    root = StateRoot(tmp_path)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    state = (await asyncio.to_thread(root.load, "unstopped")).state
    while state is not None and not state.done and loop.time() < deadline:
        await asyncio.sleep(0.2)
        state = (await asyncio.to_thread(root.load, "unstopped")).state
    assert state is not None and state.status.value == "Failed" and not state.active
    trained = {t.trial_id: t.resource for t in state.trials}
    assert all(resource < 27 for resource in trained.values()), f"a trial trained to its end: {trained}"
