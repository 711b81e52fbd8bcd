"""Events (what backends observed) and actions (what the controller wants done).

Both are frozen dataclasses with an explicit ``to_dict`` (plain JSON; the
``Finish`` action is also the record :attr:`TuningState.finish <hb_core.state.TuningState.finish>` keeps). Each event
names the trial and the *attempt*: the ordinal of the training job that ran
for the trial (a retry after a spot interruption, or a resume in the promotion
variant, is a new attempt). Events of an attempt that is no longer current
are ignored by the controller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hb_core.space import HyperparameterValue

__all__ = [
    "Action",
    "Event",
    "Finish",
    "Launch",
    "MetricReported",
    "Resume",
    "RungVerdict",
    "Stop",
    "TrialCompleted",
    "TrialFailed",
    "TrialStarted",
    "TrialStopped",
    "WarmPoolReleased",
]


class _Tagged:
    """Serialisation shared by events and actions: a ``kind`` tag plus the fields."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        body = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {"kind": self.kind, **body}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    return value


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class TrialStarted(_Tagged):
    """The training job of ``attempt`` began (SageMaker: InProgress)."""

    kind: ClassVar[str] = "TrialStarted"
    trial_id: str
    attempt: int
    time: float
    job_name: str | None = None


@dataclass(frozen=True)
class MetricReported(_Tagged):
    """One objective value.

    ``seq`` is the 1-based ordinal of this value among the objective values the
    *trial* has reported (over all its attempts); a value with a ``seq`` already
    seen is a duplicate and is ignored. ``resource`` is the explicit resource of
    the value when the job reports one (``ResourceMetricName``); otherwise the
    resource is ``seq`` (AMT semantics: one objective line per epoch).
    """

    kind: ClassVar[str] = "MetricReported"
    trial_id: str
    attempt: int
    time: float
    value: float
    seq: int | None = None
    resource: int | None = None


@dataclass(frozen=True)
class TrialCompleted(_Tagged):
    """The job ran to its budget and exited cleanly."""

    kind: ClassVar[str] = "TrialCompleted"
    trial_id: str
    attempt: int
    time: float
    billable_seconds: float | None = None


@dataclass(frozen=True)
class TrialFailed(_Tagged):
    """The job failed. ``retriable`` failures (spot interruption, capacity) may be retried."""

    kind: ClassVar[str] = "TrialFailed"
    trial_id: str
    attempt: int
    time: float
    reason: str
    retriable: bool = False
    billable_seconds: float | None = None


@dataclass(frozen=True)
class TrialStopped(_Tagged):
    """The job ended because it was stopped (by us, or by someone else)."""

    kind: ClassVar[str] = "TrialStopped"
    trial_id: str
    attempt: int
    time: float
    billable_seconds: float | None = None


@dataclass(frozen=True)
class WarmPoolReleased(_Tagged):
    """The warm instance an ended job of (trial, attempt) left was reused by a later job or let go.

    ``retained_seconds`` is the time it was kept, billed (SageMaker:
    ``WarmPoolStatus.ResourceRetainedBillableTimeInSeconds`` x ``InstanceCount``).
    It arrives after the job's own end, so the controller takes it for ended trials too.
    """

    kind: ClassVar[str] = "WarmPoolReleased"
    trial_id: str
    attempt: int
    time: float
    retained_seconds: float
    reused_by: str | None = None


Event = TrialStarted | MetricReported | TrialCompleted | TrialFailed | TrialStopped | WarmPoolReleased


# ---------------------------------------------------------------- actions


@dataclass(frozen=True)
class Launch(_Tagged):
    """Start a training job for a trial, running it to ``budget`` resource.

    The backend derives a deterministic job name from (tuning job, trial id,
    attempt), so repeating a launch after a crash adopts the existing job.
    ``rung_levels`` are the levels at which the job waits for a
    :class:`RungVerdict` (the rung barrier is on, :mod:`hb_core.barrier`);
    empty when it is off.
    """

    kind: ClassVar[str] = "Launch"
    trial_id: str
    attempt: int
    hyperparameters: Mapping[str, HyperparameterValue]
    budget: int | None
    rung_levels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rung_levels", tuple(self.rung_levels))  # a JSON list comes back as a tuple


@dataclass(frozen=True)
class Resume(_Tagged):
    """Promotion variant: continue a paused trial from its checkpoint, as a new attempt."""

    kind: ClassVar[str] = "Resume"
    trial_id: str
    attempt: int
    hyperparameters: Mapping[str, HyperparameterValue]
    from_resource: int
    to_resource: int
    rung_levels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rung_levels", tuple(self.rung_levels))

    @property
    def budget(self) -> int:
        return self.to_resource


@dataclass(frozen=True)
class Stop(_Tagged):
    """Stop the current job of a trial. ``reason`` is the one-line decision."""

    kind: ClassVar[str] = "Stop"
    trial_id: str
    attempt: int
    reason: str


@dataclass(frozen=True)
class RungVerdict(_Tagged):
    """Rung barrier: the verdict on a job that reached rung ``level`` and may be waiting there.

    It goes on, in the same job, to ``budget`` (stopping variant: it was kept;
    promotion variant: it was promoted in place when ``budget`` is the next
    rung), or ends there when ``budget == level`` (promotion variant: it
    pauses, and a later ``Resume`` continues it). A stop of the stopping
    variant is a :class:`Stop`. Backends that do not deliver verdicts ignore it.
    """

    kind: ClassVar[str] = "RungVerdict"
    trial_id: str
    attempt: int
    level: int
    budget: int

    @property
    def goes_on(self) -> bool:
        return self.budget > self.level


@dataclass(frozen=True)
class Finish(_Tagged):
    """The tuning job is over (``status`` is Completed or Failed), and the record of how it ended.

    ``best_trial_id`` is the trial whose last reported value is best (as AMT
    picks its best training job) and ``best_objective`` that value; ``extra``
    holds ``trial_counts`` (trials by status) and ``total_resource``. The
    state keeps it as :attr:`TuningState.finish <hb_core.state.TuningState.finish>`,
    serialized as :meth:`to_dict` writes it (the JSON of the dict it replaced).
    """

    kind: ClassVar[str] = "Finish"
    status: str
    reason: str
    best_trial_id: str | None = None
    best_objective: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        """A field by its JSON name, ``finish["best_trial_id"]``: how the dict this record replaced was read."""
        if name not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(name)
        return getattr(self, name)


Action = Launch | Resume | Stop | RungVerdict | Finish
