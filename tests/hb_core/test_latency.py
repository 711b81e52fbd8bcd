"""Latency in virtual time: each field of :class:`hb_core.Latency` has the effect its docstring states."""

from __future__ import annotations

from typing import Any, cast

import pytest

import hb_core
from hb_core.config import TuningConfig
from hb_core.errors import ConfigError
from hb_core.latency import DEFAULT_KEEP_ALIVE_SECONDS, PROFILES, Latency, profile
from hb_core.report import format_summary, summary
from hb_core.runner import RUNG_POLL_DIVISOR
from hb_core.state import TuningState
from tests.helpers import request

EPOCH = 10.0  # seconds per resource unit


def _value(hyperparameters: dict[str, Any], resource: int) -> float:
    return float(hyperparameters["learning_rate"])  # a flat curve: every rung ranks trials the same way


def _config(strategy: str = "Hyperband", keep_alive: int | None = None, **kwargs: Any) -> TuningConfig:
    body = request(strategy, parallel=1, **kwargs)  # one worker: the decisions do not depend on timing
    if keep_alive is not None:
        body["TrainingJobDefinition"]["ResourceConfig"] = {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                           "KeepAlivePeriodInSeconds": keep_alive}
    return TuningConfig.from_dict(body)


def _run(latency: Latency, **kwargs: Any) -> hb_core.SimulationResult:
    return hb_core.simulate(_config(**kwargs), _value, cost=EPOCH, latency=latency)


def _billed(result: hb_core.SimulationResult) -> dict[str, float]:
    return {t.trial_id: t.billable_seconds for t in result.state.trials}


def test_latency_rejects_what_is_not_a_duration() -> None:
    with pytest.raises(ConfigError, match=r"^Latency.metric_delay_seconds: `metric_delay_seconds >= 0`"):
        Latency(metric_delay_seconds=-1)
    with pytest.raises(ConfigError, match=r"^Latency.startup_seconds"):
        Latency(startup_seconds=float("inf"))
    with pytest.raises(ConfigError, match=r"profile in \['ideal', 'local', 'sagemaker-cloudwatch'"):
        profile("sagemaker-fast")
    with pytest.raises(ConfigError, match="startup_seconds is given only without latency"):
        hb_core.simulate(_config(max_jobs=2), _value, latency="ideal", startup_seconds=5)
    assert Latency.from_dict(PROFILES["sagemaker-logs"].to_dict()) == PROFILES["sagemaker-logs"]
    assert {"ideal", "sagemaker-cloudwatch", "sagemaker-logs", "sagemaker-live"} <= set(PROFILES)


def test_ideal_is_the_simulation_without_latency() -> None:
    plain = hb_core.simulate(_config(max_jobs=20), _value, cost=EPOCH)
    ideal = _run(PROFILES["ideal"], max_jobs=20)
    assert plain.trace == ideal.trace and _billed(plain) == _billed(ideal)
    assert ideal.trained_resource == ideal.total_resource  # nothing trained that the controller did not judge


def test_startup_delays_every_job_and_is_not_billed() -> None:
    base = _run(Latency(), strategy="Random", max_jobs=3, max_resource=5)
    slow = _run(Latency(startup_seconds=100), strategy="Random", max_jobs=3, max_resource=5)
    assert _billed(slow) == _billed(base) == {"0000": 50.0, "0001": 50.0, "0002": 50.0}
    assert slow.elapsed == pytest.approx(base.elapsed + 3 * 100)


@pytest.mark.parametrize("delay", [25.0, 60.0])
def test_metric_delay_bills_a_stopped_trial_about_that_much_more(delay: float) -> None:
    base = _run(Latency(), max_jobs=12)
    late = _run(Latency(metric_delay_seconds=delay), max_jobs=12)
    stopped = [t.trial_id for t in base.state.trials if t.status.value == "Stopped"]
    assert stopped and stopped == [t.trial_id for t in late.state.trials if t.status.value == "Stopped"]
    for trial_id in stopped:
        assert _billed(late)[trial_id] == pytest.approx(_billed(base)[trial_id] + delay)
    # the epochs trained while the stop was on its way are counted as trained, not as judged
    assert late.state.judged_resource() == base.state.judged_resource() == base.total_resource
    extra = sum(int(delay // EPOCH) for _ in stopped)
    assert late.trained_resource == base.trained_resource + extra
    # the controller records what it saw: a stopped job's end is news at once, its last values come a delay
    # later (recorded for the stopped trial), after the tuning job ended for the last trials
    assert late.state.judged_resource() < late.total_resource <= late.trained_resource


def test_stop_delay_bills_the_time_the_stop_takes_to_land() -> None:
    base = _run(Latency(), max_jobs=12)
    slow = _run(Latency(stop_delay_seconds=30), max_jobs=12)
    stopped = [t.trial_id for t in base.state.trials if t.status.value == "Stopped"]
    assert stopped
    for trial_id in stopped:
        assert _billed(slow)[trial_id] == pytest.approx(_billed(base)[trial_id] + 30)


def test_warm_pool_reuse_pays_the_warm_start_and_bills_the_retained_time() -> None:
    latency = Latency(startup_seconds=100, warm_startup_seconds=10, metric_delay_seconds=5)
    warm = _run(latency, strategy="Random", max_jobs=3, max_resource=5, keep_alive=300)
    starts = sorted(cast(float, t.start_time) for t in warm.state.trials)  # every trial here has started
    # trial 0 starts cold and trains 100..150; its end is seen at 155, when trial 1 launches on its instance
    assert warm.warm_starts == 2
    assert warm.state.retained_billable_seconds == pytest.approx(2 * 5)  # each reuse ended a 5 s retention
    assert warm.retained_seconds == pytest.approx(2 * 5 + 300)  # the last instance is kept to the end of its period
    assert warm.billed_seconds == pytest.approx(3 * 50 + 310)
    assert warm.elapsed == pytest.approx(100 + 50 + 5 + 2 * (10 + 50 + 5))
    assert starts == [0.0, 155.0, 220.0]

    cold = _run(latency, strategy="Random", max_jobs=3, max_resource=5, keep_alive=0)
    assert cold.warm_starts == 0 and cold.retained_seconds == 0
    assert cold.elapsed == pytest.approx(3 * (100 + 50 + 5))

    short = _run(latency, strategy="Random", max_jobs=3, max_resource=5, keep_alive=3)  # gone before the next launch
    assert short.warm_starts == 0 and short.retained_seconds == pytest.approx(3 * 3)


def test_warm_pools_are_on_by_default_for_hyperband_only() -> None:
    latency = Latency(startup_seconds=100, warm_startup_seconds=10)
    assert _config().keep_alive_seconds() == DEFAULT_KEEP_ALIVE_SECONDS
    assert _config(variant="Promotion").keep_alive_seconds(startup_seconds=1, first_rung_seconds=1000) > 0
    assert _config().keep_alive_seconds(startup_seconds=1, first_rung_seconds=1000) == 0  # start-up is negligible
    assert _config(keep_alive=0).keep_alive_seconds() == 0  # the request decides
    assert _config("Random").keep_alive_seconds() == 0
    assert _run(latency, max_jobs=6).warm_starts == 5
    assert _run(latency, max_jobs=6, keep_alive=0).warm_starts == 0
    assert _run(Latency(startup_seconds=100), max_jobs=6).warm_starts == 0  # the platform has no warm pools


def test_poll_interval_paces_the_rounds() -> None:
    """A polled platform is seen at its rounds: every poll interval, and no more often than a quarter of it when
    a trial is due at a rung (hb_core.runner.rung_due_time)."""
    result = _run(Latency(poll_interval_seconds=60), max_jobs=6)
    seen = {time for t in result.state.trials for _, _, time in t.points}
    seen |= {t.end_time for t in result.state.trials if t.end_time is not None}
    rounds = sorted(seen)
    assert rounds and rounds[0] == 60.0  # the first epoch prints at 10 s and is seen at the first round
    assert all(b - a >= 60 / RUNG_POLL_DIVISOR - 1e-9 for a, b in zip(rounds, rounds[1:]))
    assert any(time % 60 for time in rounds)  # some rounds came early, at a rung's predicted time


def test_the_summary_reports_what_was_trained_and_billed_beside_what_was_judged() -> None:
    result = _run(Latency(metric_delay_seconds=30, stop_delay_seconds=20, startup_seconds=50,
                          warm_startup_seconds=5), max_jobs=12)
    s = summary(result.state)
    assert s["judged_resource"] == result.state.judged_resource()
    assert s["total_resource"] == result.total_resource > s["judged_resource"]
    assert s["resource_saved_fraction"] == pytest.approx(1 - s["total_resource"] / s["full_budget_resource"])
    assert s["billable_seconds"] == pytest.approx(result.state.billed_seconds, abs=1e-3)
    assert s["retained_seconds"] == pytest.approx(result.state.retained_billable_seconds, abs=1e-3)
    assert result.state.retained_billable_seconds > 0
    overshoot = s["total_resource"] - s["judged_resource"]
    assert f"{s['judged_resource']} judged ({overshoot} trained while stops landed)" in format_summary(s)


def test_states_saved_before_the_accounting_fields_still_read() -> None:
    state = _run(Latency(metric_delay_seconds=30), max_jobs=6).state
    data = state.to_dict()
    data.pop("retained_billable_seconds")
    for trial in data["trials"]:
        trial.pop("stop_resource"), trial.pop("retained_seconds")
    old = TuningState.from_dict(data)
    assert old.retained_billable_seconds == 0 and old.judged_resource() == old.total_resource()
    assert TuningState.from_dict(state.to_dict()) == state
