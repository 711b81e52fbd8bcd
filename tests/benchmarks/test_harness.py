"""The virtual-time event loop for peers, and our methods through hb_core.simulate, on a tiny task."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import harness
import pytest

from tests.benchmarks.tiny import cost, objective, task


class Scripted:
    """A policy with fixed configurations that stops every trial at ``stop_at`` (0: never); records calls."""

    def __init__(self, configs: Iterable[dict[str, Any]], stop_at: int = 0) -> None:
        self.configs = list(configs)
        self.stop_at = stop_at
        self.running: set[int] = set()
        self.peak = 0
        self.finished: list[tuple[int, int, bool]] = []

    def ask(self) -> tuple[int, dict[str, Any]] | None:
        if not self.configs:
            return None
        config = self.configs.pop(0)
        handle = len(self.finished) + len(self.running)
        self.running.add(handle)
        self.peak = max(self.peak, len(self.running))
        return handle, config

    def report(self, handle: int, epoch: int, value: float) -> bool:
        return not (self.stop_at and epoch >= self.stop_at)

    def finish(self, handle: int, epoch: int, value: float, completed: bool) -> None:
        self.running.discard(handle)
        self.finished.append((handle, epoch, completed))


def test_one_worker_runs_trials_back_to_back_in_virtual_time() -> None:
    configs = [{"x": "a", "y": "a"}, {"x": "b", "y": "d"}]
    policy = Scripted(configs)
    run = harness.run_policy(policy, task(target=2.0), method="p", seed=0, workers=1, cap=1e6)
    assert run.trials == 2 and run.epochs == 18
    assert run.elapsed == pytest.approx(9 * cost(configs[0], 1) + 9 * cost(configs[1], 1))
    assert policy.finished == [(0, 9, True), (1, 9, True)]
    # the ignore: pytest.approx in a tuple is typed Approx, which mypy thinks never equals a float
    assert run.trace[-1] == (pytest.approx(run.elapsed), objective(configs[1], 9))  # type: ignore[comparison-overlap]


def test_slots_never_exceed_the_workers_and_stopped_trials_free_them() -> None:
    configs = [{"x": x, "y": y} for x in "abcd" for y in "abcd"]
    policy = Scripted(configs, stop_at=3)
    run = harness.run_policy(policy, task(target=2.0), method="p", seed=0, workers=3, cap=1e6)
    assert policy.peak == 3
    assert run.trials == 16 and run.epochs == 16 * 3
    assert all(not completed and epoch == 3 for _, epoch, completed in policy.finished)


def test_a_run_stops_at_the_target() -> None:
    best = {"x": "d", "y": "d"}
    run = harness.run_policy(Scripted([best] * 5), task(target=0.8), method="p", seed=0, workers=1, cap=1e6)
    first = next(e for e in range(1, 10) if objective(best, e) >= 0.8)
    assert run.time_to(0.8) == pytest.approx(first * cost(best, 1))
    assert run.trials == 1


def test_a_run_stops_at_the_cap_and_at_max_trials() -> None:
    configs = [{"x": "a", "y": "a"}] * 50
    capped = harness.run_policy(Scripted(configs), task(), method="p", seed=0, workers=2, cap=20.0)
    assert capped.elapsed == 20.0 and capped.time_to(0.9) == math.inf
    limited = harness.run_policy(Scripted(configs), task(), method="p", seed=0, workers=2, cap=1e6, max_trials=4)
    assert limited.trials == 4


@pytest.mark.parametrize("method", sorted(harness.OURS))
def test_every_method_of_ours_runs_on_the_virtual_clock(method: str) -> None:
    run = harness.run_ours(task(target=0.88), method, seed=1, workers=3, cap=10_000, max_trials=40)
    assert 0 < run.trials <= 40
    assert run.trace == sorted(run.trace)
    values = [v for _, v in run.trace]
    assert values == sorted(values)


def test_the_request_carries_strategy_extensions_and_limits() -> None:
    body = harness.request(task(), "HB-promo", seed=3, workers=4, cap=50.0)
    config = body["HyperParameterTuningJobConfig"]
    assert config["StrategyConfig"]["HyperbandStrategyConfig"]["Variant"] == "Promotion"
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 750, "MaxParallelTrainingJobs": 4,
                                        "MaxRuntimeInSeconds": 120}
    assert config["TuningJobCompletionCriteria"] == {"TargetObjectiveMetricValue": 0.9}
    assert "StrategyConfig" not in harness.request(task(), "Bayesian", seed=0, workers=1, cap=None)[
        "HyperParameterTuningJobConfig"]


def test_a_peer_under_latency_pays_start_up_metric_and_stop_delays_like_ours() -> None:
    from hb_core.latency import Latency

    config = {"x": "a", "y": "a"}  # 1 s per epoch
    latency = Latency(startup_seconds=10, warm_startup_seconds=2, metric_delay_seconds=3, stop_delay_seconds=1)
    policy = Scripted([config, dict(config)], stop_at=2)
    run = harness.run_policy(policy, task(target=2.0), method="p", seed=0, workers=1, cap=1e6, latency=latency)
    # trial 1: trains from 10, prints epoch 2 at 12, heard at 15, the stop lands at 16: epochs 1-5 trained;
    # its end is heard at 19; trial 2 trains warm from 21, prints 2 at 23, heard at 26, ends at 27 (5 epochs)
    assert policy.finished == [(0, 2, False), (1, 2, False)]
    assert run.epochs == 10 and run.elapsed == pytest.approx(27 + 3)
    # heard 3 s after it was printed (the ignore: pytest.approx in a tuple is typed Approx, not float)
    assert run.trace[0] == (pytest.approx(14.0), objective(config, 1))  # type: ignore[comparison-overlap]
    polled = harness.run_policy(Scripted([config], stop_at=2), task(target=2.0), method="p", seed=0, workers=1,
                                cap=1e6, latency=Latency(poll_interval_seconds=5))
    assert all(time % 5 == 0 for time, _ in polled.trace)


def test_ours_under_latency_report_what_they_trained_and_billed() -> None:
    from hb_core.latency import PROFILES

    ideal = harness.run_ours(task(target=2.0), "HB-stop", 0, 2, 1e6, max_trials=12)
    late = harness.run_ours(task(target=2.0), "HB-stop", 0, 2, 1e6, max_trials=12, latency=PROFILES["sagemaker-logs"])
    assert ideal.extra["trained"] == ideal.epochs == ideal.extra["judged"] and ideal.extra["warm_starts"] == 0
    # the controller records what was trained (values printed while a stop landed too), beside what it judged
    assert late.extra["trained"] == late.epochs > late.extra["judged"] and late.extra["warm_starts"] > 0
    assert late.elapsed > ideal.elapsed and late.extra["billed"] > ideal.extra["billed"]
class Pausing:
    """A pause-and-resume policy: new trials pause at ``pause_at``; ``resume`` hands them back in order."""

    def __init__(self, configs: list[dict[str, Any]], pause_at: int,
                 pick: tuple[dict[str, Any], int] | None = None) -> None:
        self.configs = list(configs)
        self.configs_of = dict(enumerate(configs))
        self.pause_at = pause_at
        self.paused: list[tuple[int, dict[str, Any], int]] = []
        self.finished: list[tuple[int, bool]] = []
        self.picked = pick

    def ask(self) -> tuple[int, dict[str, Any]] | None:
        if not self.configs:
            return None
        return len(self.finished) + len(self.paused), self.configs.pop(0)

    def resume(self) -> tuple[int, dict[str, Any], int] | None:
        return self.paused.pop(0) if self.paused else None

    def report(self, handle: int, epoch: int, value: float) -> bool | str:
        if epoch == self.pause_at and not any(h == handle for h, _ in self.finished):
            self.paused.append((handle, self.configs_of[handle], epoch))
            return harness.PAUSE
        return True

    def finish(self, handle: int, epoch: int, value: float, completed: bool) -> None:
        self.finished.append((handle, completed))

    def pick(self) -> tuple[dict[str, Any], int] | None:
        return self.picked


def test_a_paused_trial_frees_its_slot_and_resumes_from_its_epoch_without_counting_as_a_start() -> None:
    import dataclasses

    a, b = {"x": "a", "y": "a"}, {"x": "b", "y": "d"}  # 1 and 2 s per epoch
    policy = Pausing([a, b], pause_at=3)
    slow = dataclasses.replace(task(target=2.0), startup=0.5)
    run = harness.run_policy(policy, slow, method="p", seed=0, workers=1, cap=1e6, max_trials=2)
    # a to 3, pause; b to 3, pause; the limit is reached: a resumes to 9, then b; 4 starts of 0.5 s
    assert run.trials == 2 and run.epochs == 18
    assert policy.finished == [(0, True), (1, True)]
    assert run.elapsed == pytest.approx(4 * 0.5 + 9 * 1 + 9 * 2)


def test_a_search_that_ends_short_of_the_target_trains_its_pick_on_from_its_checkpoint() -> None:
    import dataclasses

    best = {"x": "d", "y": "d"}  # 4 s per epoch; reaches 0.85 at epoch 7
    policy = Pausing([best], pause_at=2, pick=(best, 2))
    # nothing is ever resumed: the search ends with the trial paused at epoch 2
    policy.resume = lambda: None  # type: ignore[method-assign]
    slow = dataclasses.replace(task(target=0.85), startup=0.5)
    run = harness.run_policy(policy, slow, method="p", seed=0, workers=2, cap=1e6)
    assert run.trials == 1 and run.epochs == 7
    assert run.time_to(0.85) == pytest.approx(0.5 + 2 * 4 + 0.5 + 5 * 4)
