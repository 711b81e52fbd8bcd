"""Tuning jobs for the dashboard tests, made by the real controller in virtual time and saved like a real run.

:func:`save_job` drives the one tuning loop (:class:`~hb_core.runner.Tuner`) with a
:class:`~hb_core.backends.simulated.SimulatedBackend` on a
:class:`~hb_core.backends.clock.VirtualClock` that starts in the past, into a
:class:`~hb_core.backends.stores.LocalFileStore` under a state root: the same
``state.json`` and ``decisions.jsonl`` a real run writes. With ``rounds`` it stops
after that many decision rounds, leaving a job that is still running.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

from hb_core.backends.clock import VirtualClock
from hb_core.backends.simulated import SimulatedBackend
from hb_core.backends.stores import LocalFileStore
from hb_core.config import TuningConfig
from hb_core.protocols import StateStore
from hb_core.runner import Tuner
from hb_core.space import HyperparameterValue
from hb_core.state import TuningState


def request(name: str, *, jobs: int = 30, parallel: int = 4, seed: int = 7) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Hyperband",
            "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 27,
                                                           "NumberOfBrackets": 2}},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:accuracy"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.3", "ScalingType": "Logarithmic"}
                ],
                "IntegerParameterRanges": [{"Name": "hidden_units", "MinValue": "16", "MaxValue": "512"}],
            },
            "TrainingJobEarlyStoppingType": "Off",
            "RandomSeed": seed,
        },
    }


def accuracy(hp: dict[str, HyperparameterValue], resource: int) -> float:
    """A learning curve that saturates at a level set by the hyperparameters (best near lr=0.01, many units)."""
    lr, units = float(hp["learning_rate"]), float(hp["hidden_units"])
    ceiling: float = 0.97 - 0.12 * abs(math.log10(lr) + 2.0) ** 1.5 - 0.04 * (512 - units) / 512
    speed = 2.0 + 6.0 * abs(math.log10(lr) + 1.0)
    return max(0.05, ceiling * (1 - math.exp(-resource / speed)))


def cost(hp: dict[str, HyperparameterValue], resource: int) -> float:
    return 20.0 + 0.1 * float(hp["hidden_units"])


def save_job(root: Path, name: str, *, rounds: int | None = None, started_ago: float = 3600.0,
             store: StateStore | None = None, **kwargs: Any) -> TuningState:
    """Run tuning job ``name`` (to its end, or for ``rounds`` decision rounds) and save it under ``root``
    (or in ``store``: an S3Store, say)."""
    config = TuningConfig.from_dict(request(name, **kwargs))
    clock = VirtualClock(time.time() - started_ago)
    backend = SimulatedBackend(accuracy, clock, cost=cost, default_budget=config.max_resource)
    tuner = Tuner(config, backend, store or LocalFileStore(root / name), clock, job_name=name,
                  poll_interval=math.inf)

    async def drive() -> TuningState:
        try:
            state = await tuner.start()
            done = 0
            while not state.done and (rounds is None or done < rounds):
                wake = backend.next_event_time()
                assert wake is not None, "a running simulated job always has a next event"
                await clock.sleep_until(wake)
                state = await tuner.step()
                done += 1
            return state
        finally:
            close = getattr(store, "close", None)
            if close is not None:
                await close()

    return asyncio.run(drive())
