from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from hb_core.controller import converged, decide, new_state, outstanding_actions
from hb_core.events import (
    Event,
    Finish,
    Launch,
    MetricReported,
    Resume,
    Stop,
    TrialCompleted,
    TrialFailed,
    TrialStarted,
    TrialStopped,
)
from hb_core.state import TrialStatus, TuningState, TuningStatus
from tests.helpers import config, fresh

STRATEGIES = [
    ("Random", {}),
    ("Grid", {}),
    ("Hyperband", {}),
    ("Hyperband", {"variant": "Promotion"}),
    ("Hyperband", {"brackets": 3}),
    ("Bayesian", {}),
    ("Hyperband", {"sampler": "MultiFidelityGP"}),
    ("Hyperband", {"sampler": "Bayesian", "variant": "Promotion"}),
]


def ids(actions: tuple[object, ...], kind: type) -> list[str]:
    return [a.trial_id for a in actions if isinstance(a, kind)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("strategy", "extra"), STRATEGIES)
def test_contract_launch_report_complete_fail_stop(strategy: str, extra: dict[str, object]) -> None:
    """Every strategy obeys the same contract: fill the slots, react to each event kind, finish."""
    state, actions = fresh(strategy, parallel=3, max_jobs=6, **extra)
    launches = [a for a in actions if isinstance(a, Launch)]
    assert [a.trial_id for a in launches] == ["0000", "0001", "0002"]
    assert all(a.attempt == 1 and a.hyperparameters for a in launches)
    assert state.config.space.contains(launches[0].hyperparameters)

    # started -> InProgress; a metric is recorded with its time
    state, actions = decide(state, [TrialStarted("0000", 1, 1.0), MetricReported("0000", 1, 2.0, 0.5)], 2.0)
    assert state.trials[0].status is TrialStatus.IN_PROGRESS
    assert state.trials[0].points == ((1, 0.5, 2.0),)
    assert actions == ()

    # completed -> a slot frees and exactly one new trial (or a promotion) takes it
    state, actions = decide(state, [TrialCompleted("0000", 1, 3.0)], 3.0)
    assert len(state.active) == 3
    assert len([a for a in actions if isinstance(a, (Launch, Resume))]) == 1

    # failed (not retriable) -> Failed with its reason, a slot frees
    state, actions = decide(state, [TrialFailed("0001", 1, 4.0, "exit code 1: boom")], 4.0)
    assert state.trials[1].status is TrialStatus.FAILED
    assert state.trials[1].stop_reason == "exit code 1: boom"
    assert len(state.active) == 3

    # stopped from outside -> Stopped with a reason that says so
    state, _ = decide(state, [TrialStopped("0002", 1, 5.0)], 5.0)
    assert state.trials[2].status is TrialStatus.STOPPED
    assert "outside" in (state.trials[2].stop_reason or "")
    assert len(state.active) <= 3

    # end everything: complete whatever is active until the job finishes
    now = 6.0
    for _ in range(40):
        if state.done:
            break
        events: list[Event] = []
        for index in state.active:
            trial = state.trials[index]
            budget = trial.budget or 27
            events.append(TrialStarted(trial.trial_id, trial.attempt, now))
            events += [MetricReported(trial.trial_id, trial.attempt, now, 0.1 * index, seq=r)
                       for r in range(trial.resource + 1, budget + 1)]
            events.append(TrialCompleted(trial.trial_id, trial.attempt, now))
        now += 1.0
        state, actions = decide(state, events, now)
    assert state.done
    assert state.finish is not None and state.finish["best_trial_id"] is not None
    assert all(t.status.ended for t in state.trials)
    assert len(state.trials) <= 6


def test_stopping_rule_keeps_only_the_top_third() -> None:
    state, _ = fresh("Hyperband", parallel=3, max_jobs=3)
    start: list[Event] = [TrialStarted(t, 1, 0.0) for t in ("0000", "0001", "0002")]
    state, _ = decide(state, start, 0.0)
    # first at rung 1: an empty rung keeps it
    state, actions = decide(state, [MetricReported("0000", 1, 1.0, 0.50)], 1.0)
    assert actions == ()
    assert state.decisions[-1].action == "continue"
    # worse, second of two: keep_count(2, 3) == 1 -> stopped
    state, actions = decide(state, [MetricReported("0001", 1, 1.1, 0.40)], 1.1)
    assert [a.trial_id for a in actions if isinstance(a, Stop)] == ["0001"]
    decision = state.decisions[-1]
    assert (decision.action, decision.rung, decision.rank, decision.n) == ("stop", 1, 2, 2)
    assert decision.cutoff == pytest.approx(0.50)
    assert "rank=2/2" in decision.line() and "cutoff=0.5" in decision.line()
    assert state.trials[1].status is TrialStatus.STOPPING
    # better than all: kept
    state, actions = decide(state, [MetricReported("0002", 1, 1.2, 0.90)], 1.2)
    assert actions == ()
    assert state.decisions[-1].rank == 1


def test_minimize_folds_the_sign_once() -> None:
    state, _ = fresh("Hyperband", parallel=2, max_jobs=2, objective=("Minimize", "loss"))
    state, _ = decide(state, [MetricReported("0000", 1, 1.0, 0.2)], 1.0)
    state, actions = decide(state, [MetricReported("0001", 1, 1.0, 0.1)], 1.0)
    assert actions == ()  # lower loss is better: kept
    state, actions = decide(state, [MetricReported("0000", 1, 2.0, 0.3, seq=2)], 2.0)
    assert state.decisions == () or state.decisions[-1].action != "stop"


def test_trial_is_never_stopped_before_min_resource() -> None:
    state, _ = fresh("Hyperband", parallel=3, max_jobs=3, min_resource=3, max_resource=27)
    state, _ = decide(state, [MetricReported("0000", 1, 1.0, 0.9)], 1.0)
    for r in (1, 2):
        state, actions = decide(state, [MetricReported("0001", 1, float(r), 0.1, seq=r)], float(r))
        assert not any(isinstance(a, Stop) for a in actions)
    assert state.rungs[0][0].level == 3
    assert state.rungs[0][0].keys == ()


def test_explicit_resource_crossing_a_rung_is_judged_there() -> None:
    state, _ = fresh("Hyperband", parallel=2, max_jobs=2)
    state, _ = decide(state, [MetricReported("0000", 1, 1.0, 0.9, resource=4)], 1.0)
    # 0000 crossed rungs 1 and 3 with one value
    assert [r.keys for r in state.rungs[0][:2]] == [(-0.9,), (-0.9,)]
    assert state.trials[0].rung_index == 2


def test_duplicate_and_stale_events_are_ignored() -> None:
    state, _ = fresh("Hyperband", parallel=2, max_jobs=2)
    state, _ = decide(state, [MetricReported("0000", 1, 1.0, 0.5, seq=1)], 1.0)
    again, actions = decide(state, [MetricReported("0000", 1, 1.5, 0.9, seq=1)], 1.5)
    assert again.trials[0].points == state.trials[0].points and actions == ()
    stale, actions = decide(state, [TrialCompleted("0000", 7, 2.0)], 2.0)  # attempt 7 never ran
    assert stale.trials[0].status is state.trials[0].status and actions == ()
    unknown, _ = decide(state, [TrialStarted("9999", 1, 2.0)], 2.0)
    assert unknown.decisions[-1].action == "ignore"


def test_promotion_variant_pauses_then_promotes_the_best() -> None:
    state, actions = fresh("Hyperband", variant="Promotion", parallel=3, max_jobs=4)
    assert {a.budget for a in actions if isinstance(a, Launch)} == {1}
    values = {"0000": 0.3, "0001": 0.9, "0002": 0.6}
    events: list[Event] = []
    for trial_id, value in values.items():
        events += [MetricReported(trial_id, 1, 1.0, value), TrialCompleted(trial_id, 1, 1.0)]
    state, actions = decide(state, events, 1.0)
    paused = [t.trial_id for t in state.trials if t.status is TrialStatus.PAUSED]
    assert len(paused) == 2 or len(paused) == 3
    resumes = [a for a in actions if isinstance(a, Resume)]
    # 3 values at rung 1 -> floor(3/3) = 1 promotable: the best, 0001, to rung 3
    assert [(a.trial_id, a.attempt, a.from_resource, a.to_resource) for a in resumes] == [("0001", 2, 1, 3)]
    assert state.trials[1].status is TrialStatus.PENDING and state.trials[1].budget == 3
    promote = next(d for d in state.decisions if d.action == "promote")
    assert promote.rank == 1 and promote.n == 3


def test_retriable_failure_is_retried_then_counted() -> None:
    state, _ = fresh("Random", parallel=1, max_jobs=1, extensions={"MaxRetriesPerTrial": 1})
    state, _ = decide(state, [MetricReported("0000", 1, 1.0, 0.5)], 1.0)
    state, actions = decide(state, [TrialFailed("0000", 1, 2.0, "spot interruption", retriable=True)], 2.0)
    assert [type(a).__name__ for a in actions] == ["Resume"]
    assert actions[0].attempt == 2 and actions[0].from_resource == 1  # type: ignore[union-attr]
    assert state.trials[0].status is TrialStatus.PENDING
    state, actions = decide(state, [TrialFailed("0000", 2, 3.0, "spot interruption", retriable=True)], 3.0)
    assert state.trials[0].status is TrialStatus.FAILED


def test_failed_trials_leave_the_rung_statistics() -> None:
    state, _ = fresh("Hyperband", parallel=2, max_jobs=2)
    state, _ = decide(state, [MetricReported("0000", 1, 1.0, 0.9)], 1.0)
    assert state.rungs[0][0].keys == (-0.9,)
    state, _ = decide(state, [TrialFailed("0000", 1, 2.0, "OOM")], 2.0)
    assert state.rungs[0][0].keys == ()


def test_fail_fast_when_the_first_trials_all_fail() -> None:
    state, _ = fresh("Random", parallel=3, max_jobs=20)
    failures: list[Event] = [TrialFailed(f"{i:04d}", 1, 1.0, "ImportError: no module named torch") for i in range(3)]
    state, actions = decide(state, failures, 1.0)
    assert state.status is TuningStatus.FAILED
    finish = [a for a in actions if isinstance(a, Finish)]
    assert finish and "first 3 training jobs all failed" in finish[0].reason
    assert "ImportError" in finish[0].reason


def test_max_failed_training_jobs_fails_the_job_and_stops_the_rest() -> None:
    state, _ = fresh("Random", parallel=3, max_jobs=20, extensions={"MaxFailedTrainingJobs": 1})
    state, _ = decide(state, [MetricReported("0000", 1, 1.0, 0.5)], 1.0)
    state, actions = decide(state, [TrialFailed("0001", 1, 2.0, "x"), TrialFailed("0002", 1, 2.0, "y")], 2.0)
    assert state.status is TuningStatus.STOPPING and state.outcome is TuningStatus.FAILED
    assert ids(actions, Stop) == ["0000"]
    state, actions = decide(state, [TrialStopped("0000", 1, 3.0)], 3.0)
    assert state.status is TuningStatus.FAILED
    assert "MaxFailedTrainingJobs=1" in (state.completion_reason or "")


@pytest.mark.parametrize(
    ("kwargs", "events_value", "reason"),
    [
        ({"completion": {"TargetObjectiveMetricValue": 0.8}}, 0.85, "TargetObjectiveMetricValue"),
        ({"max_runtime": 120}, 0.1, "MaxRuntimeInSeconds=120"),
        ({"extensions": {"MaxBillableSeconds": 100}}, 0.1, "MaxBillableSeconds=100"),
    ],
)
def test_completion_criteria_stop_every_running_job(kwargs: dict[str, object], events_value: float,
                                                    reason: str) -> None:
    state, _ = fresh("Random", parallel=2, max_jobs=10, **kwargs)
    start = [TrialStarted("0000", 1, 0.0), TrialStarted("0001", 1, 0.0)]
    state, actions = decide(state, [*start, MetricReported("0000", 1, 150.0, events_value)], 150.0)
    assert state.status is TuningStatus.STOPPING
    assert reason in (state.completion_reason or "")
    assert sorted(ids(actions, Stop)) == ["0000", "0001"]
    assert not ids(actions, Launch)
    state, actions = decide(state, [TrialStopped("0000", 1, 151.0), TrialStopped("0001", 1, 151.0)], 151.0)
    assert state.status is TuningStatus.COMPLETED
    assert [type(a) for a in actions] == [Finish]


def test_best_objective_not_improving() -> None:
    state, _ = fresh("Random", parallel=1, max_jobs=20,
                     completion={"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 3}})
    now = 0.0
    for value in (0.5, 0.4, 0.3, 0.2):
        trial = state.trials[state.active[0]]
        now += 1
        state, _ = decide(state, [MetricReported(trial.trial_id, 1, now, value), TrialCompleted(trial.trial_id, 1, now)],
                          now)
    assert state.status is TuningStatus.COMPLETED
    assert "BestObjectiveNotImproving" in (state.completion_reason or "")
    assert state.finish is not None and state.finish["best_trial_id"] == "0000"


@pytest.mark.parametrize(
    ("keys", "window", "expected"),
    [((-0.5,) * 11, 10, True), ((-0.5,) * 10, 10, False), ((-0.4,) + (-0.5,) * 10, 10, False),
     ((-0.50000001,) + (-0.5,) * 10, 10, True), ((math.inf,) * 11, 10, False)],
)
def test_convergence_test(keys: tuple[float, ...], window: int, expected: bool) -> None:
    assert converged(keys, window) is expected


def test_grid_is_exhausted_then_finishes() -> None:
    state, actions = fresh("Grid", parallel=10, max_jobs=None)
    assert len(ids(actions, Launch)) == 6  # 3 x 2 categorical values
    combos = {tuple(sorted(a.hyperparameters.items())) for a in actions if isinstance(a, Launch)}
    assert len(combos) == 6


def test_outstanding_actions_after_restart() -> None:
    state, actions = fresh("Hyperband", parallel=2, max_jobs=4)
    assert list(outstanding_actions(state)) == list(actions)
    state, actions = decide(state, [MetricReported("0000", 1, 1.0, 0.9), MetricReported("0001", 1, 1.0, 0.1)], 1.0)
    assert [a for a in outstanding_actions(state) if isinstance(a, Stop)] == list(actions)


def test_state_round_trips_through_json_mid_run() -> None:
    state, _ = fresh("Hyperband", variant="Promotion", parallel=3, max_jobs=6, brackets=2)
    events: list[Event] = [MetricReported("0000", 1, 1.0, 0.3), TrialCompleted("0000", 1, 1.0),
                           TrialStarted("0001", 1, 0.5)]
    state, _ = decide(state, events, 1.0)
    again = TuningState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    later: list[Event] = [MetricReported("0001", 1, 2.0, 0.7)]
    assert decide(again, later, 2.0) == decide(state, later, 2.0)


def test_new_state_needs_a_job_name() -> None:
    unnamed = replace(config("Random"), name=None)
    with pytest.raises(ValueError, match="HyperParameterTuningJobName"):
        new_state(unnamed, now=0.0)


def test_values_printed_after_a_stop_decision_are_recorded_but_enter_no_rung() -> None:
    """The trial's resource is what its job trained, its last value what AMT reports for the job; its rank at
    the rung it was stopped at stays the one judged."""
    state, _ = fresh("Hyperband", parallel=2, max_jobs=2)
    state, _ = decide(state, [MetricReported("0000", 1, 1.0, 0.9), MetricReported("0001", 1, 1.0, 0.1)], 1.0)
    assert state.trials[1].status is TrialStatus.STOPPING
    rungs = state.rungs
    state, _ = decide(state, [MetricReported("0001", 1, 2.0, 0.99, seq=2)], 2.0)
    assert state.trials[1].points == ((1, 0.1, 1.0), (2, 0.99, 2.0)) and state.trials[1].resource == 2
    assert state.rungs == rungs and state.trials[1].status is TrialStatus.STOPPING
    assert state.best_seen == 0.99
    assert state.trials[1].stop_resource == 1 and state.trials[1].judged_resource == 1
    # a backend may report a stop's end before the job's last values: they are recorded for the stopped trial
    state, _ = decide(state, [TrialStopped("0001", 1, 3.0), MetricReported("0001", 1, 3.5, 0.5, seq=3)], 3.5)
    stopped = state.trials[1]
    assert stopped.status is TrialStatus.STOPPED and stopped.resource == 3 and stopped.judged_resource == 1
    assert stopped.segment_start is None and state.rungs == rungs
    assert state.total_resource() == state.trials[0].resource + 3
    assert state.judged_resource() == state.trials[0].resource + 1
    # an earlier attempt's values are not
    state, _ = decide(state, [MetricReported("0001", 0, 4.0, 0.5, seq=4)], 4.0)
    assert state.trials[1].resource == 3


def test_a_job_that_completes_after_its_stop_was_decided_counts_as_stopped() -> None:
    state, _ = fresh("Hyperband", parallel=2, max_jobs=2)
    state, _ = decide(state, [MetricReported("0000", 1, 1.0, 0.9), MetricReported("0001", 1, 1.0, 0.1)], 1.0)
    state, _ = decide(state, [TrialCompleted("0001", 1, 2.0)], 2.0)
    assert state.trials[1].status is TrialStatus.STOPPED
    assert "before the stop landed" in (state.trials[1].stop_reason or "")


def test_best_so_far_steps_at_each_improvement_and_skips_failed_trials_and_nan() -> None:
    state, _ = fresh("Random", parallel=3, max_jobs=6, objective=("Minimize", "loss"))
    state, _ = decide(state, [TrialStarted(t, 1, 0.0) for t in ("0000", "0001", "0002")], 0.0)
    rounds: list[tuple[float, list[Event]]] = [
        (1.0, [MetricReported("0000", 1, 1.0, 0.5)]),
        (2.0, [MetricReported("0001", 1, 2.0, math.nan)]),
        (2.5, [MetricReported("0002", 1, 2.5, 0.1)]),  # its trial fails below: the value does not count
        (2.6, [TrialFailed("0002", 1, 2.6, "AlgorithmError")]),
        (3.0, [MetricReported("0001", 1, 3.0, 0.4, seq=2)]),
        (3.5, [MetricReported("0001", 1, 3.5, 0.45, seq=3)]),  # worse: no step
        (4.0, [MetricReported("0000", 1, 4.0, 0.3, seq=2)]),
    ]
    for now, events in rounds:
        state, _ = decide(state, events, now)
    assert state.trials[2].status is TrialStatus.FAILED
    assert state.best_so_far() == [(1.0, 0.5), (3.0, 0.4), (4.0, 0.3)]
