"""The rung barrier on the local backend, end to end with real subprocess trials (``scripts/epochs.py``).

A trial's log is the truth of what it trained: each asserts on the epochs the
script printed, never on how long anything took.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, cast

from hb_core import barrier
from hb_core.backends import process as proc
from hb_core.backends.clock import RealClock
from hb_core.backends.local import LocalBackend
from hb_core.backends.stores import MemoryStore
from hb_core.config import TuningConfig
from hb_core.runner import Tuner
from hb_core.state import Decision, TrialStatus, TuningState, TuningStatus
from tests.hb_core.backends.test_local import no_process_left, request  # noqa: F401 - the fixture kills leftovers

EPOCH = re.compile(r"^epoch=(\d+) ", re.MULTILINE)


def barrier_request(*, variant: str = "Stopping", timeout: float | None = 60.0, use: bool = True,
                    max_jobs: int = 8, sleep: float = 0.05) -> dict[str, Any]:
    body = request(static={"sleep": str(sleep), "barrier": "1" if use else "0"}, max_jobs=max_jobs, parallel=2,
                   max_resource=9)
    hb = body["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"]
    hb.update(ReductionFactor=3, Variant=variant)
    if timeout is not None:
        hb["RungBarrierTimeoutSeconds"] = timeout
    return body


async def tune(tmp_path: Path, body: dict[str, Any]) -> tuple[TuningState, LocalBackend, list[Decision]]:
    """Run the tuning job. ``poll_interval`` is an hour: every round after the first is woken by an event."""
    config = TuningConfig.from_dict(body)
    backend = LocalBackend(config, tmp_path / "job", job_name="barrier", tail_interval=0.02)
    store = MemoryStore(serialize=True)
    tuner = Tuner(config, backend, store, RealClock(), job_name="barrier", poll_interval=3600.0)
    try:
        state = await asyncio.wait_for(tuner.run(), timeout=90)
    finally:
        await backend.close()
    return state, backend, store.decisions


def trained(backend: LocalBackend, trial_id: str, attempt: int) -> list[int]:
    """The epochs the attempt's process printed."""
    text = (backend.attempt_dir(trial_id, attempt) / proc.LOG_FILE).read_text()
    return [int(epoch) for epoch in EPOCH.findall(text)]


async def test_stopped_trials_end_at_their_rung_with_the_barrier(tmp_path: Path) -> None:
    state, backend, decisions = await tune(tmp_path, barrier_request())
    assert state.status is TuningStatus.COMPLETED and len(state.trials) == 8
    stopped = [t for t in state.trials if t.status is TrialStatus.STOPPED]
    assert stopped, "the job must stop some trials for the test to mean anything"
    for trial in stopped:
        epochs = trained(backend, trial.trial_id, trial.attempt)
        assert epochs[-1] == trial.resource, f"{trial.trial_id} trained past rung {trial.resource}: {epochs}"
    for trial in state.trials:
        assert trial.attempt == 1
        if trial.status is TrialStatus.COMPLETED:
            assert trained(backend, trial.trial_id, 1) == list(range(1, 10))
    assert any(d.action == "continue" for d in decisions)
    verdicts = sorted(p.name for p in (tmp_path / "job" / "trials").rglob("verdicts/*.json"))
    assert "stop.json" in verdicts and "1.json" in verdicts


async def test_a_script_without_the_barrier_runs_as_before_when_it_is_on(tmp_path: Path) -> None:
    state, backend, _ = await tune(tmp_path, barrier_request(use=False, max_jobs=6))
    assert state.status is TuningStatus.COMPLETED and len(state.trials) == 6
    received = json.loads((backend.attempt_dir("0000", 1) / "output" / "data" / "received.json").read_text())
    spec = json.loads(received["env"][barrier.ENV])
    assert spec["levels"] == [1, 3] and spec["timeout"] == 60.0 and spec["attempt"] == 1
    assert Path(spec["verdicts"]) == backend.verdict_dir("0000")


async def test_barrier_off_gives_no_environment_and_no_verdicts(tmp_path: Path) -> None:
    state, backend, _ = await tune(tmp_path, barrier_request(timeout=None, max_jobs=4))
    assert state.status is TuningStatus.COMPLETED
    received = json.loads((backend.attempt_dir("0000", 1) / "output" / "data" / "received.json").read_text())
    assert barrier.ENV not in received["env"]
    assert not list((tmp_path / "job" / "trials").rglob("verdicts"))


async def test_promoted_in_place_trials_continue_in_the_same_process(tmp_path: Path) -> None:
    state, backend, decisions = await tune(tmp_path, barrier_request(variant="Promotion", max_jobs=10))
    assert state.status is TuningStatus.COMPLETED
    in_place = [d for d in decisions if d.action == "promote" and "in place" in d.message]
    assert in_place, "the first trials reach empty rungs: at least one is promoted in place"
    for decision in in_place:
        trial = state.trial(cast(str, decision.trial_id))  # a promotion names its trial
        assert trial is not None and decision.rung is not None
        logs = [trained(backend, trial.trial_id, a) for a in range(1, trial.attempt + 1)]
        epochs = next(e for e in logs if decision.rung in e)  # the attempt that waited at the rung
        assert epochs[-1] > decision.rung, epochs  # trained on past it
        assert epochs == list(range(epochs[0], epochs[-1] + 1))  # in one process: no gap, no repeat
    for trial in state.trials:  # every trial's epochs, over its attempts, were each trained once
        epochs = [e for attempt in range(1, trial.attempt + 1) for e in trained(backend, trial.trial_id, attempt)]
        assert epochs == list(range(1, trial.resource + 1)), (trial.trial_id, epochs)

