"""Where each key of a tuning request lives: the JSON paths, the keys each object may hold, and the limits.

Part of :mod:`hb_core.config` (its docstring has the terms and the rules); import from there."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hb_core import _validate as v

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


def _fields(raw: object, path: str, allowed: tuple[str, ...] | None, *, absent_ok: bool = False) -> v.Fields:
    return v.Fields(raw, path, allowed, HOMES, absent_ok=absent_ok)


def _without_none(entries: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entries.items() if value is not None}
