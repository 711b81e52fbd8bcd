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
  ``MaxResource``. When ``MaxResource`` is absent it is read, as AMT does, from
  the first static hyperparameter among ``epochs``, ``numepochs``, ``n-epochs``,
  ``n_epochs``, ``num_epochs``.
- Top-level ``TuningJobExtensions``: ``MaxFailedTrainingJobs``,
  ``MaxRetriesPerTrial``, ``MaxBillableSeconds``, ``MaxCost`` (see
  :class:`Extensions`).

Our choices where AMT is silent or where we differ:

- ``TrainingJobDefinitions`` must hold exactly one definition. Its
  ``TuningObjective`` and ``HyperParameterRanges`` may stand in for the tuning
  config's objective and ranges (not both); ``to_dict`` writes them into
  ``HyperParameterTuningJobConfig`` and the definition as ``TrainingJobDefinition``.
- ``MaxNumberOfTrainingJobs`` is required except for Grid, where it defaults
  to the grid size.
- ``Autotune`` is rejected: it asks AMT to choose the strategy, which we cannot.
- ``StaticHyperParameters`` values may be JSON numbers or booleans; they are
  stored as strings (``3`` -> ``"3"``, ``0.1`` -> ``"0.1"``, ``true`` -> ``"true"``).
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
from hb_core.errors import ConfigError
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

JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
EPOCH_KEYS = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")
MAX_RESOURCE_LIMIT = 20_000
HYPERBAND_MAX_JOBS = 750
MAX_HYPERPARAMETERS = 100
INT_MAX = 2**31 - 1  # AMT integers are 32-bit

TOP_KEYS = (
    "HyperParameterTuningJobName",
    CONFIG,
    "TrainingJobDefinition",
    "TrainingJobDefinitions",
    "WarmStartConfig",
    "Tags",
    "Autotune",
    EXTENSIONS,
)
CONFIG_KEYS = (
    "Strategy",
    "StrategyConfig",
    "HyperParameterTuningJobObjective",
    "ResourceLimits",
    "ParameterRanges",
    "TrainingJobEarlyStoppingType",
    "TuningJobCompletionCriteria",
    "RandomSeed",
)
HYPERBAND_KEYS = (
    "MinResource",
    "MaxResource",
    "ReductionFactor",
    "NumberOfBrackets",
    "Variant",
    "Sampler",
    "ResourceMetricName",
)
LIMIT_KEYS = ("MaxNumberOfTrainingJobs", "MaxParallelTrainingJobs", "MaxRuntimeInSeconds")
CRITERIA_KEYS = ("TargetObjectiveMetricValue", "BestObjectiveNotImproving", "ConvergenceDetected")
EXTENSION_KEYS = ("MaxFailedTrainingJobs", "MaxRetriesPerTrial", "MaxBillableSeconds", "MaxCost")
DEFINITION_KEYS = (  # AMT's HyperParameterTrainingJobDefinition
    "DefinitionName",
    "TuningObjective",
    "HyperParameterRanges",
    "StaticHyperParameters",
    "AlgorithmSpecification",
    "RoleArn",
    "InputDataConfig",
    "VpcConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "HyperParameterTuningResourceConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
    "RetryStrategy",
    "Environment",
)
LIFTED_KEYS = ("TuningObjective", "HyperParameterRanges")  # read into the tuning config, not kept in ``raw``

# Where a key belongs, for the hint when it turns up elsewhere ("" is the request itself).
HOMES: dict[str, str] = {
    **{key: HYPERBAND for key in HYPERBAND_KEYS},
    **{key: CONFIG for key in CONFIG_KEYS},
    **{key: "" for key in TOP_KEYS},
    **{key: RANGES for key in ("ContinuousParameterRanges", "IntegerParameterRanges", "CategoricalParameterRanges")},
    **{key: LIMITS for key in ("MaxNumberOfTrainingJobs", "MaxParallelTrainingJobs")},
    **{key: CRITERIA for key in CRITERIA_KEYS},
    **{key: EXTENSIONS for key in EXTENSION_KEYS},
    **{key: DEFINITION for key in DEFINITION_KEYS},
    "MetricDefinitions": f"{DEFINITION}.AlgorithmSpecification",
    "HyperbandStrategyConfig": STRATEGY_CONFIG,
    "ParentHyperParameterTuningJobs": "WarmStartConfig",
    "WarmStartType": "WarmStartConfig",
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
    """How Hyperband draws new configurations."""

    RANDOM = "Random"


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
        obj = v.mapping(raw, path)
        v.check_keys(obj, path, ("Type", "MetricName"), HOMES)
        kind = v.choice(v.required(obj, "Type", path), v.at(path, "Type"), ObjectiveType)
        name = v.string(v.required(obj, "MetricName", path), v.at(path, "MetricName"), max_len=255)
        return cls(name, kind)

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
        obj = v.mapping(raw, path)
        v.check_keys(obj, path, LIMIT_KEYS, HOMES)
        parallel = v.integer(
            v.required(obj, "MaxParallelTrainingJobs", path), v.at(path, "MaxParallelTrainingJobs"), lo=1, hi=100
        )
        jobs = v.optional_integer(obj, "MaxNumberOfTrainingJobs", path, lo=1, hi=INT_MAX)
        runtime = v.optional_integer(obj, "MaxRuntimeInSeconds", path, lo=120, hi=15_768_000)
        return cls(jobs, parallel, runtime)

    def to_dict(self) -> dict[str, int]:
        return _without_none(
            {
                "MaxNumberOfTrainingJobs": self.max_number_of_training_jobs,
                "MaxParallelTrainingJobs": self.max_parallel_training_jobs,
                "MaxRuntimeInSeconds": self.max_runtime_in_seconds,
            }
        )


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

    @classmethod
    def from_dict(cls, raw: object, static: Mapping[str, str], path: str = HYPERBAND) -> HyperbandConfig:
        """Read the object at ``path``; ``static`` are the static hyperparameters MaxResource may come from."""
        obj = v.mapping(raw, path)
        v.check_keys(obj, path, HYPERBAND_KEYS, HOMES)
        min_resource = v.optional_integer(obj, "MinResource", path, lo=1, hi=MAX_RESOURCE_LIMIT) or 1
        max_raw = v.optional(obj, "MaxResource")
        if max_raw is None:
            max_resource = _inferred_max_resource(static, path)
        else:
            max_resource = v.integer(max_raw, v.at(path, "MaxResource"), lo=1, hi=MAX_RESOURCE_LIMIT)
        if not min_resource < max_resource:
            shown = v.Shown(f"MinResource={min_resource}, MaxResource={max_resource}")
            raise ConfigError(v.at(path, "MaxResource"), "`MinResource < MaxResource` must hold", shown)
        eta = v.optional_integer(obj, "ReductionFactor", path, lo=2, hi=MAX_RESOURCE_LIMIT) or 3
        rungs = len(rung_levels(min_resource, max_resource, eta))
        brackets = v.optional_integer(obj, "NumberOfBrackets", path, lo=1, hi=rungs) or 1
        variant_raw, sampler_raw, metric_raw = (
            v.optional(obj, k) for k in ("Variant", "Sampler", "ResourceMetricName")
        )
        return cls(
            min_resource,
            max_resource,
            eta,
            brackets,
            HyperbandVariant.STOPPING
            if variant_raw is None
            else v.choice(variant_raw, v.at(path, "Variant"), HyperbandVariant),
            SamplerType.RANDOM if sampler_raw is None else v.choice(sampler_raw, v.at(path, "Sampler"), SamplerType),
            None if metric_raw is None else v.string(metric_raw, v.at(path, "ResourceMetricName"), max_len=255),
        )

    def to_dict(self) -> dict[str, Any]:
        """AMT's keys always; our extensions only when they differ from their defaults."""
        out: dict[str, Any] = {"MinResource": self.min_resource, "MaxResource": self.max_resource}
        defaults = HyperbandConfig(self.min_resource, self.max_resource)
        extras = {
            "ReductionFactor": (self.reduction_factor, defaults.reduction_factor),
            "NumberOfBrackets": (self.number_of_brackets, defaults.number_of_brackets),
            "Variant": (self.variant.value, defaults.variant.value),
            "Sampler": (self.sampler.value, defaults.sampler.value),
            "ResourceMetricName": (self.resource_metric_name, defaults.resource_metric_name),
        }
        out.update({key: value for key, (value, default) in extras.items() if value != default})
        return out


def _inferred_max_resource(static: Mapping[str, str], path: str) -> int:
    """MaxResource from the first epochs-like static hyperparameter, as AMT infers it."""
    for key in EPOCH_KEYS:
        if key in static:
            return v.integer(static[key], f"{DEFINITION}.StaticHyperParameters.{key}", lo=1, hi=MAX_RESOURCE_LIMIT)
    raise ConfigError(
        v.at(path, "MaxResource"),
        f"`MaxResource is given, or a static hyperparameter among {', '.join(EPOCH_KEYS)} sets it` must hold",
        v.MISSING,
    )


@dataclass(frozen=True)
class CompletionCriteria:
    """When the tuning job stops early (``TuningJobCompletionCriteria``)."""

    target_objective_metric_value: float | None = None
    max_number_of_training_jobs_not_improving: int | None = None
    complete_on_convergence: bool = False

    @classmethod
    def from_dict(cls, raw: object, path: str = CRITERIA) -> CompletionCriteria:
        obj = v.mapping(raw, path)
        v.check_keys(obj, path, CRITERIA_KEYS, HOMES)
        target_raw = v.optional(obj, "TargetObjectiveMetricValue")
        target = None if target_raw is None else v.number(target_raw, v.at(path, "TargetObjectiveMetricValue"))
        best = v.section(obj, "BestObjectiveNotImproving", path, ("MaxNumberOfTrainingJobsNotImproving",), HOMES)
        patience = v.optional_integer(
            best, "MaxNumberOfTrainingJobsNotImproving", v.at(path, "BestObjectiveNotImproving"), lo=3, hi=INT_MAX
        )
        convergence = v.section(obj, "ConvergenceDetected", path, ("CompleteOnConvergence",), HOMES)
        toggle = v.optional(convergence, "CompleteOnConvergence")
        toggle_path = v.at(v.at(path, "ConvergenceDetected"), "CompleteOnConvergence")
        enabled = toggle is not None and v.choice(toggle, toggle_path, _Toggle) is _Toggle.ENABLED
        return cls(target, patience, enabled)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _without_none({"TargetObjectiveMetricValue": self.target_objective_metric_value})
        if self.max_number_of_training_jobs_not_improving is not None:
            out["BestObjectiveNotImproving"] = {
                "MaxNumberOfTrainingJobsNotImproving": self.max_number_of_training_jobs_not_improving
            }
        if self.complete_on_convergence:
            out["ConvergenceDetected"] = {"CompleteOnConvergence": _Toggle.ENABLED.value}
        return out


@dataclass(frozen=True)
class WarmStartConfig:
    """Earlier tuning jobs whose trials seed this one (``WarmStartConfig``): 1-5 distinct parents."""

    parent_tuning_job_names: tuple[str, ...]
    warm_start_type: WarmStartType

    @classmethod
    def from_dict(cls, raw: object, path: str = "WarmStartConfig") -> WarmStartConfig:
        obj = v.mapping(raw, path)
        v.check_keys(obj, path, ("ParentHyperParameterTuningJobs", "WarmStartType"), HOMES)
        parents_path = v.at(path, "ParentHyperParameterTuningJobs")
        parents = v.sequence(
            v.required(obj, "ParentHyperParameterTuningJobs", path), parents_path, min_len=1, max_len=5
        )
        names: list[str] = []
        for i, parent in enumerate(parents):
            item_path = v.index(parents_path, i)
            item = v.mapping(parent, item_path)
            v.check_keys(item, item_path, ("HyperParameterTuningJobName",), HOMES)
            name_path = v.at(item_path, "HyperParameterTuningJobName")
            name = v.string(
                v.required(item, "HyperParameterTuningJobName", item_path), name_path, max_len=32, pattern=JOB_NAME
            )
            if name in names:
                raise ConfigError(name_path, "`parent tuning jobs are distinct` must hold", name)
            names.append(name)
        kind = v.choice(v.required(obj, "WarmStartType", path), v.at(path, "WarmStartType"), WarmStartType)
        return cls(tuple(names), kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ParentHyperParameterTuningJobs": [
                {"HyperParameterTuningJobName": n} for n in self.parent_tuning_job_names
            ],
            "WarmStartType": self.warm_start_type.value,
        }


@dataclass(frozen=True)
class Extensions:
    """Our top-level ``TuningJobExtensions``: failure limits and cost budgets.

    - ``MaxFailedTrainingJobs`` (int >= 0): the tuning job fails when more trials failed.
    - ``MaxRetriesPerTrial`` (int >= 0, default 2): retriable failures (spot
      interruption, capacity) are retried at most this often per trial.
    - ``MaxBillableSeconds`` (> 0): cost budget in billable instance-seconds.
    - ``MaxCost`` (> 0): cost budget in the price table's currency (SageMaker backend).
    """

    max_failed_training_jobs: int | None = None
    max_retries_per_trial: int = 2
    max_billable_seconds: float | None = None
    max_cost: float | None = None

    @classmethod
    def from_dict(cls, raw: object, path: str = EXTENSIONS) -> Extensions:
        obj = v.mapping(raw, path)
        v.check_keys(obj, path, EXTENSION_KEYS, HOMES)
        retries = v.optional_integer(obj, "MaxRetriesPerTrial", path, lo=0, hi=INT_MAX)
        return cls(
            v.optional_integer(obj, "MaxFailedTrainingJobs", path, lo=0, hi=INT_MAX),
            cls.max_retries_per_trial if retries is None else retries,
            v.optional_positive(obj, "MaxBillableSeconds", path),
            v.optional_positive(obj, "MaxCost", path),
        )

    def to_dict(self) -> dict[str, Any]:
        retries = None if self.max_retries_per_trial == Extensions.max_retries_per_trial else self.max_retries_per_trial
        return _without_none(
            {
                "MaxFailedTrainingJobs": self.max_failed_training_jobs,
                "MaxRetriesPerTrial": retries,
                "MaxBillableSeconds": self.max_billable_seconds,
                "MaxCost": self.max_cost,
            }
        )


def _tags(raw: object, path: str = "Tags") -> tuple[tuple[str, str], ...]:
    """AMT ``Tags``: at most 50 ``{Key, Value}`` pairs, kept in order."""
    pairs: list[tuple[str, str]] = []
    for i, item in enumerate(v.sequence(raw, path, max_len=50)):
        item_path = v.index(path, i)
        tag = v.mapping(item, item_path)
        v.check_keys(tag, item_path, ("Key", "Value"), {})
        key = v.string(v.required(tag, "Key", item_path), v.at(item_path, "Key"), max_len=128)
        value = v.string(v.required(tag, "Value", item_path), v.at(item_path, "Value"), min_len=0, max_len=256)
        pairs.append((key, value))
    return tuple(pairs)


@dataclass(frozen=True)
class MetricDefinition:
    """A metric the training job prints: SageMaker applies ``regex`` to each log line, group 1 is the value."""

    name: str
    regex: str

    @classmethod
    def from_dict(cls, raw: object, path: str) -> MetricDefinition:
        obj = v.mapping(raw, path)
        v.check_keys(obj, path, ("Name", "Regex"), HOMES)
        name = v.string(v.required(obj, "Name", path), v.at(path, "Name"), max_len=255)
        return cls(name, v.regex(v.required(obj, "Regex", path), v.at(path, "Regex"), max_len=500))

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
    for key in LIFTED_KEYS:
        out.pop(key, None)
    out.pop("StaticHyperParameters", None)
    if static:
        out["StaticHyperParameters"] = dict(static)
    algorithm = out.get("AlgorithmSpecification")
    if isinstance(algorithm, dict):
        algorithm.pop("MetricDefinitions", None)
    if metrics:
        out["AlgorithmSpecification"] = {**(algorithm or {}), "MetricDefinitions": [m.to_dict() for m in metrics]}
    stopping = out.get("StoppingCondition")
    if isinstance(stopping, dict):
        stopping.pop("MaxRuntimeInSeconds", None)
    if max_runtime is not None:
        out["StoppingCondition"] = {**(stopping or {}), "MaxRuntimeInSeconds": max_runtime}
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
        obj = v.mapping(raw, path)
        v.check_keys(obj, path, DEFINITION_KEYS, HOMES)
        static_raw = v.optional(obj, "StaticHyperParameters")
        static = {} if static_raw is None else _static_hyperparameters(static_raw, v.at(path, "StaticHyperParameters"))
        algorithm = v.child(obj, "AlgorithmSpecification", path)
        metrics_raw = v.optional(algorithm, "MetricDefinitions")
        metrics_path = v.at(path, "AlgorithmSpecification.MetricDefinitions")
        metrics = () if metrics_raw is None else _metric_definitions(metrics_raw, metrics_path)
        stopping = v.child(obj, "StoppingCondition", path)
        runtime = v.optional_integer(stopping, "MaxRuntimeInSeconds", v.at(path, "StoppingCondition"), lo=1, hi=INT_MAX)
        return cls(static, metrics, runtime, obj)

    def to_dict(self) -> dict[str, Any]:
        """A mutable copy of the definition in the AMT layout."""
        return copy.deepcopy(dict(self.raw))

    def require_sagemaker_fields(self, path: str = DEFINITION, *, objective_metric: str | None = None) -> None:
        """Check what CreateTrainingJob needs; called by the SageMaker backend only.

        With ``objective_metric``, a definition that has MetricDefinitions must define it.
        """
        algorithm = self._section("AlgorithmSpecification", path)
        if not (algorithm.get("TrainingImage") or algorithm.get("AlgorithmName")):
            raise ConfigError(
                v.at(path, "AlgorithmSpecification.TrainingImage"),
                "`TrainingImage or AlgorithmName is given` must hold",
                v.MISSING,
            )
        v.string(v.required(self.raw, "RoleArn", path), v.at(path, "RoleArn"))
        output = self._section("OutputDataConfig", path)
        v.string(
            v.required(output, "S3OutputPath", v.at(path, "OutputDataConfig")),
            v.at(path, "OutputDataConfig.S3OutputPath"),
        )
        resources = self.raw.get("ResourceConfig")
        if not (isinstance(resources, Mapping) and resources.get("InstanceType")) and not self.raw.get(
            "HyperParameterTuningResourceConfig"
        ):
            raise ConfigError(
                v.at(path, "ResourceConfig.InstanceType"),
                "`ResourceConfig.InstanceType or HyperParameterTuningResourceConfig is given` must hold",
                v.MISSING,
            )
        self._section("StoppingCondition", path)
        if objective_metric is not None and self.metric_definitions:
            self._require_metric(objective_metric, path)

    def require_local_fields(
        self, objective_metric: str, path: str = DEFINITION, *, resource_metric: str | None = None
    ) -> None:
        """Check what the local backend needs: the entry point and the metrics it parses from stdout."""
        if "sagemaker_program" not in self.static_hyperparameters:
            raise ConfigError(
                v.at(path, "StaticHyperParameters.sagemaker_program"),
                "`sagemaker_program names the entry point script` must hold",
                v.MISSING,
            )
        self._require_metric(objective_metric, path)
        if resource_metric is not None:
            self._require_metric(resource_metric, path)

    def _section(self, key: str, path: str) -> Mapping[str, object]:
        return v.mapping(v.required(self.raw, key, path), v.at(path, key))

    def _require_metric(self, name: str, path: str) -> None:
        names = [m.name for m in self.metric_definitions]
        if name not in names:
            raise ConfigError(
                v.at(path, "AlgorithmSpecification.MetricDefinitions"),
                f"`a MetricDefinition is named {name!r}` must hold",
                names,
            )


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
        top = v.mapping(request, "<request>")
        v.check_keys(top, "", TOP_KEYS, HOMES)
        if v.optional(top, "Autotune") is not None:
            hint = "Autotune lets AMT choose the strategy; set Strategy and ParameterRanges yourself"
            raise ConfigError("Autotune", "`Autotune is absent` must hold", v.brief(top["Autotune"]), hint=hint)
        name_raw = v.optional(top, "HyperParameterTuningJobName")
        name = (
            None
            if name_raw is None
            else v.string(name_raw, "HyperParameterTuningJobName", max_len=32, pattern=JOB_NAME)
        )
        definition, definition_path = _definition(top)
        config = v.mapping(v.required(top, CONFIG, ""), CONFIG)
        _check_config_keys(config)
        strategy = v.choice(v.required(config, "Strategy", CONFIG), v.at(CONFIG, "Strategy"), Strategy)
        limits = ResourceLimits.from_dict(v.required(config, "ResourceLimits", CONFIG))
        objective = Objective.from_dict(
            *_lifted(config, "HyperParameterTuningJobObjective", definition, "TuningObjective", definition_path)
        )
        ranges, ranges_path = _lifted(config, "ParameterRanges", definition, "HyperParameterRanges", definition_path)
        space = SearchSpace.from_dict(v.mapping(ranges, ranges_path), ranges_path, homes=HOMES)
        job = None if definition is None else TrainingJobDefinition.from_dict(definition, definition_path)
        static = {} if job is None else job.static_hyperparameters
        _check_static(space, static, v.at(definition_path, "StaticHyperParameters"))
        hyperband = _hyperband(config, strategy, static, job)
        seed_raw, warm_raw, tags_raw = (
            v.optional(config, "RandomSeed"),
            v.optional(top, "WarmStartConfig"),
            v.optional(top, "Tags"),
        )
        return cls(
            name=name,
            strategy=strategy,
            objective=objective,
            resource_limits=_completed_limits(limits, strategy, space, ranges_path),
            space=space,
            hyperband=hyperband,
            completion=CompletionCriteria.from_dict(v.optional(config, "TuningJobCompletionCriteria") or {}),
            random_seed=None if seed_raw is None else v.integer(seed_raw, v.at(CONFIG, "RandomSeed"), lo=0, hi=INT_MAX),
            early_stopping_type=_early_stopping(config, strategy),
            training_job_definition=job,
            warm_start=None if warm_raw is None else WarmStartConfig.from_dict(warm_raw),
            extensions=Extensions.from_dict(v.optional(top, EXTENSIONS) or {}),
            tags=() if tags_raw is None else _tags(tags_raw),
        )

    def to_dict(self) -> dict[str, Any]:
        """The request in the AMT layout; ``TuningConfig.from_dict(c.to_dict()) == c``."""
        config: dict[str, Any] = {"Strategy": self.strategy.value}
        if self.hyperband is not None:
            config["StrategyConfig"] = {"HyperbandStrategyConfig": self.hyperband.to_dict()}
        config["HyperParameterTuningJobObjective"] = self.objective.to_dict()
        config["ResourceLimits"] = self.resource_limits.to_dict()
        config["ParameterRanges"] = self.space.to_dict()
        config["TrainingJobEarlyStoppingType"] = self.early_stopping_type.value
        optional_config = {
            "TuningJobCompletionCriteria": self.completion.to_dict() or None,
            "RandomSeed": self.random_seed,
        }
        config.update(_without_none(optional_config))
        out: dict[str, Any] = _without_none({"HyperParameterTuningJobName": self.name})
        out[CONFIG] = config
        extras = {
            DEFINITION: None if self.training_job_definition is None else self.training_job_definition.to_dict(),
            "WarmStartConfig": None if self.warm_start is None else self.warm_start.to_dict(),
            "Tags": [{"Key": key, "Value": value} for key, value in self.tags] or None,
            EXTENSIONS: self.extensions.to_dict() or None,
        }
        out.update(_without_none(extras))
        return out


def _reject_constant(name: str) -> None:
    raise ConfigError("<json>", "`numbers are finite` must hold", v.Shown(name))


def _check_config_keys(config: Mapping[str, object]) -> None:
    """Unknown keys of the tuning config and of its sub-objects, checked before anything else.

    So a request in the wrong layout (the seed article's MinResource beside
    MaxParallelTrainingJobs) gets the hint where the key belongs first.
    """
    v.check_keys(config, CONFIG, CONFIG_KEYS, HOMES)
    nested = {
        "ResourceLimits": LIMIT_KEYS,
        "ParameterRanges": ("ContinuousParameterRanges", "IntegerParameterRanges", "CategoricalParameterRanges"),
        "StrategyConfig": ("HyperbandStrategyConfig",),
        "TuningJobCompletionCriteria": CRITERIA_KEYS,
    }
    for key, allowed in nested.items():
        if isinstance(config.get(key), Mapping):
            v.section(config, key, CONFIG, allowed, HOMES)


def _definition(top: Mapping[str, object]) -> tuple[Mapping[str, object] | None, str]:
    """The one training job definition, from ``TrainingJobDefinition`` or a one-item ``TrainingJobDefinitions``."""
    single, many = v.optional(top, DEFINITION), v.optional(top, "TrainingJobDefinitions")
    if single is not None and many is not None:
        rule = "`TrainingJobDefinition and TrainingJobDefinitions are not both given` must hold"
        raise ConfigError("TrainingJobDefinitions", rule, v.brief(many))
    if many is None:
        return (None if single is None else v.mapping(single, DEFINITION)), DEFINITION
    items = v.sequence(many, "TrainingJobDefinitions")
    if len(items) != 1:
        hint = "Only one training job definition is supported; run one tuning job per definition"
        raise ConfigError(
            "TrainingJobDefinitions", "`len(TrainingJobDefinitions) == 1` must hold", len(items), hint=hint
        )
    return v.mapping(items[0], "TrainingJobDefinitions[0]"), "TrainingJobDefinitions[0]"


def _lifted(
    config: Mapping[str, object],
    key: str,
    definition: Mapping[str, object] | None,
    definition_key: str,
    definition_path: str,
) -> tuple[object, str]:
    """A field that may sit in the tuning config or in the definition (exactly one), with its path."""
    here = v.optional(config, key)
    there = None if definition is None else v.optional(definition, definition_key)
    there_path = v.at(definition_path, definition_key)
    if here is not None and there is not None:
        raise ConfigError(
            there_path, f"`{key} is given once` must hold", v.brief(there), hint=f"{CONFIG}.{key} is given too"
        )
    if there is not None:
        return there, there_path
    return v.required(config, key, CONFIG), v.at(CONFIG, key)


def _check_static(space: SearchSpace, static: Mapping[str, str], path: str) -> None:
    """Tuned names are not static, and a trial gets at most 100 hyperparameters."""
    for name in space.names:
        if name in static:
            raise ConfigError(v.at(path, name), "`a tuned hyperparameter is not also static` must hold", name)
    total = len(static) + len(space.names)
    if total > MAX_HYPERPARAMETERS:
        rule = f"`static + tuned hyperparameters <= {MAX_HYPERPARAMETERS}` must hold"
        raise ConfigError(path, rule, v.Shown(f"{len(static)} static + {len(space.names)} tuned"))


def _hyperband(
    config: Mapping[str, object], strategy: Strategy, static: Mapping[str, str], job: TrainingJobDefinition | None
) -> HyperbandConfig | None:
    """``StrategyConfig.HyperbandStrategyConfig``, given only (and read always) with Hyperband."""
    strategy_config = v.optional(config, "StrategyConfig")
    if strategy is not Strategy.HYPERBAND:
        if strategy_config is not None:
            rule = "`StrategyConfig is given only when Strategy is Hyperband` must hold"
            raise ConfigError(STRATEGY_CONFIG, rule, v.brief(strategy_config), hint=f"Strategy is {strategy.value}")
        return None
    outer = v.section(config, "StrategyConfig", CONFIG, ("HyperbandStrategyConfig",), HOMES)
    hyperband = HyperbandConfig.from_dict(v.optional(outer, "HyperbandStrategyConfig") or {}, static)
    metric = hyperband.resource_metric_name
    if metric is not None and job is not None and job.metric_definitions:
        if metric not in [m.name for m in job.metric_definitions]:
            rule = "`ResourceMetricName names a MetricDefinition` must hold"
            raise ConfigError(v.at(HYPERBAND, "ResourceMetricName"), rule, metric)
    return hyperband


def _early_stopping(config: Mapping[str, object], strategy: Strategy) -> EarlyStoppingType:
    path = v.at(CONFIG, "TrainingJobEarlyStoppingType")
    raw = v.optional(config, "TrainingJobEarlyStoppingType")
    kind = EarlyStoppingType.OFF if raw is None else v.choice(raw, path, EarlyStoppingType)
    if strategy is Strategy.HYPERBAND and kind is not EarlyStoppingType.OFF:
        hint = "Hyperband stops trials itself"
        raise ConfigError(path, "`TrainingJobEarlyStoppingType is Off with Hyperband` must hold", kind.value, hint=hint)
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
        if jobs is None:
            size = space.grid_size()
            if size > INT_MAX:
                raise ConfigError(
                    jobs_path,
                    f"`MaxNumberOfTrainingJobs is given when the grid size exceeds {INT_MAX}` must hold",
                    v.MISSING,
                )
            return ResourceLimits(size, limits.max_parallel_training_jobs, limits.max_runtime_in_seconds)
    elif jobs is None:
        raise ConfigError(
            jobs_path, "`MaxNumberOfTrainingJobs is given (it may be absent only with Grid)` must hold", v.MISSING
        )
    if strategy is Strategy.HYPERBAND and jobs > HYPERBAND_MAX_JOBS:
        raise ConfigError(
            jobs_path, f"`MaxNumberOfTrainingJobs <= {HYPERBAND_MAX_JOBS} with Hyperband` must hold", jobs
        )
    return limits
