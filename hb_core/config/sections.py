"""The sections of ``HyperParameterTuningJobConfig`` and the request's extensions, each read and written back.

Part of :mod:`hb_core.config` (its docstring has the terms and the rules); import from there."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hb_core import _validate as v
from hb_core.config.enums import (
    REMOVED_SAMPLERS,
    HyperbandVariant,
    ObjectiveType,
    SamplerType,
    WarmStartType,
    _Toggle,
    removed_sampler,
)
from hb_core.config.keys import (
    CRITERIA,
    CRITERIA_KEYS,
    DEFINITION,
    EPOCH_KEYS,
    EXTENSION_KEYS,
    EXTENSIONS,
    HYPERBAND,
    HYPERBAND_KEYS,
    INT_MAX,
    JOB_NAME,
    LIMIT_KEYS,
    LIMITS,
    MAX_BARRIER_SECONDS,
    MAX_RESOURCE_LIMIT,
    WARM_START_KEYS,
    _fields,
    _without_none,
)
from hb_core.errors import ConfigError
from hb_core.rungs import rung_levels


@dataclass(frozen=True)
class Objective:
    """The metric to optimise (``HyperParameterTuningJobObjective``)."""

    metric_name: str
    type: ObjectiveType

    @property
    def sign(self) -> float:
        """+1.0 for Maximize, -1.0 for Minimize: ``sign * value`` is larger when better."""
        return 1.0 if self.type is ObjectiveType.MAXIMIZE else -1.0

    def key(self, value: float) -> float:
        """The key of a metric value, the direction folded in (``-sign * value``): a lower key is always better.

        A non-finite value (a diverged trial's NaN) is the worst key, ``inf``.
        """
        return -self.sign * value if math.isfinite(value) else math.inf

    def value(self, key: float) -> float:
        """The metric value of a :meth:`key`; NaN for the infinite key of a non-finite value."""
        return -key / self.sign if math.isfinite(key) else math.nan

    def reaches(self, value: float, target: float) -> bool:
        """Is ``value`` at least as good as ``target`` (``TargetObjectiveMetricValue``)?"""
        return self.sign * (value - target) >= 0

    @classmethod
    def from_dict(cls, raw: object, path: str) -> Objective:
        f = _fields(raw, path, ("Type", "MetricName"))
        kind = f.choice("Type", ObjectiveType)
        return cls(f.string("MetricName", max_len=255), kind)

    def to_dict(self) -> dict[str, str]:
        return {"Type": self.type.value, "MetricName": self.metric_name}


@dataclass(frozen=True)
class ResourceLimits:
    """How many trials may run in all and at once, and for how long (``ResourceLimits``)."""

    max_number_of_training_jobs: int | None
    max_parallel_training_jobs: int
    max_runtime_in_seconds: int | None

    @classmethod
    def from_dict(cls, raw: object, path: str = LIMITS) -> ResourceLimits:
        f = _fields(raw, path, LIMIT_KEYS)
        parallel = f.integer("MaxParallelTrainingJobs", lo=1, hi=INT_MAX)  # AMT's 100: hb_core.amt
        jobs = f.integer("MaxNumberOfTrainingJobs", lo=1, hi=INT_MAX, default=None)
        return cls(jobs, parallel, f.integer("MaxRuntimeInSeconds", lo=120, hi=15_768_000, default=None))

    def to_dict(self) -> dict[str, int]:
        entries = {
            "MaxNumberOfTrainingJobs": self.max_number_of_training_jobs,
            "MaxParallelTrainingJobs": self.max_parallel_training_jobs,
            "MaxRuntimeInSeconds": self.max_runtime_in_seconds,
        }
        return _without_none(entries)


@dataclass(frozen=True)
class HyperbandConfig:
    """``StrategyConfig.HyperbandStrategyConfig``: AMT's resources plus our extensions (module docstring)."""

    min_resource: int
    max_resource: int
    reduction_factor: int = 3
    number_of_brackets: int = 1
    variant: HyperbandVariant = HyperbandVariant.STOPPING
    sampler: SamplerType = SamplerType.RANDOM
    resource_metric_name: str | None = None
    random_fraction: float = 1.0 / 3.0
    rung_barrier_timeout: float | None = None
    min_rung_results: int = 1

    @classmethod
    def from_dict(cls, raw: object, static: Mapping[str, str], path: str = HYPERBAND) -> HyperbandConfig:
        """Read the object at ``path`` (absent: all defaults); MaxResource may come from ``static``."""
        f = _fields(raw, path, HYPERBAND_KEYS, absent_ok=True)
        low = f.integer("MinResource", lo=1, hi=MAX_RESOURCE_LIMIT, default=1)
        high = f.integer("MaxResource", lo=1, hi=MAX_RESOURCE_LIMIT, default=None)
        high = _inferred_max_resource(static, path) if high is None else high
        if not low < high:
            found = v.Shown(f"MinResource={low}, MaxResource={high}")
            raise ConfigError(f.at("MaxResource"), "`MinResource < MaxResource` must hold", found)
        eta = f.integer("ReductionFactor", lo=2, hi=MAX_RESOURCE_LIMIT, default=3)
        brackets = f.integer("NumberOfBrackets", lo=1, default=1)
        rungs = len(rung_levels(low, high, eta))
        if brackets > rungs:
            rule = f"`NumberOfBrackets <= {rungs}, the number of rungs from MinResource to MaxResource` must hold"
            raise ConfigError(f.at("NumberOfBrackets"), rule, brackets)
        variant = f.choice("Variant", HyperbandVariant, default=HyperbandVariant.STOPPING)
        removed = removed_sampler(f.get("Sampler"))
        if removed is not None:
            names = ", ".join(member.value for member in SamplerType)
            raise ConfigError(f.at("Sampler"), f"`Sampler is one of {names}` must hold", f.get("Sampler"),
                              hint=REMOVED_SAMPLERS[removed])
        sampler = f.choice("Sampler", SamplerType, default=SamplerType.RANDOM)
        fraction_raw = f.get("RandomFraction")
        fraction = cls.random_fraction
        if fraction_raw is not None:
            fraction = v.number(fraction_raw, f.at("RandomFraction"), lo=0.0, hi=1.0)
        barrier_raw, barrier = f.get("RungBarrierTimeoutSeconds"), None
        if barrier_raw is not None:
            barrier = v.number(barrier_raw, f.at("RungBarrierTimeoutSeconds"), lo=0, hi=MAX_BARRIER_SECONDS,
                               strict_lo=True)
        return cls(
            low, high, eta, brackets, variant, sampler, f.string("ResourceMetricName", max_len=255, default=None),
            fraction, barrier, f.integer("MinRungResults", lo=1, hi=INT_MAX, default=cls.min_rung_results),
        )

    def to_dict(self) -> dict[str, Any]:
        """AMT's keys always; our extensions only when they differ from their defaults."""
        defaults = HyperbandConfig(self.min_resource, self.max_resource)
        extensions = {
            "ReductionFactor": (self.reduction_factor, defaults.reduction_factor),
            "NumberOfBrackets": (self.number_of_brackets, defaults.number_of_brackets),
            "Variant": (self.variant.value, defaults.variant.value),
            "Sampler": (self.sampler.value, defaults.sampler.value),
            "ResourceMetricName": (self.resource_metric_name, defaults.resource_metric_name),
            "RandomFraction": (self.random_fraction, defaults.random_fraction),
            "RungBarrierTimeoutSeconds": (self.rung_barrier_timeout, defaults.rung_barrier_timeout),
            "MinRungResults": (self.min_rung_results, defaults.min_rung_results),
        }
        changed = {key: value for key, (value, default) in extensions.items() if value != default}
        return {"MinResource": self.min_resource, "MaxResource": self.max_resource, **changed}


    def barrier_levels(self, bracket: int) -> tuple[int, ...]:
        """The rung levels a trial of ``bracket`` waits at with the rung barrier on (below MaxResource); else ()."""
        if self.rung_barrier_timeout is None:
            return ()
        return tuple(rung_levels(self.min_resource, self.max_resource, self.reduction_factor)[bracket:-1])


def _inferred_max_resource(static: Mapping[str, str], path: str) -> int:
    """MaxResource from the first epochs-like static hyperparameter, as AMT infers it."""
    for key in EPOCH_KEYS:
        if key in static:
            return v.integer(static[key], f"{DEFINITION}.StaticHyperParameters.{key}", lo=1, hi=MAX_RESOURCE_LIMIT)
    rule = f"`MaxResource is given, or a static hyperparameter among {', '.join(EPOCH_KEYS)} sets it` must hold"
    raise ConfigError(v.at(path, "MaxResource"), rule, v.MISSING)


@dataclass(frozen=True)
class CompletionCriteria:
    """When the tuning job stops early (``TuningJobCompletionCriteria``)."""

    target_objective_metric_value: float | None = None
    max_number_of_training_jobs_not_improving: int | None = None
    complete_on_convergence: bool = False

    @classmethod
    def from_dict(cls, raw: object, path: str = CRITERIA) -> CompletionCriteria:
        f = _fields(raw, path, CRITERIA_KEYS, absent_ok=True)
        best = f.section("BestObjectiveNotImproving", ("MaxNumberOfTrainingJobsNotImproving",))
        convergence = f.section("ConvergenceDetected", ("CompleteOnConvergence",))
        return cls(
            f.number("TargetObjectiveMetricValue", default=None),
            best.integer("MaxNumberOfTrainingJobsNotImproving", lo=3, hi=INT_MAX, default=None),
            convergence.choice("CompleteOnConvergence", _Toggle, default=_Toggle.DISABLED) is _Toggle.ENABLED,
        )

    def to_dict(self) -> dict[str, Any]:
        patience = self.max_number_of_training_jobs_not_improving
        entries = {
            "TargetObjectiveMetricValue": self.target_objective_metric_value,
            "BestObjectiveNotImproving": None
            if patience is None
            else {"MaxNumberOfTrainingJobsNotImproving": patience},
            "ConvergenceDetected": {"CompleteOnConvergence": "Enabled"} if self.complete_on_convergence else None,
        }
        return _without_none(entries)


@dataclass(frozen=True)
class WarmStartConfig:
    """Earlier tuning jobs whose trials seed this one (``WarmStartConfig``): 1-5 distinct parents."""

    parent_tuning_job_names: tuple[str, ...]
    warm_start_type: WarmStartType

    @classmethod
    def from_dict(cls, raw: object, path: str = "WarmStartConfig") -> WarmStartConfig:
        f = _fields(raw, path, WARM_START_KEYS)
        names: list[str] = []
        for item, item_path in f.items("ParentHyperParameterTuningJobs", min_len=1, max_len=5):
            parent = _fields(item, item_path, ("HyperParameterTuningJobName",))
            name = parent.string("HyperParameterTuningJobName", max_len=32, pattern=JOB_NAME)
            if name in names:
                raise ConfigError(parent.at("HyperParameterTuningJobName"), "`parents are distinct` must hold", name)
            names.append(name)
        return cls(tuple(names), f.choice("WarmStartType", WarmStartType))

    def to_dict(self) -> dict[str, Any]:
        parents = [{"HyperParameterTuningJobName": name} for name in self.parent_tuning_job_names]
        return {"ParentHyperParameterTuningJobs": parents, "WarmStartType": self.warm_start_type.value}


@dataclass(frozen=True)
class Extensions:
    """Our top-level ``TuningJobExtensions``: failure limits and cost budgets.

    - ``MaxFailedTrainingJobs`` (int >= 0): the tuning job fails when more trials failed.
    - ``MaxRetriesPerTrial`` (int >= 0, default 2): retriable failures (spot
      interruption, capacity) are retried at most this often per trial.
    - ``MaxBillableSeconds`` (> 0): cost budget in billable instance-seconds.
    - ``MaxCost`` (> 0): cost budget in the price table's currency (SageMaker backend).
    - ``EnforceAmtQuotas`` (``Enabled`` | ``Disabled``, default ``Disabled``): refuse a request
      that exceeds AMT's own quotas (:mod:`hb_core.amt`), for requests that must also run on AMT.
    """

    max_failed_training_jobs: int | None = None
    max_retries_per_trial: int = 2
    max_billable_seconds: float | None = None
    max_cost: float | None = None
    enforce_amt_quotas: bool = False

    @classmethod
    def from_dict(cls, raw: object, path: str = EXTENSIONS) -> Extensions:
        f = _fields(raw, path, EXTENSION_KEYS, absent_ok=True)
        return cls(
            f.integer("MaxFailedTrainingJobs", lo=0, hi=INT_MAX, default=None),
            f.integer("MaxRetriesPerTrial", lo=0, hi=INT_MAX, default=cls.max_retries_per_trial),
            f.number("MaxBillableSeconds", lo=0.0, strict_lo=True, default=None),
            f.number("MaxCost", lo=0.0, strict_lo=True, default=None),
            f.choice("EnforceAmtQuotas", _Toggle, default=_Toggle.DISABLED) is _Toggle.ENABLED,
        )

    def to_dict(self) -> dict[str, Any]:
        retries = self.max_retries_per_trial
        entries = {
            "MaxFailedTrainingJobs": self.max_failed_training_jobs,
            "MaxRetriesPerTrial": None if retries == Extensions.max_retries_per_trial else retries,
            "MaxBillableSeconds": self.max_billable_seconds,
            "MaxCost": self.max_cost,
            "EnforceAmtQuotas": _Toggle.ENABLED.value if self.enforce_amt_quotas else None,
        }
        return _without_none(entries)


def _tags(raw: object, path: str = "Tags") -> tuple[tuple[str, str], ...]:
    """AMT ``Tags``: at most 50 ``{Key, Value}`` pairs, kept in order."""
    pairs: list[tuple[str, str]] = []
    for i, item in enumerate(v.sequence(raw, path, max_len=50)):
        tag = _fields(item, v.index(path, i), ("Key", "Value"))
        pairs.append((tag.string("Key", max_len=128), tag.string("Value", min_len=0, max_len=256)))
    return tuple(pairs)
