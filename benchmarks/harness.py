"""The benchmark harness: tasks, our methods in virtual time, and one event loop for the peers.

- A :class:`Task` is a search space (AMT ``ParameterRanges``), a learning
  curve ``objective(hyperparameters, epoch) -> accuracy`` and a cost
  ``cost(hyperparameters, epoch) -> seconds`` for that epoch, plus the
  Hyperband resource range and the targets (hardest first).
- :func:`run_ours` runs one of our methods (:data:`OURS`) on a task through
  :func:`hb_core.simulate`, i.e. the product's own ``Tuner`` loop and
  controller on a virtual clock with ``n_workers`` parallel training jobs.
- :func:`run_policy` runs a peer (a :class:`Policy`: ask for a configuration,
  report each epoch's value and hear continue or stop, tell the end) in an
  event loop on the same virtual clock: each of ``n_workers`` slots trains one
  configuration epoch by epoch, each epoch taking ``cost`` seconds; a freed
  slot asks for a new configuration at once. A pause-and-resume peer (PASHA)
  may answer ``PAUSE`` to a report (the slot frees, the trial keeps its
  checkpoint) and later hand a paused trial back from ``ask`` with the epoch
  to resume after; a resume costs ``startup`` again, as our promotion variant's.
  A peer that ends its search before training a configuration to
  MaxResource (PASHA stops raising its maximum resource once the ranking of
  its top two rungs is stable) has ``pick()``: its chosen configuration and
  the epoch of its checkpoint. When the search ends short of the target,
  the pick is trained on alone from that checkpoint (a ``startup``, then
  epoch by epoch, on the same clock) until the target, MaxResource or the
  cap: the time until the tuned model is trained, as the PASHA paper
  measures a run (search, then the chosen configuration at full resource).

Latency (:class:`hb_core.Latency`): ``run_ours`` and ``run_policy`` take one,
and apply it alike. Ours get it through :func:`hb_core.simulate` (start-up,
warm pools per the product's default, metric delay, stop delay, polling);
a peer's slot pays the same start-up (the warm one when the platform has
warm pools: a slot's next job reuses its instance), the peer hears each
value ``metric_delay_seconds`` after it was printed (at the next poll), a
stop lands ``stop_delay_seconds`` after the peer said so while the job
trains on, and a slot is free a metric delay after its job ended, as for
ours. Without a latency, ``Task.startup`` is the start-up of every job.

The rules are the same for everyone: every method may start at most
``max_trials`` configurations (750: AMT's limit for a Hyperband tuning job;
resuming a paused one is not a start, as promotions are not in our controller),
a run ends when a reported value reaches the hardest target, when its virtual
time passes ``cap``, or when it has nothing left to run. Time-to-target is
read from the run's best-so-far trace (:mod:`tta`).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import hb_core
from hb_core.config import TuningConfig
from hb_core.latency import Latency

__all__ = ["OURS", "Policy", "RunResult", "Task", "request", "run_ours", "run_policy"]

Hyperparameters = dict[str, Any]
Curve = Callable[[Hyperparameters, int], float]
MAX_TRIALS = 750  # AMT's limit for a Hyperband tuning job; applied to every method alike
METRIC = "validation:accuracy"
PAUSE = "PAUSE"  # what Policy.report answers to pause a trial (pause-and-resume peers)


@dataclass(frozen=True)
class Task:
    """A tuning problem in virtual time (module docstring). ``startup`` is seconds per training job start."""

    name: str
    ranges: Mapping[str, Any]
    objective: Curve
    cost: Curve
    min_resource: int
    max_resource: int
    targets: tuple[float, ...]
    eta: int = 3
    startup: float = 0.0
    floor: float = 0.0  # the best-so-far before any report (chance accuracy), for plots

    @property
    def hard_target(self) -> float:
        return max(self.targets)


@dataclass(frozen=True)
class RunResult:
    """What one run did: its best-so-far trace, virtual seconds, trials started, epochs trained."""

    method: str
    seed: int
    workers: int
    trace: list[tuple[float, float]]
    elapsed: float
    trials: int
    epochs: int
    extra: dict[str, Any] = field(default_factory=dict)

    def time_to(self, target: float) -> float:
        for time, value in self.trace:
            if value >= target:
                return time
        return math.inf


#: Our methods: AMT strategy plus HyperbandStrategyConfig extensions.
OURS: dict[str, dict[str, Any]] = {
    "Random": {"Strategy": "Random"},
    "Bayesian": {"Strategy": "Bayesian"},
    "HB-stop": {"Strategy": "Hyperband"},
    "HB-promo": {"Strategy": "Hyperband", "Variant": "Promotion"},
    "HB-MFGP": {"Strategy": "Hyperband", "Sampler": "MultiFidelityGP"},
    # the simulated scripts wait at rungs for their verdict (hb_core.barrier), at most BARRIER_TIMEOUT seconds
    "HB-stop-barrier": {"Strategy": "Hyperband", "RungBarrierTimeoutSeconds": 600},
    "HB-promo-barrier": {"Strategy": "Hyperband", "Variant": "Promotion", "RungBarrierTimeoutSeconds": 600},
    # The delayed rung rule (MinRungResults): HB-stop whose rungs keep no trial before they hold eta (3) values;
    # HB-promo whose rungs promote none before they hold eta**2 (9); with Promotion, eta values change nothing.
    "HB-delayed": {"Strategy": "Hyperband", "MinRungResults": 3},
    "HB-promo-delayed": {"Strategy": "Hyperband", "Variant": "Promotion", "MinRungResults": 9},
}


def request(task: Task, method: str, *, seed: int, workers: int, cap: float | None,
            max_trials: int = MAX_TRIALS, target: float | None = None, name: str = "bench") -> dict[str, Any]:
    """The CreateHyperParameterTuningJob body of ``method`` (a key of :data:`OURS`) on ``task``."""
    spec = dict(OURS[method])
    strategy = spec.pop("Strategy")
    limits: dict[str, Any] = {"MaxNumberOfTrainingJobs": max_trials, "MaxParallelTrainingJobs": workers}
    if cap is not None:
        limits["MaxRuntimeInSeconds"] = max(120, math.ceil(cap))
    config: dict[str, Any] = {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": METRIC},
        "ResourceLimits": limits,
        "ParameterRanges": dict(task.ranges),
        "TrainingJobEarlyStoppingType": "Off",
        "RandomSeed": seed,
        "TuningJobCompletionCriteria": {"TargetObjectiveMetricValue": task.hard_target if target is None else target},
    }
    if strategy == "Hyperband":
        hb = {"MinResource": task.min_resource, "MaxResource": task.max_resource, "ReductionFactor": task.eta}
        hb.update(spec)
        config["StrategyConfig"] = {"HyperbandStrategyConfig": hb}
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": {"StaticHyperParameters": {"epochs": str(task.max_resource)}},
    }


def run_ours(task: Task, method: str, seed: int, workers: int, cap: float,
             max_trials: int = MAX_TRIALS, latency: Latency | None = None) -> RunResult:
    """One run of our ``method`` through :func:`hb_core.simulate` (the product's Tuner on a virtual clock)."""
    config = TuningConfig.from_dict(request(task, method, seed=seed, workers=workers, cap=cap, max_trials=max_trials))
    latency = latency if latency is not None else Latency(startup_seconds=task.startup)
    result = hb_core.simulate(config, task.objective, cost=task.cost, latency=latency)
    trace = [(t, v) for t, v in result.trace if t <= cap]
    extra = {"peak_running": result.peak_running, "trained": result.trained_resource,
             "judged": result.state.judged_resource(), "billed": result.billed_seconds,
             "warm_starts": result.warm_starts}
    return RunResult(method, seed, workers, trace, min(result.elapsed, cap), len(result.trials),
                     result.total_resource, extra)


class Policy(Protocol):
    """A peer tuner driven step by step: ``ask`` a configuration, ``report`` each epoch, ``finish``.

    A pause-and-resume peer also has ``resume()``: what ``ask`` returns, but only a paused trial (or None),
    which the harness calls once ``max_trials`` configurations have started; and may have ``pick()``: the
    (configuration, checkpoint epoch) it chose when its search ended (module docstring).
    """

    def ask(self) -> tuple[Any, Hyperparameters] | tuple[Any, Hyperparameters, int] | None:
        """A new trial: (handle, configuration); a paused trial to resume: (handle, configuration, its last
        epoch); or None when the tuner has nothing more to run."""
        ...

    def report(self, handle: Any, epoch: int, value: float) -> bool | str:
        """The trial reached ``epoch`` with ``value``: True to go on, False to stop it, :data:`PAUSE` to pause it."""
        ...

    def finish(self, handle: Any, epoch: int, value: float, completed: bool) -> None:
        """The trial ended: at MaxResource (``completed``) or stopped after ``report`` said so."""
        ...


def run_policy(policy: Policy, task: Task, *, method: str, seed: int, workers: int, cap: float,
               max_trials: int = MAX_TRIALS, target: float | None = None, latency: Latency | None = None) -> RunResult:
    """Run a peer on ``task`` with ``workers`` parallel slots in virtual time (module docstring)."""
    target = task.hard_target if target is None else target
    if latency is not None and not latency.ideal:
        return _LatentPolicyRun(policy, task, latency, workers, max_trials, target).run(method, seed, cap)
    heap: list[tuple[float, int, int]] = []  # (time of the next epoch's report, tiebreak, slot)
    slots: dict[int, tuple[Any, Hyperparameters, int, float]] = {}  # slot -> (handle, config, epoch, last value)
    tiebreak = itertools.count()
    trace: list[tuple[float, float]] = []
    best, started, epochs, now = -math.inf, 0, 0, 0.0

    resume = getattr(policy, "resume", None)
    idle: set[int] = set()  # slots left empty at the trial limit, which a later resume may take

    def start(slot: int, at: float) -> None:
        nonlocal started
        asked = policy.ask() if started < max_trials else resume() if resume is not None else None
        if asked is None:
            idle.add(slot)
            return
        idle.discard(slot)
        handle, config, *resumed = asked
        epoch = resumed[0] if resumed else 0
        started += not resumed
        slots[slot] = (handle, config, epoch, math.nan)
        heapq.heappush(heap, (at + task.startup + task.cost(config, epoch + 1), next(tiebreak), slot))

    for slot in range(workers):
        start(slot, 0.0)
    while heap:
        now, _, slot = heapq.heappop(heap)
        if now > cap:
            now = cap
            break
        handle, config, epoch, _ = slots[slot]
        epoch += 1
        epochs += 1
        value = float(task.objective(config, epoch))
        if value > best:
            best = value
            trace.append((now, value))
        if best >= target:
            break
        if epoch >= task.max_resource:
            policy.finish(handle, epoch, value, completed=True)
        else:
            decision = policy.report(handle, epoch, value)
            if decision != PAUSE and decision:
                slots[slot] = (handle, config, epoch, value)
                heapq.heappush(heap, (now + task.cost(config, epoch + 1), next(tiebreak), slot))
                continue
            if decision != PAUSE:
                policy.finish(handle, epoch, value, completed=False)
        del slots[slot]
        start(slot, now)
        for other in sorted(idle) if resume is not None else ():  # a pause or an end may make a resume possible
            start(other, now)
    picked = policy.pick() if not heap and best < target and hasattr(policy, "pick") else None
    if picked is not None:  # the search ended short of the target: train its pick on (module docstring)
        config, epoch = picked
        now += task.startup
        while epoch < task.max_resource and best < target:
            epoch += 1
            now += task.cost(config, epoch)
            if now > cap:
                now = cap
                break
            epochs += 1
            value = float(task.objective(config, epoch))
            if value > best:
                best = value
                trace.append((now, value))
    return RunResult(method, seed, workers, trace, now, started, epochs)



_PRINT, _SEEN, _END, _FREE = 0, 1, 2, 3


class _LatentPolicyRun:
    """:func:`run_policy` under a :class:`Latency` (module docstring): one event heap over every slot."""

    def __init__(self, policy: Policy, task: Task, latency: Latency, workers: int, max_trials: int,
                 target: float) -> None:
        self.policy, self.task, self.latency = policy, task, latency
        self.workers, self.max_trials, self.target = workers, max_trials, target
        self.heap: list[tuple[float, int, int, int, int, float]] = []  # (time, tiebreak, kind, slot, job, value)
        self.tiebreak = itertools.count()
        self.jobs = itertools.count()
        self.slots: dict[int, dict[str, Any]] = {}
        self.trace: list[tuple[float, float]] = []
        self.best, self.started, self.epochs = -math.inf, 0, 0
        self.used: set[int] = set()  # slots whose instance a warm pool keeps

    def seen(self, time: float) -> float:
        """When the peer hears of something that happened at ``time``."""
        at = time + self.latency.metric_delay_seconds
        poll = self.latency.poll_interval_seconds
        return math.ceil(at / poll - 1e-9) * poll if poll > 0 else at

    def push(self, time: float, kind: int, slot: int, value: float = math.nan) -> None:
        heapq.heappush(self.heap, (time, next(self.tiebreak), kind, slot, self.slots[slot]["job"], value))

    def start(self, slot: int, at: float) -> None:
        if self.started >= self.max_trials:
            return
        asked = self.policy.ask()
        if asked is None:
            return
        if len(asked) != 2:  # a resumed trial: only run_policy's ideal-latency loop resumes paused trials
            raise ValueError(f"`a new trial under latency` must hold, but got a paused trial to resume: {asked!r}")
        self.started += 1
        handle, config = asked
        warm = slot in self.used and self.latency.warm_startup_seconds is not None
        self.used.add(slot)
        self.slots[slot] = {"handle": handle, "config": config, "epoch": 0, "stop_at": math.inf,
                            "decided": False, "job": next(self.jobs), "ended": False}
        self.push(at + self.latency.startup(warm) + self.task.cost(config, 1), _PRINT, slot)

    def run(self, method: str, seed: int, cap: float) -> RunResult:
        for slot in range(self.workers):
            self.start(slot, 0.0)
        now = 0.0
        while self.heap:
            now, _, kind, slot, job, value = heapq.heappop(self.heap)
            if now > cap:
                now = cap
                break
            state = self.slots.get(slot)
            if state is None or state["job"] != job:
                continue
            if kind == _PRINT and not state["ended"]:
                self.printed(slot, state, now)
            elif kind == _SEEN and self.heard(slot, state, now, value):
                break
            elif kind == _END and not state["ended"]:
                state["ended"] = True
                self.push(self.seen(now), _FREE, slot)
            elif kind == _FREE:
                del self.slots[slot]
                self.start(slot, now)
        return RunResult(method, seed, self.workers, self.trace, now, self.started, self.epochs)

    def printed(self, slot: int, state: dict[str, Any], now: float) -> None:
        if now > state["stop_at"]:
            return
        state["epoch"] += 1
        self.epochs += 1
        epoch = state["epoch"]
        self.push(self.seen(now), _SEEN, slot, float(self.task.objective(state["config"], epoch)))
        if epoch >= self.task.max_resource:
            self.push(now, _END, slot)
        else:
            self.push(now + self.task.cost(state["config"], epoch + 1), _PRINT, slot)

    def heard(self, slot: int, state: dict[str, Any], now: float, value: float) -> bool:
        """The peer hears the slot's next value; True when the run reached its target."""
        if value > self.best:
            self.best = value
            self.trace.append((now, value))
        if self.best >= self.target:
            return True
        if state["decided"]:
            return False  # printed while its stop was on the way: trained, not judged
        state["heard"] = state.get("heard", 0) + 1
        epoch = state["heard"]
        if epoch >= self.task.max_resource:
            self.policy.finish(state["handle"], epoch, value, completed=True)
            state["decided"] = True
        elif not self.policy.report(state["handle"], epoch, value):
            self.policy.finish(state["handle"], epoch, value, completed=False)
            state["decided"] = True
            state["stop_at"] = now + self.latency.stop_delay_seconds
            self.push(state["stop_at"], _END, slot)
        return False
