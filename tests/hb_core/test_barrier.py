"""The rung barrier: the script's helper, the config key, the controller's verdicts and the simulator's model."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hb_core import barrier
from hb_core.config import TuningConfig
from hb_core.controller import decide, new_state, outstanding_actions
from hb_core.curves import mlp_accuracy, mlp_epoch_seconds
from hb_core.errors import ConfigError
from hb_core.events import (
    Launch,
    MetricReported,
    Resume,
    RungVerdict,
    Stop,
    TrialCompleted,
    TrialStarted,
)
from hb_core.simulate import simulate
from hb_core.state import TrialStatus, TuningState
from tests.helpers import request

HB = ("HyperParameterTuningJobConfig", "StrategyConfig", "HyperbandStrategyConfig")


def barrier_config(timeout: Any = 60, min_rung_results: int | None = None, **kwargs: Any) -> TuningConfig:
    body = request(**kwargs)
    hb = body[HB[0]][HB[1]][HB[2]]
    if timeout is not None:
        hb["RungBarrierTimeoutSeconds"] = timeout
    if min_rung_results is not None:
        hb["MinRungResults"] = min_rung_results
    return TuningConfig.from_dict(body)


def started(config: TuningConfig) -> tuple[TuningState, tuple[Any, ...]]:
    state, actions = decide(new_state(config, now=0.0), [], 0.0)
    launched = [a for a in actions if isinstance(a, Launch)]
    return decide(state, [TrialStarted(a.trial_id, 1, 0.0) for a in launched], 0.0)[0], actions


# ---------------------------------------------------------------- the helper a script calls


def write(directory: Path, name: str, body: dict[str, Any]) -> None:
    (directory / name).write_text(json.dumps(body))


def test_off_unless_the_environment_names_a_barrier(tmp_path: Path) -> None:
    assert not barrier.RungBarrier.from_env({}).active
    assert not barrier.RungBarrier.from_env({barrier.ENV: "not json"}).active
    assert barrier.RungBarrier.from_env({}).reached(1, 0.5) == barrier.GO_ON
    env = barrier.environment([3, 1], 30, str(tmp_path), 2)
    gate = barrier.RungBarrier.from_env(env)
    assert gate.active and gate.levels == {1, 3} and gate.timeout == 30 and gate.attempt == 2


def test_waits_only_at_a_rung_and_reads_go_on_or_stop(tmp_path: Path) -> None:
    gate = barrier.RungBarrier([1, 3], 30, str(tmp_path), 1)
    assert gate.reached(2, 0.4) == barrier.GO_ON  # not a rung: no wait, nothing published
    assert not list(tmp_path.iterdir())
    write(tmp_path, barrier.verdict_file(1), barrier.verdict_body(9, 1))
    verdict = gate.reached(1, 0.5)
    assert not verdict.stop and verdict.budget == 9 and not verdict.timed_out
    published = json.loads((tmp_path / barrier.value_file(1)).read_text())
    assert published["level"] == 1 and published["value"] == 0.5 and published["attempt"] == 1
    write(tmp_path, barrier.verdict_file(3), barrier.verdict_body(3, 3))  # budget == level: end here
    assert gate.reached(3).stop


def test_a_stop_of_this_attempt_ends_the_wait_and_another_attempts_does_not(tmp_path: Path) -> None:
    write(tmp_path, barrier.STOP_FILE, barrier.stop_body(1, "rank 3 of 3 at rung 1"))
    assert barrier.RungBarrier([1], 30, str(tmp_path), 1).reached(1).stop
    later = barrier.RungBarrier([1], 0.05, str(tmp_path), 2).reached(1)
    assert not later.stop and later.timed_out


def test_no_verdict_within_the_timeout_goes_on_and_should_stop_ends_a_wait(tmp_path: Path) -> None:
    verdict = barrier.RungBarrier([1], 0.05, str(tmp_path), 1).reached(1)
    assert verdict.timed_out and not verdict.stop and verdict.budget is None
    assert barrier.RungBarrier([1], 30, str(tmp_path), 1).reached(1, should_stop=lambda: True).stop


def test_the_helper_is_a_standalone_stdlib_file(tmp_path: Path) -> None:
    """Copied next to a script, it imports with nothing but the standard library."""
    source = Path(barrier.__file__).read_text()
    (tmp_path / "barrier.py").write_text(source)
    script = ("import barrier, os; b = barrier.RungBarrier.from_env(); "
              "print(b.active, b.reached(1).budget)")
    env = {**barrier.environment([1], 5, str(tmp_path), 1), "PATH": "/usr/bin:/bin"}
    write(tmp_path, barrier.verdict_file(1), barrier.verdict_body(27, 1))
    done = subprocess.run([sys.executable, "-I", "-S", "-c", script.replace("import barrier", "import sys; "
                          f"sys.path.insert(0, {str(tmp_path)!r}); import barrier")],
                          capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "27"]


# ---------------------------------------------------------------- the request


@pytest.mark.parametrize("value", [0, -1, 3601, "soon", True])
def test_the_timeout_must_be_a_number_in_0_3600(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"RungBarrierTimeoutSeconds: `0 < RungBarrierTimeoutSeconds <= 3600`|"
                                          r"RungBarrierTimeoutSeconds: `RungBarrierTimeoutSeconds is a finite"):
        barrier_config(value)


def test_the_timeout_round_trips_and_gives_each_bracket_its_levels() -> None:
    config = barrier_config("120", brackets=3)
    assert config.hyperband is not None and config.hyperband.rung_barrier_timeout == 120.0
    assert TuningConfig.from_dict(config.to_dict()) == config
    assert [config.hyperband.barrier_levels(b) for b in range(3)] == [(1, 3, 9), (3, 9), (9,)]
    assert barrier_config(None).hyperband.barrier_levels(0) == ()  # type: ignore[union-attr]


# ---------------------------------------------------------------- the controller's verdicts


def test_launches_carry_the_levels_and_kept_trials_get_a_go_on_verdict() -> None:
    config = barrier_config(parallel=3, max_jobs=3)
    state, actions = started(config)
    assert {a.rung_levels for a in actions if isinstance(a, Launch)} == {(1, 3, 9)}
    state, actions = decide(state, [MetricReported("0000", 1, 1.0, 0.5)], 1.0)
    assert actions == (RungVerdict("0000", 1, 1, 27),)
    state, actions = decide(state, [MetricReported("0001", 1, 1.1, 0.4)], 1.1)
    assert [type(a) for a in actions] == [Stop]  # a lost trial's verdict is its Stop
    state, actions = decide(state, [MetricReported("0000", 1, 2.0, 0.6, seq=2)], 2.0)
    assert actions == ()  # not a rung: nothing to say
    assert outstanding_actions(state) == (Stop("0001", 1, state.trials[1].stop_reason or ""),)
    state, _ = decide(state, [MetricReported("0002", 1, 1.2, 0.9)], 1.2)
    assert RungVerdict("0002", 1, 1, 27) in outstanding_actions(state)  # reissued after a restart: idempotent


def test_without_the_barrier_nothing_changes() -> None:
    state, actions = started(barrier_config(None, parallel=2, max_jobs=2))
    assert all(a.rung_levels == () for a in actions if isinstance(a, Launch))
    _, actions = decide(state, [MetricReported("0000", 1, 1.0, 0.5)], 1.0)
    assert actions == ()


def test_promotion_variant_promotes_in_place_or_ends_the_job_at_its_rung() -> None:
    config = barrier_config(variant="Promotion", parallel=3, max_jobs=6)
    state, _ = started(config)
    values = {"0000": 0.3, "0001": 0.9}
    for trial_id, value in values.items():  # n <= 2 at rung 1: floor(n/3) = 0, nobody is promotable
        state, actions = decide(state, [MetricReported(trial_id, 1, 1.0, value)], 1.0)
        assert actions == (RungVerdict(trial_id, 1, 1, 1),)
    state, actions = decide(state, [MetricReported("0002", 1, 1.0, 0.95)], 1.0)  # n = 3: the best is promotable
    assert actions == (RungVerdict("0002", 1, 1, 3),)
    trial = state.trials[2]
    assert trial.status is TrialStatus.IN_PROGRESS and trial.attempt == 1 and trial.budget == 3
    assert "in place" in state.decisions[-1].message
    state, actions = decide(state, [MetricReported("0002", 1, 2.0, 0.96, seq=2)], 2.0)
    assert actions == ()
    state, actions = decide(state, [MetricReported("0002", 1, 3.0, 0.97, seq=3)], 3.0)
    assert actions == (RungVerdict("0002", 1, 3, 3),)  # alone at rung 3: it ends there and pauses


def test_an_in_place_promotion_waits_for_min_rung_results_as_a_paused_one_does() -> None:
    config = barrier_config(variant="Promotion", parallel=4, max_jobs=8, min_rung_results=4)
    state, _ = started(config)
    for trial_id, value in (("0000", 0.3), ("0001", 0.9), ("0002", 0.95)):  # n = 3 < 4: nobody is promotable
        state, actions = decide(state, [MetricReported(trial_id, 1, 1.0, value)], 1.0)
        assert actions == (RungVerdict(trial_id, 1, 1, 1),)
    state, actions = decide(state, [MetricReported("0003", 1, 1.0, 0.97)], 1.0)  # n = 4: the best is promotable
    assert actions == (RungVerdict("0003", 1, 1, 3),) and state.trials[3].budget == 3


def test_a_paused_trial_that_ranks_better_wins_the_slot_over_the_arriving_one() -> None:
    config = barrier_config(variant="Promotion", parallel=3, max_jobs=9)
    state, _ = started(config)
    for trial_id, value in (("0000", 0.99), ("0001", 0.2)):
        state, _ = decide(state, [MetricReported(trial_id, 1, 1.0, value)], 1.0)
    state, actions = decide(state, [TrialCompleted("0000", 1, 1.5)], 1.5)  # 0000 pauses at rung 1
    assert state.trials[0].status is TrialStatus.PAUSED
    state, _ = decide(state, [TrialStarted(a.trial_id, 1, 1.5) for a in actions if isinstance(a, Launch)], 1.5)
    _, actions = decide(state, [MetricReported("0002", 1, 2.0, 0.9)], 2.0)  # n = 3: 0000 ranks first, not 0002
    assert RungVerdict("0002", 1, 1, 1) in actions


def test_an_in_place_promotion_that_missed_its_job_becomes_a_resume() -> None:
    config = barrier_config(variant="Promotion", parallel=3, max_jobs=6)
    state, _ = started(config)
    for trial_id, value in (("0000", 0.3), ("0001", 0.4), ("0002", 0.95)):
        state, actions = decide(state, [MetricReported(trial_id, 1, 1.0, value)], 1.0)
    assert state.trials[2].budget == 3
    state, actions = decide(state, [TrialCompleted("0002", 1, 5.0)], 5.0)  # its wait had timed out: it exited
    resume = next(a for a in actions if isinstance(a, Resume))
    assert (resume.trial_id, resume.attempt, resume.from_resource, resume.to_resource) == ("0002", 2, 1, 3)
    assert resume.rung_levels == (1, 3, 9)
    assert state.trials[2].status is TrialStatus.PENDING


# ---------------------------------------------------------------- the simulator's model


def sim_config(variant: str, timeout: float | None) -> TuningConfig:
    return barrier_config(timeout, variant=variant, parallel=5, max_jobs=60, objective=("Maximize", "validation:accuracy"))


def test_without_latency_the_stopping_variant_runs_the_same_with_the_barrier() -> None:
    """Stops land at once in the ideal simulator, so a barrier changes no decision and no time."""
    off = simulate(sim_config("Stopping", None), mlp_accuracy, cost=mlp_epoch_seconds, startup_seconds=100.0)
    on = simulate(sim_config("Stopping", 600), mlp_accuracy, cost=mlp_epoch_seconds, startup_seconds=100.0)
    assert [t.points for t in on.trials] == [t.points for t in off.trials]
    assert on.elapsed == off.elapsed


def test_in_place_promotions_save_their_start_up_in_the_simulator() -> None:
    off = simulate(sim_config("Promotion", None), mlp_accuracy, cost=mlp_epoch_seconds, startup_seconds=180.0)
    on = simulate(sim_config("Promotion", 600), mlp_accuracy, cost=mlp_epoch_seconds, startup_seconds=180.0)
    in_place = [t for t in on.state.trials if t.attempt == 1 and t.resource > t.points[0][0] and
                any(r > 1 for r, _, _ in t.points)]
    assert in_place, "some trials went past their first rung in their first job"
    assert sum(t.attempt for t in on.state.trials) < sum(t.attempt for t in off.state.trials)
    assert on.best_objective == pytest.approx(off.best_objective)


def test_a_simulated_job_without_a_verdict_goes_on_after_the_timeout() -> None:
    """A backend that ignores verdicts (the barrier's timeout) still finishes every trial."""
    import asyncio

    from hb_core.backends.clock import VirtualClock
    from hb_core.backends.simulated import SimulatedBackend
    from hb_core.backends.stores import MemoryStore
    from hb_core.runner import Tuner

    class Deaf(SimulatedBackend):
        async def verdict(self, action: RungVerdict) -> None:
            return None

    config = dataclasses.replace(sim_config("Stopping", 50), name="deaf")
    clock = VirtualClock()
    backend = Deaf(mlp_accuracy, clock, cost=1.0, barrier_timeout=50.0, default_budget=27)
    state = asyncio.run(Tuner(config, backend, MemoryStore(), clock, poll_interval=float("inf")).run())
    full = [t for t in state.trials if t.status is TrialStatus.COMPLETED]
    assert full and all(t.resource == 27 for t in full)
    first = full[0]
    gaps = [b[2] - a[2] for a, b in zip(first.points, first.points[1:])]
    assert gaps[0] == pytest.approx(51.0)  # epoch 2 came 50 s of waiting + 1 s of training after rung 1
