"""The controller's state: frozen dataclasses that round-trip through JSON.

A :class:`TuningState` holds everything :func:`hb_core.controller.decide`
needs, and nothing a backend owns. It is checkpointed after every decision
round, so a controller that restarts from it makes the same decisions as one
that never stopped.

Terms:

- *trial*: one hyperparameter configuration, identified by a zero-padded index
  (``"0007"``). A trial runs as one or more *attempts* (training jobs): a retry
  after a retriable failure, or a resume in the promotion variant, is a new
  attempt of the same trial.
- *key*: a metric value with the objective's direction folded in
  (:meth:`hb_core.config.Objective.key`), so that a lower key is always better.
- *rung*: the values recorded at one rung level of one bracket, kept sorted by
  key; in the promotion variant also the paused trials there that were not yet
  promoted.

Every record here is written to and read from JSON by one serializer driven by
its fields (:mod:`hb_core.records`): a field is declared once, in its class.
The module is a little over 400 lines because it is the checkpoint's whole
schema (each record with the rules that read it: ``Rung.cutoff``,
``Trial.value_at``, ``TuningState.best_trial`` and ``best_so_far``); split,
a reader would hold several files to see one checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from hb_core.config import Objective, TuningConfig, stored_request
from hb_core.errors import StateError
from hb_core.events import Finish
from hb_core.pstruct import PVector, SortedItems
from hb_core.records import Record, read, to_json
from hb_core.rungs import keep_count, promote_count
from hb_core.space import HyperparameterValue

__all__ = [
    "PRICE_KEY",
    "REMOVED_SAMPLER_KEY",
    "SCHEMA_VERSION",
    "Decision",
    "PriorObservation",
    "Rung",
    "Trial",
    "TrialStatus",
    "TuningState",
    "TuningStatus",
    "best_reported",
    "evolve",
    "trial_id_for",
    "trial_index",
]

SCHEMA_VERSION = 1
#: ``TuningState.extra`` key: what one second of a training job costs (set when the backend has prices).
PRICE_KEY = "price_per_second"
#: ``TuningState.extra`` key: the removed sampler a checkpoint was saved with (read with Random instead).
REMOVED_SAMPLER_KEY = "removed_sampler"

_T = TypeVar("_T")


class TrialStatus(StrEnum):
    """A trial's status, in SageMaker's words where SageMaker has one."""

    PENDING = "Pending"  # launch decided, the job has not reported that it started
    IN_PROGRESS = "InProgress"
    STOPPING = "Stopping"  # a stop was decided, the job has not ended yet
    PAUSED = "Paused"  # promotion variant: reached its rung, waits for a promotion
    COMPLETED = "Completed"
    STOPPED = "Stopped"
    FAILED = "Failed"

    @property
    def active(self) -> bool:
        """True while a training job may be running (it holds a parallel slot)."""
        return self in (TrialStatus.PENDING, TrialStatus.IN_PROGRESS, TrialStatus.STOPPING)

    @property
    def ended(self) -> bool:
        return self in (TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.FAILED)


class TuningStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    STOPPING = "Stopping"  # a completion criterion or limit hit: waiting for running jobs to end
    COMPLETED = "Completed"
    FAILED = "Failed"


def trial_id_for(index: int) -> str:
    return f"{index:04d}"


def trial_index(trial_id: str) -> int | None:
    """The index encoded in a trial id, or None when the id is not one of ours."""
    return int(trial_id) if trial_id.isdigit() else None


@dataclass(frozen=True)
class Decision(Record):
    """One decision with its reason, as logged (one INFO line) and shown in the UI.

    ``action`` is one of launch, continue, stop, pause, promote, retry, fail,
    complete, finish, ignore. ``rung``, ``value``, ``cutoff``, ``rank`` and
    ``n`` are set for rung decisions: the trial's ``value`` ranked ``rank``
    among the ``n`` values recorded at ``rung``; ``cutoff`` is the worst value
    still kept.
    """

    time: float
    action: str
    trial_id: str | None = None
    message: str = ""
    rung: int | None = None
    value: float | None = None
    cutoff: float | None = None
    rank: int | None = None
    n: int | None = None

    def line(self) -> str:
        who = f"trial {self.trial_id}" if self.trial_id else "tuning job"
        parts = [f"{who}: {self.action}"]
        if self.rung is not None:
            parts.append(f"rung={self.rung}")
        if self.value is not None:
            parts.append(f"value={self.value:.6g}")
        if self.cutoff is not None:
            parts.append(f"cutoff={self.cutoff:.6g}")
        if self.rank is not None:
            parts.append(f"rank={self.rank}/{self.n}")
        if self.message:
            parts.append(f"({self.message})")
        return " ".join(parts)


@dataclass(frozen=True)
class Trial(Record):
    """One configuration and what happened to it.

    ``points`` are the (resource, value, time) triples reported, in order, with
    raw values (not keys). ``rung_index`` is the number of rung levels of the trial's
    bracket at which the trial has been recorded. ``budget`` is the resource
    the current attempt runs to (None: whatever the script's own epochs say).
    ``billable_seconds`` sums the ended attempts; ``segment_start`` is the
    start of the current one. ``points`` include the values its job printed
    after its stop was decided (they enter no rung), so :attr:`resource` is
    what it trained; ``stop_resource`` is the resource it had reached when the
    controller decided to stop it (None: not stopped by the controller), so
    :attr:`judged_resource` is what was judged. ``retained_seconds`` is the
    billed time warm pools kept the instances its jobs left.
    """

    trial_id: str
    hyperparameters: Mapping[str, HyperparameterValue]
    bracket: int
    status: TrialStatus
    budget: int | None
    created_time: float
    attempt: int = 1
    retries: int = 0
    points: tuple[tuple[int, float, float], ...] = ()
    rung_index: int = 0
    start_time: float | None = None
    end_time: float | None = None
    segment_start: float | None = None
    billable_seconds: float = 0.0
    stop_reason: str | None = None
    stop_resource: int | None = None
    retained_seconds: float = 0.0

    @property
    def index(self) -> int:
        return int(self.trial_id)

    @property
    def resource(self) -> int:
        """Resource reached: the resource of the last reported value."""
        return self.points[-1][0] if self.points else 0

    @property
    def judged_resource(self) -> int:
        """Resource the controller judged: what the trial had reached when its stop was decided, else
        :attr:`resource` (the difference is the stop's overshoot, trained while the stop landed)."""
        return self.resource if self.stop_resource is None else self.stop_resource

    @property
    def last_value(self) -> float | None:
        return self.points[-1][1] if self.points else None

    def point_at(self, level: int) -> tuple[int, float, float] | None:
        """The trial's point at rung ``level``: its first (resource, value, time) at or beyond the level, or None."""
        return next((point for point in self.points if point[0] >= level), None)

    def value_at(self, level: int) -> float | None:
        """The trial's value at rung ``level`` (its *rung value*): the value of :meth:`point_at`, or None."""
        point = self.point_at(level)
        return None if point is None else point[1]



class PriorObservation(NamedTuple):
    """One value a warm-start parent's trial reported: raw (sign not folded), at ``resource``.

    Made by :func:`hb_core.strategies.warm_start.prior_observations`, kept in
    :attr:`TuningState.prior`, folded into a model-based sampler's data.
    """

    hyperparameters: Mapping[str, HyperparameterValue]
    value: float
    resource: int

    def to_dict(self) -> dict[str, Any]:
        as_json: dict[str, Any] = to_json(self)
        return as_json

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str = "state.prior[]") -> PriorObservation:
        return read(cls, data, what)


@dataclass(frozen=True)
class Rung(Record):
    """Values recorded at one rung level of one bracket.

    ``keys`` are ascending (best first). ``paused`` holds (key, trial index) of
    paused trials at this rung not yet promoted, ascending too. Both are
    persistent sorted multisets (any sequence given is sorted into one).
    """

    level: int
    keys: SortedItems[float] = SortedItems()
    paused: SortedItems[tuple[float, int]] = SortedItems()

    def __post_init__(self) -> None:
        for name in ("keys", "paused"):
            value = getattr(self, name)
            if not isinstance(value, SortedItems):
                object.__setattr__(self, name, SortedItems(value))

    def rank(self, key: float) -> int:
        """The 1-based rank of ``key`` among the recorded keys (:func:`hb_core.rungs.rank`; ties share the better)."""
        return self.keys.rank(key) + 1

    def cutoff(self, eta: int, *, paused: bool = False) -> float | None:
        """The key of the worst value the rung rule still passes on, or None while the rung is empty.

        That is the :func:`~hb_core.rungs.keep_count`-th best key (``paused``: the
        :func:`~hb_core.rungs.promote_count`-th, and at least the best), as :func:`hb_core.rungs.keeps` counts.
        """
        n = len(self.keys)
        if not n:
            return None
        return self.keys[max(promote_count(n, eta) if paused else keep_count(n, eta), 1) - 1]

@dataclass(frozen=True)
class TuningState(Record):
    """Everything the controller knows about one tuning job.

    ``trials`` is a persistent vector indexed by trial index (any sequence
    given is turned into one). ``active`` lists the indices of trials holding
    a parallel slot. ``rungs``
    is indexed ``[bracket][j]`` where j counts the bracket's rung levels.
    ``decisions`` are those of the last decision round only (the runner appends
    them to the store's decision log); ``decision_count`` counts all.
    ``best_index``/``best_key`` track the best value a trial had when one of
    its attempts ended; ``best_keys`` is the recent history of ``best_key``
    (one entry per ended attempt, for the convergence test). Once a completion
    criterion or limit is hit, ``status`` is Stopping, ``completion_reason``
    says why and ``outcome`` is the status the job ends with; once it has ended,
    ``finish`` is its :class:`~hb_core.events.Finish` record (best trial, reason, counts). ``revision``
    counts decision rounds. ``retained_billable_seconds`` sums the billed
    warm-pool time reported so far (:class:`~hb_core.events.WarmPoolReleased`).
    Fields added after schema version 1 have defaults, so older states still read.
    """

    job_name: str
    config: TuningConfig
    seed: int
    created_time: float
    status: TuningStatus = TuningStatus.IN_PROGRESS
    trials: PVector[Trial] = PVector()
    active: tuple[int, ...] = ()
    rungs: tuple[tuple[Rung, ...], ...] = ()
    best_index: int | None = None
    best_key: float | None = None
    best_seen: float | None = None
    best_keys: tuple[float, ...] = ()
    not_improving: int = 0
    n_ended: int = 0
    n_failed: int = 0
    ended_billable_seconds: float = 0.0
    retained_billable_seconds: float = 0.0
    completion_reason: str | None = None
    outcome: TuningStatus | None = None
    finish: Finish | None = None
    decisions: tuple[Decision, ...] = ()
    decision_count: int = 0
    revision: int = 0
    schema_version: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The warm-start parents' observations, copied once when the job was created
    #: (:func:`hb_core.strategies.warm_start.warm_prior`), so a decision never reads the parents again: ``()``
    #: when it has none. None: not recorded, a checkpoint written before this field existed (the runner
    #: copies them at its next start, :class:`hb_core.runner.Tuner`); a sampler then starts from no prior.
    prior: tuple[PriorObservation, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.trials, PVector):
            object.__setattr__(self, "trials", PVector(self.trials))

    @property
    def done(self) -> bool:
        return self.status in (TuningStatus.COMPLETED, TuningStatus.FAILED)

    def trial(self, trial_id: str) -> Trial | None:
        index = trial_index(trial_id)
        if index is None or index >= len(self.trials):
            return None
        return self.trials[index]

    def best_trial(self, *, so_far: bool = False) -> Trial | None:
        """The job's best trial: the one its :attr:`finish` picked (:func:`best_reported` when it finished).

        Before the finish: None, or with ``so_far`` (what a live view shows) the
        trial whose ended attempt had the best value so far (``best_index``),
        else, nothing having ended yet, the running trial with the best last value.
        """
        if self.finish is not None:
            return self.trial(self.finish.best_trial_id) if self.finish.best_trial_id else None
        if not so_far:
            return None
        if self.best_index is not None:
            ended_best: Trial = self.trials[self.best_index]
            return ended_best
        return best_reported(self.trials, self.config.objective)

    def best_so_far(self) -> list[tuple[float, float]]:
        """(time, best value reported so far), one entry per improvement, in time order.

        Failed trials' values and non-finite values do not count. The simulator's trace and the
        dashboard's best-so-far chart are both this.
        """
        key = self.config.objective.key
        points = sorted((time, value) for t in self.trials if t.status is not TrialStatus.FAILED
                        for _, value, time in t.points if math.isfinite(value))
        trace: list[tuple[float, float]] = []
        for time, value in points:
            if not trace or key(value) < key(trace[-1][1]):
                trace.append((time, value))
        return trace

    def with_changes(self, **changes: Any) -> TuningState:
        return replace(self, **changes)

    def counts(self) -> dict[str, int]:
        """Trials by status."""
        result: dict[str, int] = {}
        for trial in self.trials:
            result[trial.status.value] = result.get(trial.status.value, 0) + 1
        return result

    def total_resource(self) -> int:
        """Resource trained by all trials: the sum of :attr:`Trial.resource` (values printed after a stop too)."""
        return sum(t.resource for t in self.trials)

    def judged_resource(self) -> int:
        """Resource the controller judged: the sum of :attr:`Trial.judged_resource`."""
        return sum(t.judged_resource for t in self.trials)

    @property
    def billed_seconds(self) -> float:
        """Billed time of the ended training jobs plus the time warm pools retained their instances."""
        return self.ended_billable_seconds + self.retained_billable_seconds

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str | None = "state") -> TuningState:
        """Read a state written by :meth:`to_dict` (:mod:`hb_core.records`); anything else is a
        :class:`StateError`, never a crash later."""
        what = what or "state"
        version = data.get("schema_version") if isinstance(data, Mapping) else None
        if version != SCHEMA_VERSION:
            raise StateError(f"{what} schema_version must be {SCHEMA_VERSION}, but got {version!r}")
        request, removed = stored_request(data.get("config"))
        if removed is not None:  # saved before its sampler was removed: read on with Random, and say so
            extra = data.get("extra")
            data = {**data, "config": request,
                    "extra": {**(extra if isinstance(extra, Mapping) else {}), REMOVED_SAMPLER_KEY: removed}}
        state = read(cls, data, what)
        state._check_consistency()
        return state

    def _check_consistency(self) -> None:
        """The cross-references the controller relies on: ids, indices, brackets, rungs."""
        n = len(self.trials)
        expected_brackets = len(self.rungs) if self.rungs else 1
        for index, trial in enumerate(self.trials):
            if trial.trial_id != trial_id_for(index):
                raise StateError(f"state.trials[{index}].trial_id must be {trial_id_for(index)!r}, "
                                 f"but got {trial.trial_id!r}")
            if not 0 <= trial.bracket < expected_brackets:
                raise StateError(f"trial {trial.trial_id}.bracket must be in [0, {expected_brackets}), "
                                 f"but got {trial.bracket}")
            rungs = len(self.rungs[trial.bracket]) if self.rungs else 0
            if not 0 <= trial.rung_index <= rungs or trial.attempt < 1:
                raise StateError(f"trial {trial.trial_id} has rung_index {trial.rung_index} and attempt "
                                 f"{trial.attempt}: `0 <= rung_index <= {rungs}` and `attempt >= 1` must hold")
        for index in self.active:
            if not 0 <= index < n or not self.trials[index].status.active:
                raise StateError(f"state.active must list indices of active trials, but got {index}")
        if self.best_index is not None and not 0 <= self.best_index < n:
            raise StateError(f"state.best_index must be a trial index below {n}, but got {self.best_index}")
        for bracket in self.rungs:
            for rung in bracket:
                if any(not 0 <= index < n for _, index in rung.paused):
                    raise StateError(f"rung {rung.level} pauses a trial index outside [0, {n})")


def best_reported(trials: Iterable[Trial], objective: Objective) -> Trial | None:
    """The trial whose last reported value is best, failed ones aside (as AMT picks its best training job).

    Ties go to the earlier trial; a non-finite value is the worst (a trial with one is picked only when no
    other has a value).
    """
    best: Trial | None = None
    best_key = math.inf
    for trial in trials:
        if trial.status is TrialStatus.FAILED or trial.last_value is None:
            continue
        key = objective.key(trial.last_value)
        if best is None or key < best_key:
            best, best_key = trial, key
    return best


def evolve(obj: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` for the controller's hot path: a shallow copy with ``changes``.

    Skips ``__init__`` (these dataclasses have no checks in it), which makes it
    several times faster; only for the frozen records of this module, with
    values of the declared types.
    """
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    return new

