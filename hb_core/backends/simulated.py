"""A backend in virtual time: trials are functions, not processes, with the real world's delays.

A trial's learning curve is ``objective(hyperparameters, resource) -> value``
and the cost of its resource unit r is ``cost(hyperparameters, r) -> seconds``
(or a constant). An objective that raises fails that trial.

A :class:`~hb_core.latency.Latency` puts the delays of a real platform
between the controller and its jobs:

- A job launched at t trains from ``t + startup``: the warm start-up when a
  free warm instance is there, else the cold one. Start-up is not billed.
- It prints its value at resource r at ``train_start + sum(cost(h, i) for i
  in from+1..r)``; the controller sees it ``metric_delay_seconds`` later (at
  the first poll after that when the backend polls).
- A stop called at s ends the job at ``s + stop_delay_seconds``; it trains
  and prints (and is billed) until then, unless it reaches its budget first.
- A job's end (completed, stopped, failed) is seen ``metric_delay_seconds``
  after it, as the SageMaker backend waits that long for its last metrics.
  Billing covers ``train_start..end``.
- Warm pools follow SageMaker: with ``keep_alive_seconds`` K > 0 (the
  request's ``ResourceConfig.KeepAlivePeriodInSeconds``, or the product's
  default, :meth:`hb_core.config.TuningConfig.keep_alive_seconds`) and a
  platform with warm starts, an ended job leaves its instance free for K
  seconds. A job launched meanwhile takes it (all trials share one
  ResourceConfig, so every free instance matches) and pays the warm start-up;
  the time the instance was kept is billed and reported as a
  :class:`~hb_core.events.WarmPoolReleased` of the job that left it, when it
  is reused or when K runs out.

Rung barrier (``barrier_timeout``, from ``RungBarrierTimeoutSeconds``; the
simulated script uses :mod:`hb_core.barrier`): a job launched with
``rung_levels`` that prints its value at one of them publishes it (seen at
once, or at the next poll: the backends read published values ahead of the
metric source) and waits there, billed, until its
:class:`~hb_core.events.RungVerdict` (go on from now to the verdict's budget,
or end now), its stop (it ends now, by itself: no stop delay), or
``barrier_timeout`` seconds (it goes on as without the barrier). A job that
ends on its verdict is seen ended at once (its last value is known: no
metric-delay hold).

Events are produced lazily from heaps (job steps, the times a step can first
be seen, and events waiting to be seen), one pending step per running job, so
10,000 trials on hundreds of workers take seconds. Nothing here limits
parallelism: the controller does.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Union

from hb_core.backends.clock import VirtualClock
from hb_core.errors import ConfigError
from hb_core.events import (
    Event,
    Launch,
    MetricReported,
    Resume,
    RungVerdict,
    TrialCompleted,
    TrialFailed,
    TrialStarted,
    TrialStopped,
    WarmPoolReleased,
)
from hb_core.latency import Latency
from hb_core.space import HyperparameterValue
from hb_core.state import TuningState

__all__ = ["CostFunction", "ObjectiveFunction", "SimulatedBackend"]

Hyperparameters = Mapping[str, HyperparameterValue]
ObjectiveFunction = Callable[[dict[str, HyperparameterValue], int], float]
CostFunction = Union[float, Callable[[dict[str, HyperparameterValue], int], float]]

_METRIC, _COMPLETE, _STOP, _WAIT_OVER = 0, 1, 2, 3


@dataclass
class _Job:
    trial_id: str
    attempt: int
    hyperparameters: dict[str, HyperparameterValue]
    budget: int
    next_resource: int
    launched: float
    train_start: float
    warm: bool
    running: bool = True
    stop_at: float | None = None
    rung_levels: frozenset[int] = frozenset()  # where it waits for a verdict (rung barrier)
    waiting: int | None = None  # the rung level it waits at now
    settled: bool = False  # it ends on its verdict: its end is seen at once


@dataclass
class _Instance:
    """A warm instance an ended job left: free from ``free_from`` until ``expires``."""

    trial_id: str
    attempt: int
    free_from: float
    expires: float


class SimulatedBackend:
    """Runs trials as curves on a :class:`VirtualClock` (module docstring).

    ``default_budget`` is used when a launch carries no budget (strategies
    other than Hyperband when the config names no epochs); ``price_per_second``
    prices the simulated jobs. ``startup_seconds`` is the older spelling of
    ``Latency(startup_seconds=...)``. ``barrier_timeout``: the rung barrier's
    timeout (None: scripts do not wait at rungs).
    """

    def __init__(
        self,
        objective: ObjectiveFunction,
        clock: VirtualClock,
        *,
        cost: CostFunction = 1.0,
        startup_seconds: float = 0.0,
        latency: Latency | None = None,
        keep_alive_seconds: int = 0,
        default_budget: int | None = None,
        price_per_second: float | None = None,
        barrier_timeout: float | None = None,
    ) -> None:
        if latency is not None and startup_seconds:
            raise ConfigError("startup_seconds", "`startup_seconds is given only without latency` must hold",
                              startup_seconds)
        self.objective = objective
        self.clock = clock
        self.cost = cost
        self.latency = latency if latency is not None else Latency(startup_seconds=startup_seconds)
        self.keep_alive = keep_alive_seconds if self.latency.warm_startup_seconds is not None else 0
        self.default_budget = default_budget
        self._price = price_per_second
        self.barrier_timeout = barrier_timeout
        self._jobs: dict[str, _Job] = {}
        self._heap: list[tuple[float, int, str, int, int]] = []  # job steps: (time, tiebreak, trial, attempt, kind)
        self._wakes: list[float] = []  # the earliest time each pending step can be seen (stale ones wake in vain)
        self._seen: list[tuple[float, int, Event]] = []  # events waiting to be seen: (time, tiebreak, event)
        self._tiebreak = itertools.count()
        self._pool: list[_Instance] = []
        self.launches: list[tuple[str, int]] = []
        self._history: dict[tuple[str, int], list[Event]] = {}
        self.n_running = 0
        self.peak_running = 0
        self.billable_seconds = 0.0  # of the ended jobs
        self.retained_seconds = 0.0  # warm-pool time of instances reused or let go so far
        self.trained_resource = 0  # resource units every job trained (printed), judged or not
        self.warm_starts = 0

    # ------------------------------------------------------------ the protocol

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
        now = self.clock.now()
        warm = self._take_warm_instance(now, action.trial_id, action.attempt)
        from_resource = action.from_resource if isinstance(action, Resume) else 0
        job = _Job(action.trial_id, action.attempt, dict(action.hyperparameters), budget, from_resource + 1, now,
                   now + self.latency.startup(warm), warm)
        if self.barrier_timeout is not None:
            job.rung_levels = frozenset(action.rung_levels)
        self._jobs[action.trial_id] = job
        self.launches.append((action.trial_id, action.attempt))
        self.n_running += 1
        self.peak_running = max(self.peak_running, self.n_running)
        self._show(now, TrialStarted(action.trial_id, action.attempt, now))
        self._schedule(job, job.train_start)

    async def stop(self, trial_id: str, attempt: int, reason: str) -> None:
        job = self._jobs.get(trial_id)
        if job is None or job.attempt != attempt or not job.running or job.stop_at is not None:
            return
        now = self.clock.now()
        if job.waiting is not None:  # at a barrier the script reads its stop verdict and ends there
            job.settled = True
            self._step(job, now, _STOP)
            return
        job.stop_at = now + self.latency.stop_delay_seconds
        self._push(job, job.stop_at, _STOP, job.stop_at)

    async def verdict(self, action: RungVerdict) -> None:
        """A job waiting at ``action.level`` goes on from now to ``action.budget``, or ends now."""
        job = self._jobs.get(action.trial_id)
        if job is None or job.attempt != action.attempt or not job.running or job.waiting != action.level:
            return  # not waiting there (any more): its wait timed out, or the barrier is off
        job.waiting = None
        job.budget = max(action.budget, action.level)
        job.settled = not action.goes_on
        self._schedule(job, self.clock.now())

    async def poll(self) -> list[Event]:
        now = self.clock.now()
        self._run_jobs(now)
        self._expire_pool(now)
        while self._wakes and self._wakes[0] <= now:
            heapq.heappop(self._wakes)
        events: list[Event] = []
        while self._seen and self._seen[0][0] <= now:
            events.append(self._record(_stamped(heapq.heappop(self._seen)[2], now)))
        return events

    async def reconcile(self, state: TuningState) -> list[Event]:
        """Everything the current attempt of each active trial did so far, as a real backend rereads
        it from its logs or its API; the controller drops what it already knew."""
        events: list[Event] = []
        for index in state.active:
            trial = state.trials[index]
            events.extend(self._history.get((trial.trial_id, trial.attempt), ()))
        return events

    def next_event_time(self) -> float | None:
        """When the next event can be seen; None for a polling platform (the runner's poll interval paces it)."""
        if self.latency.poll_interval_seconds > 0:
            return None
        candidates = [self._seen[0][0]] if self._seen else []
        if self._wakes:
            candidates.append(self._wakes[0])
        return min(candidates) if candidates else None

    async def close(self) -> None:
        return None

    # ------------------------------------------------------------ results

    def price_per_second(self) -> float | None:
        """The price of a simulated job-second, when one was given (for ``MaxCost`` and cost summaries)."""
        return self._price

    async def model_uri(self, trial_id: str, attempt: int) -> None:
        """None: a simulated job saves no model."""
        return None

    def running(self) -> list[str]:
        """Trial ids whose job is running now (for tests of the no-orphan rule)."""
        return [job.trial_id for job in self._jobs.values() if job.running]

    def pending_retained_seconds(self) -> float:
        """What the instances still kept would bill if let go at the end of their keep-alive period
        (a tuning job that ended leaves its last warm instances billing until then)."""
        return sum(instance.expires - instance.free_from for instance in self._pool)

    # ------------------------------------------------------------ jobs

    def _record(self, event: Event) -> Event:
        self._history.setdefault((event.trial_id, event.attempt), []).append(event)
        return event

    def _show(self, when: float, event: Event) -> None:
        heapq.heappush(self._seen, (when, next(self._tiebreak), event))

    def _run_jobs(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            time, _, trial_id, attempt, kind = heapq.heappop(self._heap)
            job = self._jobs.get(trial_id)
            if job is None or job.attempt != attempt or not job.running:
                continue
            self._step(job, time, kind)

    def _push(self, job: _Job, when: float, kind: int, seen: float) -> None:
        heapq.heappush(self._heap, (when, next(self._tiebreak), job.trial_id, job.attempt, kind))
        heapq.heappush(self._wakes, seen)

    def _schedule(self, job: _Job, after: float) -> None:
        delay = self.latency.metric_delay_seconds
        if job.next_resource > job.budget:
            self._push(job, after, _COMPLETE, after if job.settled else after + delay)
            return
        cost = self.cost(job.hyperparameters, job.next_resource) if callable(self.cost) else self.cost
        when = after + float(cost)
        self._push(job, when, _METRIC, when if job.next_resource in job.rung_levels else when + delay)

    def _step(self, job: _Job, time: float, kind: int) -> None:
        seen = time + self.latency.metric_delay_seconds
        key = (job.trial_id, job.attempt)
        if kind == _STOP:  # a stop we asked for: its end is news at once, values printed before it come later
            self._show(time, TrialStopped(*key, time, billable_seconds=self._end(job, time)))
            return
        if kind == _WAIT_OVER:  # no verdict came in time: the script goes on as without the barrier
            if job.waiting is not None:
                job.waiting = None
                self._schedule(job, time)
            return
        if kind == _COMPLETE:
            shown = time if job.settled else seen
            self._show(shown, TrialCompleted(*key, time, billable_seconds=self._end(job, time)))
            return
        resource = job.next_resource
        try:
            value = float(self.objective(dict(job.hyperparameters), resource))
        except Exception as exc:  # the user's objective failed: that trial fails, the simulation goes on
            self._show(seen, TrialFailed(*key, time, f"objective raised {exc!r}", billable_seconds=self._end(job, time)))
            return
        job.next_resource += 1
        self.trained_resource += 1
        if resource in job.rung_levels and self.barrier_timeout is not None:  # published next to its verdicts
            self._show(time, MetricReported(*key, time, value, seq=resource, resource=resource))
            if job.stop_at is not None:  # a stop is on its way: the script finds its stop verdict and ends here
                job.settled = True
                self._step(job, time, _STOP)
                return
            job.waiting = resource  # it waits there for its verdict
            self._push(job, time + self.barrier_timeout, _WAIT_OVER, time + self.barrier_timeout)
            return
        self._show(seen, MetricReported(*key, time, value, seq=resource, resource=resource))
        self._schedule(job, time)

    def _end(self, job: _Job, time: float) -> float:
        """End ``job`` at ``time``: free its slot, leave its instance to the warm pool; return its billable time."""
        job.running = False
        self.n_running -= 1
        billable = max(0.0, time - job.train_start)
        self.billable_seconds += billable
        if self.keep_alive > 0 and (time >= job.train_start or job.warm):
            self._pool.append(_Instance(job.trial_id, job.attempt, time, time + self.keep_alive))
        return billable

    # ------------------------------------------------------------ warm pools

    def _take_warm_instance(self, now: float, trial_id: str, attempt: int) -> bool:
        self._expire_pool(now)
        free = [i for i in self._pool if i.free_from <= now]
        if not free:
            return False
        instance = min(free, key=lambda i: i.expires)  # any matching instance will do; take the oldest
        self._pool.remove(instance)
        self._release(instance, now, reused_by=f"{trial_id}-{attempt}")
        self.warm_starts += 1
        return True

    def _expire_pool(self, now: float) -> None:
        for instance in [i for i in self._pool if i.expires < now]:
            self._pool.remove(instance)
            self._release(instance, instance.expires, reused_by=None)

    def _release(self, instance: _Instance, at: float, reused_by: str | None) -> None:
        retained = at - instance.free_from
        self.retained_seconds += retained
        self._show(at, WarmPoolReleased(instance.trial_id, instance.attempt, at, retained, reused_by))


def _stamped(event: Event, now: float) -> Event:
    """The event as the controller sees it: at ``now`` (the poll that brought it), as real backends stamp it."""
    return event if event.time == now else replace(event, time=now)
