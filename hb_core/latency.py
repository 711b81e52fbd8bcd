"""How long the real world takes: start-up, metric delay, stop delay and polling, as one record.

A decision is only as good as the time it lands. :class:`Latency` names the
delays a backend puts between the controller and a training job;
:func:`hb_core.simulate` applies it through the simulated backend, the
benchmarks run every method under the named :data:`PROFILES`, and
``hb-tune plan`` warns when the first rung is short next to them.

Terms:

- *start-up*: from the launch call (``CreateTrainingJob``) to the first
  training second. Not billed on SageMaker ("Provisioning time before training
  is not billed"; billing covers ``BillableTimeInSeconds``).
- *warm start*: a job whose ``ResourceConfig`` matches a free instance kept by
  a managed warm pool (``ResourceConfig.KeepAlivePeriodInSeconds``, at most
  3600) runs on it and starts in about 20 s. The time the pool keeps an
  instance (until reused, or until the keep-alive period ends) is billed:
  ``DescribeTrainingJob.WarmPoolStatus.ResourceRetainedBillableTimeInSeconds``.
- *metric delay*: from a job printing a value to the controller seeing it.
- *stop delay*: from the stop call to the job ending and its billing
  stopping; the job trains (and is billed) meanwhile.
- *poll interval*: a round every that many seconds when the backend cannot
  push events (0: event-driven, a round when an event arrives).

Sources of the profile figures (checked 2026; verify before relying on them):

- Cold start "up to several minutes": Syne Tune's FAQ; its ResNet/CIFAR-10
  run on 4 x ml.g4dn.xlarge saw 7-8 min for the first jobs, 2-3 min later.
  We take 180 s.
- Warm start about 20 s: the SageMaker developer guide, "Train Using
  SageMaker Managed Warm Pools".
- CloudWatch metrics of training jobs have 1-minute granularity; the backend
  numbers a datapoint once its bucket closed, and ingestion adds tens of
  seconds: 90 s on average. CloudWatch Logs events are readable "within
  seconds" (``GetLogEvents``): 5 s. ``StartLiveTail`` pushes a
  ``sessionUpdate`` every second: 2 s, event-driven (the SageMaker backend's
  default source since it reads Live Tail; on the emulator, which has no
  ingestion delay, a printed value reaches the controller in a median 0.65 s
  through Live Tail, 2.7 s polling the logs every 5 s:
  ``benchmarks/results/SAGEMAKER_EMULATOR.md``).
- ``StopTrainingJob`` sends SIGTERM; a job has 120 s before SIGKILL, then
  uploads its model; a script that checkpoints and exits on SIGTERM ends in
  tens of seconds: 30 s.
- Polling: the Airflow trigger rounds every 30 s by default (``hb-tune run
  --backend sagemaker`` every 5 s). With Live Tail a round runs when a value arrives,
  and when a job due to end (stopped, told to end at its rung, or past its
  budget's last value) has ended: the backend describes those every 5 s
  while it waits (``SageMakerBackend.end_poll_seconds``), so the product sees
  an end up to 5 s late, which ``sagemaker-live`` counts as event-driven
  (inside the stop delay's uncertainty). A job's start is still seen at the
  next round; it decides nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from hb_core.errors import ConfigError

__all__ = [
    "DEFAULT_KEEP_ALIVE_SECONDS",
    "DEFAULT_SAGEMAKER_PROFILE",
    "LOCAL",
    "PROFILES",
    "WARM_POOL_SHARE",
    "FirstRungAdvice",
    "Latency",
    "first_rung_advice",
    "keep_alive_seconds",
    "profile",
]

#: The keep-alive the product asks for when it turns a warm pool on: long enough to bridge the gap between
#: one job ending and the controller launching the next (at most a metric delay plus a poll: 120 s with
#: CloudWatch metrics), short enough that the pools left at the end of a tuning job bill little (each
#: bills at most this long; on NAS-Bench-201 a 300 s period made them a tenth of the bill).
DEFAULT_KEEP_ALIVE_SECONDS = 180
#: A start-up above this share of (start-up + training to the first rung) turns warm pools on by default.
WARM_POOL_SHARE = 0.25
#: SageMaker's upper bound on ``ResourceConfig.KeepAlivePeriodInSeconds``.
MAX_KEEP_ALIVE_SECONDS = 3600


@dataclass(frozen=True)
class Latency:
    """The delays between a controller and its training jobs, in seconds (module docstring for the terms).

    ``warm_startup_seconds`` is the start-up of a job that finds a free,
    matching warm instance (None: the platform has no warm pools).
    """

    startup_seconds: float = 0.0
    warm_startup_seconds: float | None = None
    metric_delay_seconds: float = 0.0
    stop_delay_seconds: float = 0.0
    poll_interval_seconds: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name == "warm_startup_seconds":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"Latency.{f.name}", f"`{f.name} >= 0` (a finite number of seconds) must hold", value)

    @property
    def ideal(self) -> bool:
        return self == Latency()

    def startup(self, warm: bool) -> float:
        """The start-up a job pays: the warm one when it runs on a warm instance."""
        if warm and self.warm_startup_seconds is not None:
            return self.warm_startup_seconds
        return self.startup_seconds

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Latency:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError("Latency", f"`keys in {sorted(names)}` must hold", sorted(unknown))
        return cls(**dict(data))


#: Local processes: a Python start (imports) of about a second, stdout read at once, SIGTERM obeyed at once,
#: ``hb-tune run`` rounds every second.
LOCAL = Latency(startup_seconds=1.0, metric_delay_seconds=0.0, stop_delay_seconds=1.0, poll_interval_seconds=1.0)
#: Named latency profiles (module docstring for the sources).
PROFILES: Mapping[str, Latency] = {
    "ideal": Latency(),
    "sagemaker-cloudwatch": Latency(180.0, 20.0, 90.0, 30.0, 30.0),
    "sagemaker-logs": Latency(180.0, 20.0, 5.0, 30.0, 30.0),
    "sagemaker-live": Latency(180.0, 20.0, 2.0, 30.0, 0.0),
    "local": LOCAL,
}
#: The profile of the product's SageMaker defaults: rung metrics from a CloudWatch Logs Live Tail stream,
#: a round when a metric arrives.
DEFAULT_SAGEMAKER_PROFILE = "sagemaker-live"


def profile(name: str) -> Latency:
    """The named profile; a :class:`ConfigError` naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError("latency profile", f"`profile in {sorted(PROFILES)}` must hold", name) from None


def keep_alive_seconds(
    requested: int | None,
    *,
    hyperband: bool,
    promotion: bool,
    startup_seconds: float | None = None,
    first_rung_seconds: float | None = None,
) -> int:
    """The ``KeepAlivePeriodInSeconds`` a trial's training job asks for: the one rule of warm pools.

    The request's own value wins (0 turns warm pools off). Otherwise a
    Hyperband job keeps its instances :data:`DEFAULT_KEEP_ALIVE_SECONDS`
    when it is the promotion variant (every promotion is a new job), or when
    the start-up would eat more than :data:`WARM_POOL_SHARE` of a first-rung
    trial's time: ``startup / (startup + first_rung_seconds)``. Without a
    measured start-up or first rung, a cold SageMaker start (minutes) is
    taken to dominate, and pools are on. Other strategies run each trial
    once, to the end: no pool.

    >>> keep_alive_seconds(None, hyperband=True, promotion=True)
    180
    >>> keep_alive_seconds(0, hyperband=True, promotion=True)
    0
    >>> keep_alive_seconds(None, hyperband=True, promotion=False, startup_seconds=180, first_rung_seconds=3600)
    0
    >>> keep_alive_seconds(None, hyperband=False, promotion=False)
    0
    """
    if requested is not None:
        return requested
    if not hyperband:
        return 0
    if promotion or startup_seconds is None or first_rung_seconds is None:
        return DEFAULT_KEEP_ALIVE_SECONDS
    total = startup_seconds + first_rung_seconds
    return DEFAULT_KEEP_ALIVE_SECONDS if total > 0 and startup_seconds / total > WARM_POOL_SHARE else 0


@dataclass(frozen=True)
class FirstRungAdvice:
    """How a first rung compares with what a trial pays before its rung value lands.

    ``overhead_seconds``: start-up (the warm one with warm pools) + metric
    delay + half a poll + stop delay: what a trial stopped at its first rung
    costs beyond its training. ``rung_seconds``: the training to MinResource.
    ``suggested_min_resource``: the smallest MinResource whose training is at
    least the overhead, kept at or below MaxResource / eta so that a rung is
    left to judge at (None when the first rung is long enough).
    """

    overhead_seconds: float
    rung_seconds: float
    suggested_min_resource: int | None

    @property
    def short(self) -> bool:
        return self.suggested_min_resource is not None


def first_rung_advice(latency: Latency, *, min_resource: int, max_resource: int, eta: int,
                      resource_seconds: float, warm: bool) -> FirstRungAdvice:
    """Is the first rung short next to the latency? (``hb-tune plan``'s warning.)

    >>> a = first_rung_advice(PROFILES["sagemaker-logs"], min_resource=1, max_resource=200, eta=3,
    ...                       resource_seconds=9.0, warm=True)
    >>> a.overhead_seconds, a.rung_seconds, a.suggested_min_resource
    (70.0, 9.0, 8)
    """
    overhead = latency.startup(warm) + latency.metric_delay_seconds + latency.poll_interval_seconds / 2 \
        + latency.stop_delay_seconds
    rung = min_resource * resource_seconds
    if rung >= overhead or resource_seconds <= 0:
        return FirstRungAdvice(overhead, rung, None)
    needed = max(min_resource + 1, math.ceil(overhead / resource_seconds))
    ceiling = max(min_resource, max_resource // eta)
    suggested = min(needed, ceiling)
    return FirstRungAdvice(overhead, rung, suggested if suggested > min_resource else None)
