"""A backend in virtual time: trials are functions, not processes.

A trial's learning curve is ``objective(hyperparameters, resource) -> value``
and the cost of its resource unit r is ``cost(hyperparameters, r) -> seconds``
(or a constant). A job launched at virtual time t reports its value at
resource r at ``t + startup + sum(cost(h, i) for i in from+1..r)`` and completes
when it reaches its budget; billing starts at launch. An objective that raises fails that trial.

Events are produced lazily from a heap, one pending event per running job, so
10,000 trials on hundreds of workers take seconds. Nothing here limits
parallelism: the controller does.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Union

from hb_core.backends.clock import VirtualClock
from hb_core.errors import ConfigError
from hb_core.events import Event, Launch, MetricReported, Resume, TrialCompleted, TrialFailed, TrialStarted, TrialStopped
from hb_core.space import HyperparameterValue
from hb_core.state import TuningState

__all__ = ["CostFunction", "ObjectiveFunction", "SimulatedBackend"]

Hyperparameters = Mapping[str, HyperparameterValue]
ObjectiveFunction = Callable[[dict[str, HyperparameterValue], int], float]
CostFunction = Union[float, Callable[[dict[str, HyperparameterValue], int], float]]

_METRIC, _COMPLETE = 0, 1


@dataclass
class _Job:
    trial_id: str
    attempt: int
    hyperparameters: dict[str, HyperparameterValue]
    budget: int
    next_resource: int
    start: float
    running: bool = True


class SimulatedBackend:
    """Runs trials as curves on a :class:`VirtualClock`.

    ``default_budget`` is used when a launch carries no budget (strategies
    other than Hyperband when the config names no epochs); ``price_per_second``
    prices the simulated jobs.
    """

    def __init__(
        self,
        objective: ObjectiveFunction,
        clock: VirtualClock,
        *,
        cost: CostFunction = 1.0,
        startup_seconds: float = 0.0,
        default_budget: int | None = None,
        price_per_second: float | None = None,
    ) -> None:
        self.objective = objective
        self.clock = clock
        self.cost = cost
        self.startup_seconds = startup_seconds
        self.default_budget = default_budget
        self._price = price_per_second
        self._jobs: dict[str, _Job] = {}
        self._heap: list[tuple[float, int, str, int, int]] = []
        self._ready: list[Event] = []
        self._tiebreak = itertools.count()
        self.launches: list[tuple[str, int]] = []
        self._history: dict[tuple[str, int], list[Event]] = {}
        self.n_running = 0
        self.peak_running = 0

    async def launch(self, action: Launch | Resume) -> None:
        job = self._jobs.get(action.trial_id)
        if job is not None and job.attempt == action.attempt:
            return  # the same attempt again: adopt, do not start a second job
        budget = action.budget if action.budget is not None else self.default_budget
        if budget is None:
            raise ConfigError(
                "HyperParameterTuningJobConfig.StrategyConfig.HyperbandStrategyConfig.MaxResource",
                "a simulated trial needs a budget: MaxResource or an epochs static hyperparameter",
                None,
            )
        start = self.clock.now()
        from_resource = action.from_resource if isinstance(action, Resume) else 0
        job = _Job(action.trial_id, action.attempt, dict(action.hyperparameters), budget, from_resource + 1, start)
        self._jobs[action.trial_id] = job
        self.launches.append((action.trial_id, action.attempt))
        self.n_running += 1
        self.peak_running = max(self.peak_running, self.n_running)
        self._ready.append(self._record(TrialStarted(action.trial_id, action.attempt, start)))
        self._schedule(job, start + self.startup_seconds)

    async def stop(self, trial_id: str, attempt: int, reason: str) -> None:
        job = self._jobs.get(trial_id)
        if job is None or job.attempt != attempt or not job.running:
            return
        self._end(job)
        self._ready.append(self._record(TrialStopped(trial_id, attempt, self.clock.now())))

    async def poll(self) -> list[Event]:
        now = self.clock.now()
        events, self._ready = self._ready, []
        while self._heap and self._heap[0][0] <= now:
            time, _, trial_id, attempt, kind = heapq.heappop(self._heap)
            job = self._jobs.get(trial_id)
            if job is None or job.attempt != attempt or not job.running:
                continue
            events.append(self._record(self._advance(job, time, kind)))
        return events

    async def reconcile(self, state: TuningState) -> list[Event]:
        """Everything the current attempt of each active trial did so far, as a real backend rereads
        it from its logs or its API; the controller drops what it already knew."""
        events: list[Event] = []
        for index in state.active:
            trial = state.trials[index]
            events.extend(self._history.get((trial.trial_id, trial.attempt), ()))
        return events

    def _record(self, event: Event) -> Event:
        self._history.setdefault((event.trial_id, event.attempt), []).append(event)
        return event

    def next_event_time(self) -> float | None:
        if self._ready:
            return self.clock.now()
        while self._heap:
            time, _, trial_id, attempt, _kind = self._heap[0]
            job = self._jobs.get(trial_id)
            if job is not None and job.attempt == attempt and job.running:
                return time
            heapq.heappop(self._heap)
        return None

    async def close(self) -> None:
        return None

    def price_per_second(self) -> float | None:
        """The price of a simulated job-second, when one was given (for ``MaxCost`` and cost summaries)."""
        return self._price

    async def model_uri(self, trial_id: str, attempt: int) -> None:
        """None: a simulated job saves no model."""
        return None

    def running(self) -> list[str]:
        """Trial ids whose job is running now (for tests of the no-orphan rule)."""
        return [job.trial_id for job in self._jobs.values() if job.running]

    def _end(self, job: _Job) -> None:
        job.running = False
        self.n_running -= 1

    def _schedule(self, job: _Job, after: float) -> None:
        if job.next_resource > job.budget:
            heapq.heappush(self._heap, (after, next(self._tiebreak), job.trial_id, job.attempt, _COMPLETE))
            return
        cost = self.cost(job.hyperparameters, job.next_resource) if callable(self.cost) else self.cost
        when = after + float(cost)
        heapq.heappush(self._heap, (when, next(self._tiebreak), job.trial_id, job.attempt, _METRIC))

    def _advance(self, job: _Job, time: float, kind: int) -> Event:
        billable = time - job.start
        if kind == _COMPLETE:
            self._end(job)
            return TrialCompleted(job.trial_id, job.attempt, time, billable_seconds=billable)
        resource = job.next_resource
        try:
            value = float(self.objective(dict(job.hyperparameters), resource))
        except Exception as exc:  # the user's objective failed: that trial fails, the simulation goes on
            self._end(job)
            return TrialFailed(job.trial_id, job.attempt, time, f"objective raised {exc!r}", billable_seconds=billable)
        job.next_resource += 1
        self._schedule(job, time)
        return MetricReported(job.trial_id, job.attempt, time, value, seq=resource, resource=resource)
