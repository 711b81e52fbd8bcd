"""Builders of tuning requests and small drivers shared by the tests."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Iterable
from typing import Any

from hb_core.config import TuningConfig
from hb_core.controller import decide, new_state
from hb_core.events import Action, Event
from hb_core.state import TuningState

DEFAULT_RANGES: dict[str, Any] = {
    "ContinuousParameterRanges": [
        {"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.1", "ScalingType": "Logarithmic"},
        {"Name": "l2", "MinValue": "0.000001", "MaxValue": "2", "ScalingType": "Logarithmic"},
    ],
    "IntegerParameterRanges": [
        {"Name": "units", "MinValue": "10", "MaxValue": "1000", "ScalingType": "Logarithmic"},
        {"Name": "batch_size", "MinValue": "10", "MaxValue": "200", "ScalingType": "Linear"},
    ],
}

GRID_RANGES: dict[str, Any] = {
    "CategoricalParameterRanges": [
        {"Name": "optimizer", "Values": ["sgd", "adam", "rmsprop"]},
        {"Name": "activation", "Values": ["relu", "tanh"]},
    ]
}


def request(
    strategy: str = "Hyperband",
    *,
    name: str = "test-job",
    max_jobs: int | None = 30,
    parallel: int = 3,
    min_resource: int = 1,
    max_resource: int = 27,
    eta: int | None = None,
    brackets: int | None = None,
    variant: str | None = None,
    sampler: str | None = None,
    seed: int | None = 0,
    objective: tuple[str, str] = ("Maximize", "score"),
    ranges: dict[str, Any] | None = None,
    completion: dict[str, Any] | None = None,
    extensions: dict[str, Any] | None = None,
    max_runtime: int | None = None,
) -> dict[str, Any]:
    """A CreateHyperParameterTuningJob body in AMT's layout."""
    limits: dict[str, Any] = {"MaxParallelTrainingJobs": parallel}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    if max_runtime is not None:
        limits["MaxRuntimeInSeconds"] = max_runtime
    config: dict[str, Any] = {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"Type": objective[0], "MetricName": objective[1]},
        "ResourceLimits": limits,
        "ParameterRanges": copy.deepcopy(ranges or (GRID_RANGES if strategy == "Grid" else DEFAULT_RANGES)),
        "TrainingJobEarlyStoppingType": "Off",
    }
    if seed is not None:
        config["RandomSeed"] = seed
    if strategy == "Hyperband":
        hb: dict[str, Any] = {"MinResource": min_resource, "MaxResource": max_resource}
        if eta is not None:
            hb["ReductionFactor"] = eta
        if brackets is not None:
            hb["NumberOfBrackets"] = brackets
        if variant is not None:
            hb["Variant"] = variant
        if sampler is not None:
            hb["Sampler"] = sampler
        config["StrategyConfig"] = {"HyperbandStrategyConfig": hb}
    if completion:
        config["TuningJobCompletionCriteria"] = completion
    body: dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": {"StaticHyperParameters": {"epochs": str(max_resource)}},
    }
    if extensions:
        body["TuningJobExtensions"] = extensions
    return body


def config(strategy: str = "Hyperband", **kwargs: Any) -> TuningConfig:
    return TuningConfig.from_dict(request(strategy, **kwargs))


def run_rounds(
    state: TuningState, rounds: Iterable[tuple[float, list[Event]]]
) -> tuple[TuningState, list[tuple[Action, ...]]]:
    """Feed rounds of events to ``decide``; return the last state and every round's actions."""
    all_actions = []
    for now, events in rounds:
        state, actions = decide(state, events, now)
        all_actions.append(actions)
    return state, all_actions


def fresh(strategy: str = "Hyperband", **kwargs: Any) -> tuple[TuningState, tuple[Action, ...]]:
    """A new tuning job after its first round (the initial launches)."""
    return decide(new_state(config(strategy, **kwargs), now=0.0), [], 0.0)


async def collect(backend: Any, done: Callable[[list[Event]], bool], timeout: float = 20.0,
                  interval: float = 0.02) -> list[Event]:
    """Poll ``backend`` until ``done(events)`` holds; fail after ``timeout`` seconds."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += await backend.poll()
        if done(events):
            return events
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s; events: {events}")
