"""The tuning configuration: the body of a SageMaker ``CreateHyperParameterTuningJob`` request.

A request users already wrote for SageMaker Automatic Model Tuning (AMT) works
here unchanged. ``TuningConfig.from_dict`` reads it, checks every rule and
raises :class:`~hb_core.errors.ConfigError` naming the JSON path, the rule and
the value found; ``to_dict`` writes the AMT layout back (numbers as strings
where the API uses strings, JSON numbers where it uses numbers), and
``TuningConfig.from_dict(c.to_dict()) == c``.

Terms:

- *request*: the JSON object with top-level keys ``HyperParameterTuningJobName``,
  ``HyperParameterTuningJobConfig``, ``TrainingJobDefinition`` (or a one-item
  ``TrainingJobDefinitions`` list), ``WarmStartConfig``, ``Tags``, ``Autotune``
  and our extension key ``TuningJobExtensions``.
- *resource*: what a trial is trained in (epochs by default). With AMT
  semantics a trial's resource is the count of objective values it reported;
  ``ResourceMetricName`` names a metric that reports it explicitly instead.
- *rung*: a resource at which Hyperband judges trials (see ``hb_core.rungs``).
- *reduction factor* (eta): Hyperband keeps the top 1/eta of a rung.
- *bracket*: a sequence of rungs starting at a later rung; more brackets hedge
  against judging slow starters too early.
- *variant*: ``Stopping`` (AMT: a trial runs to MaxResource unless stopped at a
  rung) or ``Promotion`` (a trial pauses at a rung and resumes from its
  checkpoint when promoted).
- *absent*: a key that is missing or ``null``; an absent optional field takes
  its default.

Our extensions, in AMT's CamelCase style:

- ``HyperParameterTuningJobConfig.StrategyConfig.HyperbandStrategyConfig``:
  ``ReductionFactor`` (int >= 2, default 3), ``NumberOfBrackets`` (int >= 1, at
  most the number of rungs, default 1), ``Variant``, ``Sampler``,
  ``ResourceMetricName``, next to AMT's ``MinResource`` (default 1) and
  ``MaxResource``; ``Sampler`` is ``Random`` (default), ``MultiFidelityGP`` or ``Bayesian``
  (see :class:`SamplerType`; ``KDE`` is refused, :data:`REMOVED_SAMPLERS`); ``RandomFraction`` (a number in [0, 1], default
  1/3 as in BOHB) is the share of a model-based sampler's proposals drawn at
  random. ``RungBarrierTimeoutSeconds`` (a number in (0, 3600]; absent: the
  barrier is off) turns the rung barrier on: a training script that opts in
  (:mod:`hb_core.barrier`) waits at each rung of its bracket, at most that
  long, for the controller's verdict. ``MinRungResults`` (int >= 1, default 1)
  is how many values a rung must hold before it keeps or promotes a trial (the
  delayed rule, :func:`hb_core.rungs.keeps`). When ``MaxResource`` is absent it
  is read, as AMT does, from the first static hyperparameter among ``epochs``,
  ``numepochs``, ``n-epochs``, ``n_epochs``, ``num_epochs``.
- Top-level ``TuningJobExtensions``: ``MaxFailedTrainingJobs``,
  ``MaxRetriesPerTrial``, ``MaxBillableSeconds``, ``MaxCost``,
  ``EnforceAmtQuotas`` (see :class:`Extensions`).

Our choices where AMT is silent or where we differ:

- Unknown keys are errors at every level we read, and the message says where
  a misplaced key belongs. Inside ``TrainingJobDefinition`` only the fields we
  use are checked; the rest is kept verbatim for the SageMaker backend.

- ``TrainingJobDefinitions`` must hold exactly one definition. Its
  ``TuningObjective`` and ``HyperParameterRanges`` may stand in for the tuning
  config's objective and ranges (not both); ``to_dict`` writes them into
  ``HyperParameterTuningJobConfig`` and the definition as ``TrainingJobDefinition``.
- ``MaxNumberOfTrainingJobs`` is required except for Grid, where it defaults
  to the grid size.
- AMT's service quotas (750 training jobs for Hyperband, 100 in parallel) are
  not ours: the controller runs any count. :mod:`hb_core.amt` lists where a
  request exceeds them (``hb-tune validate --amt``), and
  ``TuningJobExtensions.EnforceAmtQuotas`` makes them part of validation.
- ``Autotune`` is rejected: it asks AMT to choose the strategy, which we cannot.
- ``StaticHyperParameters`` values may be JSON numbers or booleans; they are
  stored as strings (``3`` -> ``"3"``, ``0.1`` -> ``"0.1"``, ``true`` -> ``"true"``).
- ``Tags`` are kept (``TuningConfig.tags``) so backends can tag trials.
- ``ReductionFactor`` is at most 20,000 and ``RandomSeed`` and the job counts
  at most 2**31 - 1 (AMT's integers are 32-bit).
- Number formats follow ``hb_core._validate``: strings such as ``"5"`` are
  numbers, integral values such as ``"5.0"`` are integers, booleans are never
  numbers.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from hb_core import _validate as v
from hb_core import amt
from hb_core.errors import ConfigError
from hb_core.latency import MAX_KEEP_ALIVE_SECONDS, keep_alive_seconds
from hb_core.rungs import rung_levels
from hb_core.space import CategoricalParameter, SearchSpace

__all__ = [
    "CompletionCriteria",
    "EarlyStoppingType",
    "Extensions",
    "HyperbandConfig",
    "HyperbandVariant",
    "MetricDefinition",
    "Objective",
    "ObjectiveType",
    "REMOVED_SAMPLERS",
    "ResourceLimits",
    "SamplerType",
    "Strategy",
    "TrainingJobDefinition",
    "TuningConfig",
    "WarmStartConfig",
    "WarmStartType",
]

CONFIG = "HyperParameterTuningJobConfig"
RANGES = f"{CONFIG}.ParameterRanges"
LIMITS = f"{CONFIG}.ResourceLimits"
STRATEGY_CONFIG = f"{CONFIG}.StrategyConfig"
HYPERBAND = f"{STRATEGY_CONFIG}.HyperbandStrategyConfig"
CRITERIA = f"{CONFIG}.TuningJobCompletionCriteria"
EXTENSIONS = "TuningJobExtensions"
DEFINITION = "TrainingJobDefinition"

#: SageMaker's name pattern for tuning jobs (1-32 characters) and training jobs (1-63); use ``fullmatch``.
JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
EPOCH_KEYS = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")


def resource_hyperparameter(static: Mapping[str, Any]) -> str:
    """The hyperparameter that carries a job's resource budget: the first of ``EPOCH_KEYS`` among the
    static hyperparameters, else ``epochs``."""
    return next((key for key in EPOCH_KEYS if key in static), "epochs")

MAX_RESOURCE_LIMIT = 20_000
MAX_BARRIER_SECONDS = 3600  # a job idling at a rung longer than an hour costs more than a relaunch
MAX_HYPERPARAMETERS = 100
INT_MAX = 2**31 - 1  # AMT's integers are 32-bit

# The keys each object may hold, in the order the AMT docs list them.
TOP_KEYS = (
    *("HyperParameterTuningJobName", CONFIG, DEFINITION, "TrainingJobDefinitions"),
    *("WarmStartConfig", "Tags", "Autotune", EXTENSIONS),
)
CONFIG_KEYS = (
    *("Strategy", "StrategyConfig", "HyperParameterTuningJobObjective", "ResourceLimits", "ParameterRanges"),
    *("TrainingJobEarlyStoppingType", "TuningJobCompletionCriteria", "RandomSeed"),
)
HYPERBAND_KEYS = (
    *("MinResource", "MaxResource", "ReductionFactor", "NumberOfBrackets", "Variant", "Sampler"),
    *("ResourceMetricName", "RandomFraction", "RungBarrierTimeoutSeconds", "MinRungResults"),
)
RANGE_KEYS = ("ContinuousParameterRanges", "IntegerParameterRanges", "CategoricalParameterRanges")
LIMIT_KEYS = ("MaxNumberOfTrainingJobs", "MaxParallelTrainingJobs", "MaxRuntimeInSeconds")
CRITERIA_KEYS = ("TargetObjectiveMetricValue", "BestObjectiveNotImproving", "ConvergenceDetected")
EXTENSION_KEYS = ("MaxFailedTrainingJobs", "MaxRetriesPerTrial", "MaxBillableSeconds", "MaxCost", "EnforceAmtQuotas")
WARM_START_KEYS = ("ParentHyperParameterTuningJobs", "WarmStartType")
DEFINITION_KEYS = (  # AMT's HyperParameterTrainingJobDefinition
    *("DefinitionName", "TuningObjective", "HyperParameterRanges", "StaticHyperParameters"),
    *("AlgorithmSpecification", "RoleArn", "InputDataConfig", "VpcConfig", "OutputDataConfig"),
    *("ResourceConfig", "HyperParameterTuningResourceConfig", "StoppingCondition"),
    *("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining"),
    *("CheckpointConfig", "RetryStrategy", "Environment"),
)
LIFTED_KEYS = ("TuningObjective", "HyperParameterRanges")  # read into the tuning config, not kept in ``raw``

# Where a key belongs, for the hint when it turns up elsewhere ("" is the request itself).
HOMES: dict[str, str] = {
    **{key: HYPERBAND for key in HYPERBAND_KEYS},
    **{key: CONFIG for key in CONFIG_KEYS},
    **{key: "" for key in TOP_KEYS},
    **{key: RANGES for key in RANGE_KEYS},
    **{key: LIMITS for key in ("MaxNumberOfTrainingJobs", "MaxParallelTrainingJobs")},
    **{key: CRITERIA for key in CRITERIA_KEYS},
    **{key: EXTENSIONS for key in EXTENSION_KEYS},
    **{key: "WarmStartConfig" for key in WARM_START_KEYS},
    **{key: DEFINITION for key in DEFINITION_KEYS},
    "MetricDefinitions": f"{DEFINITION}.AlgorithmSpecification",
    "HyperbandStrategyConfig": STRATEGY_CONFIG,
}


class Strategy(StrEnum):
    """How configurations are chosen."""

    BAYESIAN = "Bayesian"
    RANDOM = "Random"
    HYPERBAND = "Hyperband"
    GRID = "Grid"


class ObjectiveType(StrEnum):
    """Whether larger or smaller objective values are better."""

    MAXIMIZE = "Maximize"
    MINIMIZE = "Minimize"


class HyperbandVariant(StrEnum):
    """What happens to a trial at a rung; see the module docstring."""

    STOPPING = "Stopping"
    PROMOTION = "Promotion"


class SamplerType(StrEnum):
    """How Hyperband draws new configurations (``HyperbandStrategyConfig.Sampler``).

    - ``Random``: uniform draws under each parameter's scaling (Hyperband as published).
    - ``Bayesian``: model-based: a Gaussian process with expected improvement
      over those rung values (:mod:`hb_core.strategies.model_based`, :mod:`hb_core.strategies.gp`).
    - ``MultiFidelityGP``: model-based, as MOBSTER: one Gaussian process over
      (configuration, rung level) fitted to every rung value, pending trials
      fantasised, expected improvement at the highest rung with enough values
      (:class:`hb_core.strategies.multi_fidelity.JointGPSampler`).

    The model-based samplers propose at random a share ``RandomFraction`` of
    the time, and whenever the rungs hold too few values for a model.
    """

    RANDOM = "Random"
    BAYESIAN = "Bayesian"
    MULTI_FIDELITY_GP = "MultiFidelityGP"


#: Samplers that were removed, and why: a request naming one gets a ConfigError with this hint.
REMOVED_SAMPLERS = {
    "KDE": "Sampler KDE (BOHB) was removed: it was level with Random (HB-stop/HB-KDE 0.97x-1.04x over 50 seeds "
           "on NAS-Bench-201) at 9x the CPU; use Random, or MultiFidelityGP for a model-based sampler",
}


class EarlyStoppingType(StrEnum):
    """AMT's ``TrainingJobEarlyStoppingType``: ``Auto`` is its median rule; Hyperband needs ``Off``."""

    OFF = "Off"
    AUTO = "Auto"


class WarmStartType(StrEnum):
    """What a warm start may assume about its parent tuning jobs."""

    IDENTICAL_DATA_AND_ALGORITHM = "IdenticalDataAndAlgorithm"
    TRANSFER_LEARNING = "TransferLearning"


class _Toggle(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"


def _fields(raw: object, path: str, allowed: tuple[str, ...] | None, *, absent_ok: bool = False) -> v.Fields:
    return v.Fields(raw, path, allowed, HOMES, absent_ok=absent_ok)


def _without_none(entries: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entries.items() if value is not None}


@dataclass(frozen=True)
class Objective:
    """The metric to optimise (``HyperParameterTuningJobObjective``)."""

    metric_name: str
    type: ObjectiveType

    @property
    def sign(self) -> float:
        """+1.0 for Maximize, -1.0 for Minimize: ``sign * value`` is larger when better."""
        return 1.0 if self.type is ObjectiveType.MAXIMIZE else -1.0

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
        removed = next((k for k in REMOVED_SAMPLERS if str(f.get("Sampler")).casefold() == k.casefold()), None)
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


@dataclass(frozen=True)
class MetricDefinition:
    """A metric the training job prints: SageMaker applies ``regex`` to each log line, group 1 is the value."""

    name: str
    regex: str

    @classmethod
    def from_dict(cls, raw: object, path: str) -> MetricDefinition:
        f = _fields(raw, path, ("Name", "Regex"))
        name = f.string("Name", max_len=255)
        return cls(name, v.regex(f.need("Regex"), f.at("Regex"), max_len=500))

    def to_dict(self) -> dict[str, str]:
        return {"Name": self.name, "Regex": self.regex}


def _static_hyperparameters(raw: object, path: str) -> dict[str, str]:
    """``StaticHyperParameters``: keys of 1-256 characters, values made strings of at most 256."""
    obj = v.mapping(raw, path)
    for key in obj:
        v.string(key, v.at(path, key), max_len=256)
    return {key: v.hyperparameter_text(value, v.at(path, key), max_len=256) for key, value in obj.items()}


def _metric_definitions(raw: object, path: str) -> tuple[MetricDefinition, ...]:
    """At most 40 ``MetricDefinitions`` with distinct names."""
    metrics: list[MetricDefinition] = []
    for i, item in enumerate(v.sequence(raw, path, max_len=40)):
        metric = MetricDefinition.from_dict(item, v.index(path, i))
        if any(m.name == metric.name for m in metrics):
            raise ConfigError(v.at(v.index(path, i), "Name"), "`metric names are distinct` must hold", metric.name)
        metrics.append(metric)
    return tuple(metrics)


def _canonical_raw(
    raw: Mapping[str, Any], static: Mapping[str, str], metrics: tuple[MetricDefinition, ...], max_runtime: int | None
) -> dict[str, Any]:
    """``raw`` as JSON, with the typed fields written over their places and the lifted keys dropped."""
    out: dict[str, Any] = v.json_copy(raw, DEFINITION)
    for key in (*LIFTED_KEYS, "StaticHyperParameters"):
        out.pop(key, None)
    if static:
        out["StaticHyperParameters"] = dict(static)
    algorithm = out.get("AlgorithmSpecification")
    algorithm = algorithm if isinstance(algorithm, dict) else {}
    algorithm.pop("MetricDefinitions", None)
    if metrics:
        out["AlgorithmSpecification"] = {**algorithm, "MetricDefinitions": [m.to_dict() for m in metrics]}
    stopping = out.get("StoppingCondition")
    stopping = stopping if isinstance(stopping, dict) else {}
    stopping.pop("MaxRuntimeInSeconds", None)
    if max_runtime is not None:
        out["StoppingCondition"] = {**stopping, "MaxRuntimeInSeconds": max_runtime}
    return out


@dataclass(frozen=True, eq=False)
class TrainingJobDefinition:
    """The training job every trial runs (AMT's ``HyperParameterTrainingJobDefinition``).

    Only the fields the tuner reads are typed; ``raw`` is the whole definition
    as JSON, kept for the SageMaker backend, with the typed fields written into
    it. Treat ``raw`` as read-only; ``to_dict`` returns a copy. Two definitions
    are equal when their ``raw`` JSON is.

    - ``static_hyperparameters``: ``StaticHyperParameters``, passed to every trial.
    - ``metric_definitions``: ``AlgorithmSpecification.MetricDefinitions``.
    - ``max_runtime_in_seconds``: ``StoppingCondition.MaxRuntimeInSeconds`` of one trial.
    """

    static_hyperparameters: Mapping[str, str]
    metric_definitions: tuple[MetricDefinition, ...]
    max_runtime_in_seconds: int | None
    raw: Mapping[str, Any]

    def __post_init__(self) -> None:
        static = {key: self.static_hyperparameters[key] for key in sorted(self.static_hyperparameters)}
        metrics = tuple(self.metric_definitions)
        object.__setattr__(self, "static_hyperparameters", MappingProxyType(static))
        object.__setattr__(self, "metric_definitions", metrics)
        object.__setattr__(self, "raw", _canonical_raw(self.raw, static, metrics, self.max_runtime_in_seconds))

    def _key(self) -> str:
        return json.dumps(self.raw, sort_keys=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrainingJobDefinition) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @classmethod
    def from_dict(cls, raw: object, path: str = DEFINITION) -> TrainingJobDefinition:
        """Read a definition; the keys in ``LIFTED_KEYS`` are left to :meth:`TuningConfig.from_dict`."""
        f = _fields(raw, path, DEFINITION_KEYS)
        static_raw = f.get("StaticHyperParameters")
        static = {} if static_raw is None else _static_hyperparameters(static_raw, f.at("StaticHyperParameters"))
        algorithm = f.section("AlgorithmSpecification", None)
        metrics_raw = algorithm.get("MetricDefinitions")
        metrics = () if metrics_raw is None else _metric_definitions(metrics_raw, algorithm.at("MetricDefinitions"))
        runtime = f.section("StoppingCondition", None).integer("MaxRuntimeInSeconds", lo=1, hi=INT_MAX, default=None)
        return cls(static, metrics, runtime, f.obj)

    @property
    def keep_alive_requested(self) -> int | None:
        """``ResourceConfig.KeepAlivePeriodInSeconds`` as the request gives it (None: not given)."""
        resource = self.raw.get("ResourceConfig")
        value = resource.get("KeepAlivePeriodInSeconds") if isinstance(resource, Mapping) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def to_dict(self) -> dict[str, Any]:
        """A mutable copy of the definition in the AMT layout."""
        return copy.deepcopy(dict(self.raw))

    def require_sagemaker_fields(self, path: str = DEFINITION, *, objective_metric: str | None = None) -> None:
        """Check what CreateTrainingJob needs; called by the SageMaker backend only.

        With ``objective_metric``, a definition that has MetricDefinitions must define it.
        """
        f = _fields(self.raw, path, None)
        algorithm = _fields(f.get("AlgorithmSpecification"), f.at("AlgorithmSpecification"), None)
        if not (algorithm.get("TrainingImage") or algorithm.get("AlgorithmName")):
            rule = "`TrainingImage or AlgorithmName is given` must hold"
            raise ConfigError(algorithm.at("TrainingImage"), rule, v.MISSING)
        f.string("RoleArn", max_len=2048)
        f.section("OutputDataConfig", None).string("S3OutputPath", max_len=1024)
        if not (f.get("HyperParameterTuningResourceConfig") or f.section("ResourceConfig", None).get("InstanceType")):
            rule = "`ResourceConfig.InstanceType or HyperParameterTuningResourceConfig is given` must hold"
            raise ConfigError(v.at(path, "ResourceConfig.InstanceType"), rule, v.MISSING)
        if f.get("ResourceConfig") is not None:
            f.section("ResourceConfig", None).integer("KeepAlivePeriodInSeconds", lo=0, hi=MAX_KEEP_ALIVE_SECONDS,
                                                      default=None)
        _fields(f.get("StoppingCondition"), f.at("StoppingCondition"), None)
        if objective_metric is not None and self.metric_definitions:
            self._require_metric(objective_metric, path)

    def require_local_fields(
        self, objective_metric: str, path: str = DEFINITION, *, resource_metric: str | None = None
    ) -> None:
        """Check what the local backend needs: the entry point and the metrics it parses from stdout."""
        if "sagemaker_program" not in self.static_hyperparameters:
            rule = "`sagemaker_program names the entry point script` must hold"
            raise ConfigError(v.at(path, "StaticHyperParameters.sagemaker_program"), rule, v.MISSING)
        self.require_metric_definitions(objective_metric, path, resource_metric=resource_metric)

    def require_metric_definitions(
        self, objective_metric: str, path: str = DEFINITION, *, resource_metric: str | None = None
    ) -> None:
        """Check that the objective (and the resource metric) have a ``MetricDefinitions`` regex to parse lines."""
        self._require_metric(objective_metric, path)
        if resource_metric is not None:
            self._require_metric(resource_metric, path)

    def _require_metric(self, name: str, path: str) -> None:
        names = [m.name for m in self.metric_definitions]
        if name not in names:
            rule = f"`a MetricDefinition is named {name!r}` must hold"
            raise ConfigError(v.at(path, "AlgorithmSpecification.MetricDefinitions"), rule, names)


@dataclass(frozen=True)
class TuningConfig:
    """A checked tuning request: what to tune, how, and within which limits.

    - ``name``: ``HyperParameterTuningJobName`` (1-32 characters of
      ``[a-zA-Z0-9](-*[a-zA-Z0-9])*``), or None.
    - ``hyperband``: set exactly when ``strategy`` is Hyperband.
    - ``early_stopping_type``: AMT's ``TrainingJobEarlyStoppingType`` (``Off``
      when absent; must be ``Off`` with Hyperband).
    - ``training_job_definition``: None for a simulated run, which needs none.
    - ``tags``: the request's ``Tags`` as (Key, Value) pairs, for the backend.
    """

    name: str | None
    strategy: Strategy
    objective: Objective
    resource_limits: ResourceLimits
    space: SearchSpace
    hyperband: HyperbandConfig | None
    completion: CompletionCriteria
    random_seed: int | None
    early_stopping_type: EarlyStoppingType
    training_job_definition: TrainingJobDefinition | None
    warm_start: WarmStartConfig | None
    extensions: Extensions
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if (self.hyperband is not None) != (self.strategy == Strategy.HYPERBAND):
            rule = "`HyperbandStrategyConfig is set exactly when Strategy is Hyperband` must hold"
            raise ConfigError(HYPERBAND, rule, v.Shown(f"Strategy={self.strategy}, hyperband={self.hyperband}"))

    @property
    def max_resource(self) -> int | None:
        """The resource a trial trains for at most: MaxResource, else an epochs static hyperparameter, else None."""
        if self.hyperband is not None:
            return self.hyperband.max_resource
        static = {} if self.training_job_definition is None else self.training_job_definition.static_hyperparameters
        try:
            return _inferred_max_resource(static, HYPERBAND)
        except ConfigError:
            return None

    def keep_alive_seconds(self, *, startup_seconds: float | None = None,
                           first_rung_seconds: float | None = None) -> int:
        """The ``KeepAlivePeriodInSeconds`` of every trial's training job: the request's, else the product's
        default for this strategy (:func:`hb_core.latency.keep_alive_seconds`, the one rule of warm pools)."""
        hb = self.hyperband
        requested = None if self.training_job_definition is None else self.training_job_definition.keep_alive_requested
        return keep_alive_seconds(requested, hyperband=hb is not None,
                                  promotion=hb is not None and hb.variant is HyperbandVariant.PROMOTION,
                                  startup_seconds=startup_seconds, first_rung_seconds=first_rung_seconds)

    @classmethod
    def from_json(cls, text: str) -> TuningConfig:
        """:meth:`from_dict` of a JSON text; bad JSON is a ConfigError at path ``<json>``."""
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as error:
            found = v.Shown(f"{error.msg} at line {error.lineno}, column {error.colno}")
            raise ConfigError("<json>", "`the text is valid JSON` must hold", found) from None
        except RecursionError:
            raise ConfigError("<json>", "`the JSON nests at most a few hundred levels` must hold", v.MISSING) from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, request: Mapping[str, Any]) -> TuningConfig:
        """Check a ``CreateHyperParameterTuningJob`` request body; see the module docstring."""
        top = _fields(v.mapping(request, "<request>"), "", TOP_KEYS)
        if top.get("Autotune") is not None:
            hint = "Autotune lets AMT choose the strategy; set Strategy and ParameterRanges yourself"
            raise ConfigError("Autotune", "`Autotune is absent` must hold", v.brief(top.get("Autotune")), hint=hint)
        name = top.string("HyperParameterTuningJobName", max_len=32, pattern=JOB_NAME, default=None)
        definition = _definition(top)
        config = _tuning_job_config(top.need(CONFIG))
        strategy = config.choice("Strategy", Strategy)
        limits = ResourceLimits.from_dict(config.need("ResourceLimits"))
        objective = Objective.from_dict(
            *_lifted(config, "HyperParameterTuningJobObjective", definition, "TuningObjective")
        )
        ranges, ranges_path = _lifted(config, "ParameterRanges", definition, "HyperParameterRanges")
        space = SearchSpace.from_dict(v.mapping(ranges, ranges_path), ranges_path, homes=HOMES)
        job = None if definition is None else TrainingJobDefinition.from_dict(definition.obj, definition.path)
        _check_static(space, job)
        warm_start = top.get("WarmStartConfig")
        tuning = cls(
            name=name,
            strategy=strategy,
            objective=objective,
            resource_limits=_completed_limits(limits, strategy, space, ranges_path),
            space=space,
            hyperband=_hyperband(config, strategy, job),
            completion=CompletionCriteria.from_dict(config.get("TuningJobCompletionCriteria")),
            random_seed=config.integer("RandomSeed", lo=0, hi=INT_MAX, default=None),
            early_stopping_type=_early_stopping(config, strategy),
            training_job_definition=job,
            warm_start=None if warm_start is None else WarmStartConfig.from_dict(warm_start),
            extensions=Extensions.from_dict(top.get(EXTENSIONS)),
            tags=() if top.get("Tags") is None else _tags(top.get("Tags")),
        )
        if tuning.extensions.enforce_amt_quotas:
            for finding in tuning.amt_quota_findings():
                raise finding
        return tuning

    def amt_quota_findings(self) -> tuple[ConfigError, ...]:
        """Where this request exceeds AMT's own quotas (:func:`hb_core.amt.quota_findings`)."""
        limits = self.resource_limits
        return amt.quota_findings(hyperband=self.strategy is Strategy.HYPERBAND, limits_path=LIMITS,
                                  max_jobs=limits.max_number_of_training_jobs,
                                  max_parallel=limits.max_parallel_training_jobs)

    def amt_findings(self) -> tuple[ConfigError, ...]:
        """Everything AMT would refuse in this request: its quotas, then our extension keys."""
        return self.amt_quota_findings() + amt.extension_findings(self.to_dict(), HYPERBAND, EXTENSIONS)

    def to_dict(self) -> dict[str, Any]:
        """The request in the AMT layout; ``TuningConfig.from_dict(c.to_dict()) == c``."""
        hyperband = None if self.hyperband is None else {"HyperbandStrategyConfig": self.hyperband.to_dict()}
        config = {
            "Strategy": self.strategy.value,
            "StrategyConfig": hyperband,
            "HyperParameterTuningJobObjective": self.objective.to_dict(),
            "ResourceLimits": self.resource_limits.to_dict(),
            "ParameterRanges": self.space.to_dict(),
            "TrainingJobEarlyStoppingType": self.early_stopping_type.value,
            "TuningJobCompletionCriteria": self.completion.to_dict() or None,
            "RandomSeed": self.random_seed,
        }
        job, warm = self.training_job_definition, self.warm_start
        request = {
            "HyperParameterTuningJobName": self.name,
            CONFIG: _without_none(config),
            DEFINITION: None if job is None else job.to_dict(),
            "WarmStartConfig": None if warm is None else warm.to_dict(),
            "Tags": [{"Key": key, "Value": value} for key, value in self.tags] or None,
            EXTENSIONS: self.extensions.to_dict() or None,
        }
        return _without_none(request)


def _reject_constant(name: str) -> None:
    raise ConfigError("<json>", "`numbers are finite` must hold", v.Shown(name))


def _tuning_job_config(raw: object) -> v.Fields:
    """``HyperParameterTuningJobConfig``, with the keys of it and its objects checked before anything else.

    So a request in the wrong layout (the seed article's MinResource beside
    MaxParallelTrainingJobs) first gets the hint where the key belongs.
    """
    config = _fields(raw, CONFIG, CONFIG_KEYS)
    nested = {
        "ResourceLimits": LIMIT_KEYS,
        "ParameterRanges": RANGE_KEYS,
        "StrategyConfig": ("HyperbandStrategyConfig",),
        "TuningJobCompletionCriteria": CRITERIA_KEYS,
    }
    for key, allowed in nested.items():
        if isinstance(config.get(key), Mapping):
            config.section(key, allowed)
    return config


def _definition(top: v.Fields) -> v.Fields | None:
    """The one training job definition, from ``TrainingJobDefinition`` or a one-item ``TrainingJobDefinitions``."""
    single, many = top.get(DEFINITION), top.get("TrainingJobDefinitions")
    if single is not None and many is not None:
        rule = "`TrainingJobDefinition and TrainingJobDefinitions are not both given` must hold"
        raise ConfigError("TrainingJobDefinitions", rule, v.brief(many))
    if many is None:
        return None if single is None else _fields(single, DEFINITION, None)
    items = top.items("TrainingJobDefinitions")
    if len(items) != 1:
        hint = "Only one training job definition is supported; run one tuning job per definition"
        rule = "`len(TrainingJobDefinitions) == 1` must hold"
        raise ConfigError("TrainingJobDefinitions", rule, len(items), hint=hint)
    return _fields(*items[0], None)


def _lifted(config: v.Fields, key: str, definition: v.Fields | None, definition_key: str) -> tuple[object, str]:
    """A field given in the tuning config or in the definition (exactly one), with its path."""
    if definition is None or definition.get(definition_key) is None:
        return config.need(key), config.at(key)
    there = definition.get(definition_key)
    if config.get(key) is not None:
        rule = f"`{key} is given once` must hold"
        raise ConfigError(definition.at(definition_key), rule, v.brief(there), hint=f"{config.at(key)} is given too")
    return there, definition.at(definition_key)


def _check_static(space: SearchSpace, job: TrainingJobDefinition | None) -> None:
    """Tuned names are not static, and a trial gets at most 100 hyperparameters."""
    static = {} if job is None else job.static_hyperparameters
    path = f"{DEFINITION}.StaticHyperParameters"
    for name in space.names:
        if name in static:
            raise ConfigError(v.at(path, name), "`a tuned hyperparameter is not also static` must hold", name)
    if len(static) + len(space.names) > MAX_HYPERPARAMETERS:
        rule = f"`static + tuned hyperparameters <= {MAX_HYPERPARAMETERS}` must hold"
        raise ConfigError(path, rule, v.Shown(f"{len(static)} static + {len(space.names)} tuned"))


def _hyperband(config: v.Fields, strategy: Strategy, job: TrainingJobDefinition | None) -> HyperbandConfig | None:
    """``StrategyConfig.HyperbandStrategyConfig``: given only with Hyperband, and read always then."""
    if strategy is not Strategy.HYPERBAND:
        if config.get("StrategyConfig") is not None:
            rule = "`StrategyConfig is given only when Strategy is Hyperband` must hold"
            hint = f"Strategy is {strategy.value}"
            raise ConfigError(STRATEGY_CONFIG, rule, v.brief(config.get("StrategyConfig")), hint=hint)
        return None
    outer = config.section("StrategyConfig", ("HyperbandStrategyConfig",))
    static = {} if job is None else job.static_hyperparameters
    hyperband = HyperbandConfig.from_dict(outer.get("HyperbandStrategyConfig"), static)
    metric = hyperband.resource_metric_name
    defined = [] if job is None else [m.name for m in job.metric_definitions]
    if metric is not None and defined and metric not in defined:
        rule = "`ResourceMetricName names a MetricDefinition` must hold"
        raise ConfigError(v.at(HYPERBAND, "ResourceMetricName"), rule, metric)
    return hyperband


def _early_stopping(config: v.Fields, strategy: Strategy) -> EarlyStoppingType:
    kind = config.choice("TrainingJobEarlyStoppingType", EarlyStoppingType, default=EarlyStoppingType.OFF)
    if strategy is Strategy.HYPERBAND and kind is not EarlyStoppingType.OFF:
        rule = "`TrainingJobEarlyStoppingType is Off with Hyperband` must hold"
        hint = "Hyperband stops trials itself"
        raise ConfigError(config.at("TrainingJobEarlyStoppingType"), rule, kind.value, hint=hint)
    return kind


def _completed_limits(
    limits: ResourceLimits, strategy: Strategy, space: SearchSpace, ranges_path: str
) -> ResourceLimits:
    """The strategy's rules on the limits: Grid takes categorical ranges only and defaults the job count."""
    jobs_path = v.at(LIMITS, "MaxNumberOfTrainingJobs")
    jobs = limits.max_number_of_training_jobs
    if strategy is Strategy.GRID:
        numeric = [p.name for p in space.parameters if not isinstance(p, CategoricalParameter)]
        if numeric:
            raise ConfigError(ranges_path, "`Grid takes CategoricalParameterRanges only` must hold", numeric)
        if jobs is None and space.grid_size() > INT_MAX:
            rule = f"`MaxNumberOfTrainingJobs is given when the grid has more than {INT_MAX} points` must hold"
            raise ConfigError(jobs_path, rule, v.MISSING)
        if jobs is None:
            return ResourceLimits(space.grid_size(), limits.max_parallel_training_jobs, limits.max_runtime_in_seconds)
    elif jobs is None:
        rule = "`MaxNumberOfTrainingJobs is given (it may be absent only with Grid)` must hold"
        raise ConfigError(jobs_path, rule, v.MISSING)
    return limits
