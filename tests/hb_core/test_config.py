"""Tests of hb_core.config: every rule of a CreateHyperParameterTuningJob request, round trips, fuzzing."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hb_core.config import (
    CompletionCriteria,
    EarlyStoppingType,
    Extensions,
    HyperbandConfig,
    HyperbandVariant,
    MetricDefinition,
    Objective,
    ObjectiveType,
    ResourceLimits,
    SamplerType,
    Strategy,
    TrainingJobDefinition,
    TuningConfig,
    WarmStartConfig,
    WarmStartType,
)
from hb_core.errors import ConfigError
from hb_core.space import CategoricalParameter, IntegerParameter

SEED_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed_tuning.json"
CONFIG = "HyperParameterTuningJobConfig"
HYPERBAND = f"{CONFIG}.StrategyConfig.HyperbandStrategyConfig"
DELETE = object()


def valid_request() -> dict[str, Any]:
    """A request that uses every section, in the AMT layout."""
    return {
        "HyperParameterTuningJobName": "mlp-hyperband-1",
        CONFIG: {
            "Strategy": "Hyperband",
            "StrategyConfig": {
                "HyperbandStrategyConfig": {
                    "MinResource": 1,
                    "MaxResource": 27,
                    "ReductionFactor": 3,
                    "NumberOfBrackets": 2,
                    "Variant": "Promotion",
                    "Sampler": "Random",
                    "ResourceMetricName": "epoch",
                }
            },
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:accuracy"},
            "ResourceLimits": {
                "MaxNumberOfTrainingJobs": "50",
                "MaxParallelTrainingJobs": 5,
                "MaxRuntimeInSeconds": 3600,
            },
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "learning_rate", "MinValue": "1e-4", "MaxValue": "0.1", "ScalingType": "Logarithmic"},
                    {"Name": "l2", "MinValue": "1e-6", "MaxValue": "2", "ScalingType": "Auto"},
                ],
                "IntegerParameterRanges": [
                    {"Name": "units", "MinValue": "10", "MaxValue": "1000", "ScalingType": "Logarithmic"},
                    {"Name": "batch_size", "MinValue": "10", "MaxValue": "200", "ScalingType": "Linear"},
                ],
                "CategoricalParameterRanges": [{"Name": "activation", "Values": ["relu", "tanh"]}],
            },
            "TrainingJobEarlyStoppingType": "Off",
            "TuningJobCompletionCriteria": {
                "TargetObjectiveMetricValue": 0.96,
                "BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 10},
                "ConvergenceDetected": {"CompleteOnConvergence": "Enabled"},
            },
            "RandomSeed": 42,
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp:latest",
                "TrainingInputMode": "File",
                "MetricDefinitions": [
                    {"Name": "validation:accuracy", "Regex": r"val_acc=([0-9.]+)"},
                    {"Name": "epoch", "Regex": r"epoch=(\d+)"},
                ],
            },
            "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
            "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "KeepAlivePeriodInSeconds": 600},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
            "StaticHyperParameters": {"sagemaker_program": "train.py", "epochs": "27"},
            "EnableManagedSpotTraining": True,
            "CheckpointConfig": {"S3Uri": "s3://bucket/checkpoints"},
        },
        "WarmStartConfig": {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "parent-1"}],
            "WarmStartType": "IdenticalDataAndAlgorithm",
        },
        "Tags": [{"Key": "team", "Value": "ml"}],
        "TuningJobExtensions": {
            "MaxFailedTrainingJobs": 3,
            "MaxRetriesPerTrial": 1,
            "MaxBillableSeconds": 36000,
            "MaxCost": 25.5,
            "EnforceAmtQuotas": "Enabled",
        },
    }


def changed(request: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A copy of ``request`` with the value at ``path`` replaced, or removed when ``value`` is DELETE."""
    out = copy.deepcopy(request)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
    return out


def error_of(request: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        TuningConfig.from_dict(request)
    return str(raised.value)


# --- the valid request ----------------------------------------------------------------------------


def test_valid_request_parses_into_typed_values() -> None:
    c = TuningConfig.from_dict(valid_request())
    assert c.name == "mlp-hyperband-1"
    assert c.strategy is Strategy.HYPERBAND
    assert c.objective == Objective("validation:accuracy", ObjectiveType.MAXIMIZE)
    assert c.resource_limits == ResourceLimits(50, 5, 3600)
    assert c.space.names == ("learning_rate", "l2", "units", "batch_size", "activation")
    assert c.hyperband == HyperbandConfig(1, 27, 3, 2, HyperbandVariant.PROMOTION, SamplerType.RANDOM, "epoch")
    assert c.completion == CompletionCriteria(0.96, 10, True)
    assert c.random_seed == 42
    assert c.early_stopping_type == "Off" and c.early_stopping_type is EarlyStoppingType.OFF
    assert c.warm_start == WarmStartConfig(("parent-1",), WarmStartType.IDENTICAL_DATA_AND_ALGORITHM)
    assert c.extensions == Extensions(3, 1, 36000.0, 25.5, enforce_amt_quotas=True)
    assert c.tags == (("team", "ml"),)
    assert c.max_resource == 27
    job = c.training_job_definition
    assert job is not None
    assert dict(job.static_hyperparameters) == {"epochs": "27", "sagemaker_program": "train.py"}
    assert job.metric_definitions[1] == MetricDefinition("epoch", r"epoch=(\d+)")
    assert job.max_runtime_in_seconds == 3600
    assert job.raw["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600  # kept verbatim


def test_round_trip_and_layout_of_to_dict() -> None:
    c = TuningConfig.from_dict(valid_request())
    data = c.to_dict()
    assert TuningConfig.from_dict(data) == c
    assert TuningConfig.from_json(json.dumps(data)) == c
    assert hash(TuningConfig.from_dict(data)) == hash(c)
    limits = data[CONFIG]["ResourceLimits"]
    assert limits == {"MaxNumberOfTrainingJobs": 50, "MaxParallelTrainingJobs": 5, "MaxRuntimeInSeconds": 3600}
    integer_range = data[CONFIG]["ParameterRanges"]["IntegerParameterRanges"][0]
    assert integer_range == {"Name": "units", "MinValue": "10", "MaxValue": "1000", "ScalingType": "Logarithmic"}
    assert data[CONFIG]["StrategyConfig"]["HyperbandStrategyConfig"]["MaxResource"] == 27
    assert data["TrainingJobDefinition"]["CheckpointConfig"] == {"S3Uri": "s3://bucket/checkpoints"}


def test_minimal_request_gets_the_defaults() -> None:
    request = {
        CONFIG: {
            "Strategy": "Hyperband",
            "StrategyConfig": {"HyperbandStrategyConfig": {"MaxResource": "9"}},
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 20, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {"IntegerParameterRanges": [{"Name": "n", "MinValue": "1", "MaxValue": "4"}]},
        }
    }
    c = TuningConfig.from_dict(request)
    assert c.name is None and c.training_job_definition is None and c.warm_start is None
    assert c.hyperband == HyperbandConfig(min_resource=1, max_resource=9)
    assert c.early_stopping_type is EarlyStoppingType.OFF
    assert c.completion == CompletionCriteria() and c.extensions == Extensions() and c.random_seed is None
    assert c.objective.sign == -1.0
    assert TuningConfig.from_dict(c.to_dict()) == c
    assert "TuningJobExtensions" not in c.to_dict() and "StrategyConfig" in c.to_dict()[CONFIG]


def test_objective_sign_folds_the_direction() -> None:
    assert Objective("acc", ObjectiveType.MAXIMIZE).sign == 1.0
    assert Objective("loss", ObjectiveType.MINIMIZE).sign == -1.0


# --- the seed article -----------------------------------------------------------------------------


def test_seed_example_parses() -> None:
    c = TuningConfig.from_json(SEED_EXAMPLE.read_text())
    assert c.strategy is Strategy.HYPERBAND
    assert c.hyperband is not None and (c.hyperband.min_resource, c.hyperband.max_resource) == (10, 100)
    assert c.objective == Objective("validation:auc", ObjectiveType.MAXIMIZE)
    assert c.resource_limits.max_parallel_training_jobs == 5
    assert c.space.names == ("eta", "min_child_weight", "alpha", "max_depth")
    assert c.space.parameters[3] == IntegerParameter("max_depth", 1, 10)
    assert TuningConfig.from_dict(c.to_dict()) == c


def _seed_config() -> dict[str, Any]:
    return dict(json.loads(SEED_EXAMPLE.read_text())[CONFIG])


def _article_layouts() -> dict[str, dict[str, Any]]:
    """The article's sample, read the ways its broken braces allow."""
    inside_limits = _seed_config()
    del inside_limits["StrategyConfig"]
    inside_limits["ResourceLimits"].update({"MinResource": 10, "MaxResource": 100})
    beside_limits = _seed_config()
    del beside_limits["StrategyConfig"]
    beside_limits.update({"MinResource": 10, "MaxResource": 100})
    all_in_ranges = _seed_config()
    ranges = all_in_ranges.pop("ParameterRanges")
    del all_in_ranges["StrategyConfig"]
    all_in_ranges = {"ParameterRanges": {**ranges, **all_in_ranges, "MinResource": 10, "MaxResource": 100}}
    return {
        "inside-ResourceLimits": inside_limits,
        "beside-ResourceLimits": beside_limits,
        "in-ParameterRanges": all_in_ranges,
    }


@pytest.mark.parametrize(
    ("layout", "first_path", "first_home"),
    [
        ("inside-ResourceLimits", f"{CONFIG}.ResourceLimits.MinResource", HYPERBAND),
        ("beside-ResourceLimits", f"{CONFIG}.MinResource", HYPERBAND),
        ("in-ParameterRanges", f"{CONFIG}.ParameterRanges.Strategy", CONFIG),
    ],
)
def test_seed_article_layout_points_to_hyperband_strategy_config(layout: str, first_path: str, first_home: str) -> None:
    request = {CONFIG: _article_layouts()[layout]}
    with pytest.raises(ConfigError) as raised:
        TuningConfig.from_dict(request)
    key = first_path.rsplit(".", 1)[1]
    assert str(raised.value).startswith(f"{first_path}: ")
    assert str(raised.value).endswith(f"`{key}` belongs under `{first_home}`")
    # Moving each key where its message says it belongs gives the request that parses.
    homes = []
    for _ in range(10):
        try:
            parsed = TuningConfig.from_dict(request)
            break
        except ConfigError as error:
            assert error.hint is not None and "belongs under" in error.hint, error
            homes.append(error.hint.split("`")[3])
            request = _move(request, error.path, homes[-1])
    assert HYPERBAND in homes
    assert parsed == TuningConfig.from_dict({CONFIG: _seed_config()})


def _move(request: dict[str, Any], path: str, home: str) -> dict[str, Any]:
    """A copy of ``request`` with the key at ``path`` moved under ``home``."""
    out = copy.deepcopy(request)
    *parents, key = path.split(".")
    source = out
    for part in parents:
        source = source[part]
    target = out
    for part in home.split("."):
        target = target.setdefault(part, {})
    target[key] = source.pop(key)
    return out


# --- every rule, with a failing and a passing value -----------------------------------------------

C, H, L = (
    CONFIG,
    ("HyperParameterTuningJobConfig", "StrategyConfig", "HyperbandStrategyConfig"),
    (CONFIG, "ResourceLimits"),
)
D = ("TrainingJobDefinition",)
MD = (*D, "AlgorithmSpecification", "MetricDefinitions")
CC = (C, "TuningJobCompletionCriteria")
WS = ("WarmStartConfig",)
EX = ("TuningJobExtensions",)
RANGES = (C, "ParameterRanges")

# (id, path to change, bad value, error path, rule fragment, good value)
# fmt: off
RULES: list[tuple[str, tuple[Any, ...], Any, str, str, Any]] = [
    # name
    ("name-leading-hyphen", ("HyperParameterTuningJobName",), "-job", "HyperParameterTuningJobName", "matches", "job"),
    ("name-too-long", ("HyperParameterTuningJobName",), "a" * 33, "HyperParameterTuningJobName", "<= 32", "a" * 32),
    ("name-underscore", ("HyperParameterTuningJobName",), "my_job", "HyperParameterTuningJobName", "matches", "my--job"),
    ("name-empty", ("HyperParameterTuningJobName",), "", "HyperParameterTuningJobName", "1 <= len", DELETE),
    ("name-number", ("HyperParameterTuningJobName",), 7, "HyperParameterTuningJobName", "is a string", "7"),
    # top level
    ("top-unknown-key", ("Foo",), {}, "Foo", "key is one of the keys of the request", DELETE),
    ("autotune", ("Autotune",), {"Mode": "Enabled"}, "Autotune", "Autotune is absent", None),
    ("config-missing", (C,), DELETE, C, "is given", valid_request()[C]),
    ("config-list", (C,), [], C, "is an object", valid_request()[C]),
    # strategy
    ("strategy-unknown", (C, "Strategy"), "Hyper", f"{C}.Strategy", "one of Bayesian, Random, Hyperband, Grid", "Hyperband"),
    ("strategy-case", (C, "Strategy"), "hyperband", f"{C}.Strategy", "Did you mean 'Hyperband'", "Hyperband"),
    ("strategy-missing", (C, "Strategy"), DELETE, f"{C}.Strategy", "Strategy is given", "Hyperband"),
    ("config-unknown-key", (C, "Budget"), 5, f"{C}.Budget", "key is one of", DELETE),
    # objective
    ("objective-missing", (C, "HyperParameterTuningJobObjective"), DELETE, f"{C}.HyperParameterTuningJobObjective", "is given", {"Type": "Minimize", "MetricName": "validation:accuracy"}),
    ("objective-metric-empty", (C, "HyperParameterTuningJobObjective", "MetricName"), "", "MetricName", "1 <= len(MetricName)", "loss"),
    ("objective-type", (C, "HyperParameterTuningJobObjective", "Type"), "Max", "Objective.Type", "Maximize, Minimize", "Minimize"),
    ("objective-type-missing", (C, "HyperParameterTuningJobObjective", "Type"), DELETE, "Objective.Type", "Type is given", "Maximize"),
    ("objective-list", (C, "HyperParameterTuningJobObjective"), ["Maximize"], "Objective", "is an object", {"Type": "Maximize", "MetricName": "m"}),
    # resource limits
    ("parallel-missing", (*L, "MaxParallelTrainingJobs"), DELETE, "MaxParallelTrainingJobs", "is given", 10),
    ("parallel-zero", (*L, "MaxParallelTrainingJobs"), 0, "MaxParallelTrainingJobs", "1 <= MaxParallelTrainingJobs <= 2147483647", 1),
    ("parallel-past-int32", (*L, "MaxParallelTrainingJobs"), 2**31, "MaxParallelTrainingJobs", "<= 2147483647", 100),
    ("parallel-bool", (*L, "MaxParallelTrainingJobs"), True, "MaxParallelTrainingJobs", "is an integer", "5"),
    ("parallel-text", (*L, "MaxParallelTrainingJobs"), "abc", "MaxParallelTrainingJobs", "is an integer", "5.0"),
    ("parallel-fraction", (*L, "MaxParallelTrainingJobs"), 1.5, "MaxParallelTrainingJobs", "is an integer", 2.0),
    ("parallel-nan", (*L, "MaxParallelTrainingJobs"), float("nan"), "MaxParallelTrainingJobs", "is an integer", " 3 "),
    ("jobs-zero", (*L, "MaxNumberOfTrainingJobs"), 0, "MaxNumberOfTrainingJobs", "1 <= MaxNumberOfTrainingJobs", 1),
    ("parallel-amt-quota", (*L, "MaxParallelTrainingJobs"), 101, "MaxParallelTrainingJobs", "<= 100` (AMT's quota)", 100),
    ("jobs-hyperband-amt-quota", (*L, "MaxNumberOfTrainingJobs"), 751, "MaxNumberOfTrainingJobs", "<= 750 with Hyperband` (AMT's quota)", 750),
    ("jobs-missing", (*L, "MaxNumberOfTrainingJobs"), DELETE, "MaxNumberOfTrainingJobs", "only with Grid", "1e2"),
    ("runtime-119", (*L, "MaxRuntimeInSeconds"), 119, "ResourceLimits.MaxRuntimeInSeconds", "120 <= MaxRuntimeInSeconds <= 15768000", 120),
    ("runtime-too-long", (*L, "MaxRuntimeInSeconds"), 15_768_001, "ResourceLimits.MaxRuntimeInSeconds", "<= 15768000", 15_768_000),
    ("limits-list", L, [5], "ResourceLimits", "is an object", {"MaxNumberOfTrainingJobs": 5, "MaxParallelTrainingJobs": 5}),
    ("limits-misplaced-extension", (*L, "MaxCost"), 5, "ResourceLimits.MaxCost", "belongs under `TuningJobExtensions`", DELETE),
    # ranges (the space tests cover each range rule)
    ("ranges-missing", RANGES, DELETE, f"{C}.ParameterRanges", "ParameterRanges is given", {"IntegerParameterRanges": [{"Name": "n", "MinValue": 1, "MaxValue": 2}]}),
    ("range-min-text", (*RANGES, "IntegerParameterRanges", 1, "MinValue"), "x", "IntegerParameterRanges[1].MinValue", "is an integer", "11"),
    ("ranges-unknown-key", (*RANGES, "Strategy"), "Hyperband", "ParameterRanges.Strategy", f"belongs under `{C}`", DELETE),
    # early stopping
    ("early-stopping-auto", (C, "TrainingJobEarlyStoppingType"), "Auto", "TrainingJobEarlyStoppingType", "Off with Hyperband", DELETE),
    ("early-stopping-unknown", (C, "TrainingJobEarlyStoppingType"), "Median", "TrainingJobEarlyStoppingType", "one of Off, Auto", "Off"),
    # hyperband
    ("min-resource-zero", (*H, "MinResource"), 0, f"{HYPERBAND}.MinResource", "1 <= MinResource", 2),
    ("min-resource-text", (*H, "MinResource"), "one", f"{HYPERBAND}.MinResource", "is an integer", "1"),
    ("min-resource-not-below-max", (*H, "MinResource"), 27, f"{HYPERBAND}.MaxResource", "MinResource < MaxResource", 26),
    ("max-resource-too-big", (*H, "MaxResource"), 20_001, f"{HYPERBAND}.MaxResource", "<= 20000", 20_000),
    ("max-resource-float", (*H, "MaxResource"), 27.5, f"{HYPERBAND}.MaxResource", "is an integer", "27.0"),
    ("reduction-factor-1", (*H, "ReductionFactor"), 1, f"{HYPERBAND}.ReductionFactor", "2 <= ReductionFactor", 2),
    ("brackets-zero", (*H, "NumberOfBrackets"), 0, f"{HYPERBAND}.NumberOfBrackets", "1 <= NumberOfBrackets", 4),
    ("brackets-above-rungs", (*H, "NumberOfBrackets"), 5, f"{HYPERBAND}.NumberOfBrackets", "NumberOfBrackets <= 4, the number of rungs", 1),
    ("variant-unknown", (*H, "Variant"), "Pause", f"{HYPERBAND}.Variant", "one of Stopping, Promotion", "Stopping"),
    ("sampler-unknown", (*H, "Sampler"), "TPE", f"{HYPERBAND}.Sampler", "one of Random", DELETE),
    ("resource-metric-undefined", (*H, "ResourceMetricName"), "step", f"{HYPERBAND}.ResourceMetricName", "names a MetricDefinition", "validation:accuracy"),
    ("resource-metric-empty", (*H, "ResourceMetricName"), "", f"{HYPERBAND}.ResourceMetricName", "1 <= len", DELETE),
    ("hyperband-unknown-key", (*H, "Eta"), 3, f"{HYPERBAND}.Eta", "key is one of", DELETE),
    ("strategy-config-unknown-key", (C, "StrategyConfig", "Bayes"), {}, f"{C}.StrategyConfig.Bayes", "HyperbandStrategyConfig", DELETE),
    # random seed
    ("seed-negative", (C, "RandomSeed"), -1, f"{C}.RandomSeed", "0 <= RandomSeed", 0),
    ("seed-fraction", (C, "RandomSeed"), 1.5, f"{C}.RandomSeed", "is an integer", "7"),
    ("seed-bool", (C, "RandomSeed"), False, f"{C}.RandomSeed", "is an integer", DELETE),
    # completion criteria
    ("patience-2", (*CC, "BestObjectiveNotImproving", "MaxNumberOfTrainingJobsNotImproving"), 2, "MaxNumberOfTrainingJobsNotImproving", "3 <= MaxNumberOfTrainingJobsNotImproving", 3),
    ("convergence-yes", (*CC, "ConvergenceDetected", "CompleteOnConvergence"), "Yes", "ConvergenceDetected.CompleteOnConvergence", "one of Enabled, Disabled", "Disabled"),
    ("target-nan", (*CC, "TargetObjectiveMetricValue"), "NaN", "TargetObjectiveMetricValue", "finite number", "0.9"),
    ("target-inf", (*CC, "TargetObjectiveMetricValue"), float("-inf"), "TargetObjectiveMetricValue", "finite number", -1e300),
    ("target-text", (*CC, "TargetObjectiveMetricValue"), "high", "TargetObjectiveMetricValue", "finite number", 1),
    ("criteria-unknown-key", (*CC, "MaxTime"), 5, "TuningJobCompletionCriteria.MaxTime", "key is one of", DELETE),
    ("best-unknown-key", (*CC, "BestObjectiveNotImproving", "Jobs"), 5, "BestObjectiveNotImproving.Jobs", "key is one of", DELETE),
    # metric definitions
    ("metric-name-empty", (*MD, 1, "Name"), "", "MetricDefinitions[1].Name", "1 <= len(Name)", "epoch"),
    ("metric-regex-long", (*MD, 1, "Regex"), "(" + "x" * 499 + ")", "MetricDefinitions[1].Regex", "<= 500", "(" + "x" * 498 + ")"),
    ("metric-regex-broken", (*MD, 1, "Regex"), "epoch=(\\d+", "MetricDefinitions[1].Regex", "compiles", "epoch=(?P<v>\\d+)"),
    ("metric-regex-no-group", (*MD, 1, "Regex"), "epoch=\\d+", "MetricDefinitions[1].Regex", "capturing group", "epoch=(\\d+)"),
    ("metric-duplicate", (*MD, 1, "Name"), "validation:accuracy", "MetricDefinitions[1].Name", "distinct", "epoch"),
    ("metric-unknown-key", (*MD, 1, "Unit"), "count", "MetricDefinitions[1].Unit", "key is one of", DELETE),
    ("metrics-not-list", MD, {"Name": "x"}, "MetricDefinitions", "is a list", DELETE),
    ("algorithm-list", (*D, "AlgorithmSpecification"), [], "AlgorithmSpecification", "is an object", {"TrainingImage": "img"}),
    # static hyperparameters
    ("static-nested", (*D, "StaticHyperParameters", "opt"), {"lr": 1}, "StaticHyperParameters.opt", "a string, number or boolean", '{"lr": 1}'),
    ("static-list", (*D, "StaticHyperParameters", "layers"), [1, 2], "StaticHyperParameters.layers", "a string, number or boolean", 2),
    ("static-nan", (*D, "StaticHyperParameters", "x"), float("nan"), "StaticHyperParameters.x", "finite number", False),
    ("static-value-long", (*D, "StaticHyperParameters", "v"), "x" * 257, "StaticHyperParameters.v", "<= 256", "x" * 256),
    ("static-key-long", (*D, "StaticHyperParameters", "k" * 257), "1", "StaticHyperParameters." + "k" * 257, "<= 256", DELETE),
    ("static-tuned", (*D, "StaticHyperParameters", "units"), "5", "StaticHyperParameters.units", "not also static", DELETE),
    ("static-too-many", (*D, "StaticHyperParameters"), {f"h{i}": "1" for i in range(96)}, "StaticHyperParameters", "<= 100", {f"h{i}": "1" for i in range(95)}),
    ("static-not-object", (*D, "StaticHyperParameters"), "epochs=3", "StaticHyperParameters", "is an object", {}),
    # training job definition
    ("definition-unknown-key", (*D, "Hyperparameters"), {}, "TrainingJobDefinition.Hyperparameters", "StaticHyperParameters", DELETE),
    ("stopping-runtime-zero", (*D, "StoppingCondition", "MaxRuntimeInSeconds"), 0, "StoppingCondition.MaxRuntimeInSeconds", "1 <= MaxRuntimeInSeconds", 1),
    ("definition-not-object", D, "train.py", "TrainingJobDefinition", "is an object", DELETE),
    # warm start
    ("warm-no-parents", (*WS, "ParentHyperParameterTuningJobs"), [], "ParentHyperParameterTuningJobs", "1 <= len(ParentHyperParameterTuningJobs) <= 5", [{"HyperParameterTuningJobName": "p"}]),
    ("warm-six-parents", (*WS, "ParentHyperParameterTuningJobs"), [{"HyperParameterTuningJobName": f"p{i}"} for i in range(6)], "ParentHyperParameterTuningJobs", "<= 5", [{"HyperParameterTuningJobName": f"p{i}"} for i in range(5)]),
    ("warm-bad-name", (*WS, "ParentHyperParameterTuningJobs", 0, "HyperParameterTuningJobName"), "bad_name", "ParentHyperParameterTuningJobs[0].HyperParameterTuningJobName", "matches", "good-name"),
    ("warm-duplicate", (*WS, "ParentHyperParameterTuningJobs"), [{"HyperParameterTuningJobName": "p"}] * 2, "ParentHyperParameterTuningJobs[1].HyperParameterTuningJobName", "distinct", [{"HyperParameterTuningJobName": "p"}, {"HyperParameterTuningJobName": "q"}]),
    ("warm-type", (*WS, "WarmStartType"), "Identical", "WarmStartConfig.WarmStartType", "IdenticalDataAndAlgorithm, TransferLearning", "TransferLearning"),
    ("warm-type-missing", (*WS, "WarmStartType"), DELETE, "WarmStartConfig.WarmStartType", "is given", "IdenticalDataAndAlgorithm"),
    # extensions
    ("max-failed-negative", (*EX, "MaxFailedTrainingJobs"), -1, "TuningJobExtensions.MaxFailedTrainingJobs", "0 <= MaxFailedTrainingJobs", 0),
    ("retries-negative", (*EX, "MaxRetriesPerTrial"), -1, "TuningJobExtensions.MaxRetriesPerTrial", "0 <= MaxRetriesPerTrial", 0),
    ("billable-zero", (*EX, "MaxBillableSeconds"), 0, "TuningJobExtensions.MaxBillableSeconds", "0.0 < MaxBillableSeconds", 0.5),
    ("cost-text", (*EX, "MaxCost"), "ten", "TuningJobExtensions.MaxCost", "finite number", "10"),
    ("extensions-unknown-key", (*EX, "MaxTrials"), 5, "TuningJobExtensions.MaxTrials", "key is one of", DELETE),
    # tags
    ("tags-object", ("Tags",), {"team": "ml"}, "Tags", "is a list", []),
    ("tag-value-missing", ("Tags", 0, "Value"), DELETE, "Tags[0].Value", "is given", ""),
    ("tag-key-long", ("Tags", 0, "Key"), "k" * 129, "Tags[0].Key", "<= 128", "k" * 128),
    # keys in the wrong place
    ("misplaced-max-resource", (C, "MaxResource"), 27, f"{C}.MaxResource", f"belongs under `{HYPERBAND}`", DELETE),
    ("misplaced-min-resource", (*L, "MinResource"), 1, "ResourceLimits.MinResource", f"belongs under `{HYPERBAND}`", DELETE),
    ("misplaced-strategy", ("Strategy",), "Hyperband", "Strategy", f"belongs under `{C}`", DELETE),
    ("misplaced-static", (C, "StaticHyperParameters"), {}, f"{C}.StaticHyperParameters", "belongs under `TrainingJobDefinition`", DELETE),
]
# fmt: on


@pytest.mark.parametrize(("path", "bad", "where", "rule", "good"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(path: tuple[Any, ...], bad: Any, where: str, rule: str, good: Any) -> None:
    message = error_of(changed(valid_request(), path, bad))
    location, _, rest = message.partition(": ")
    assert location.endswith(where), message
    assert rule in message, message
    assert "must hold, but got" in rest
    parsed = TuningConfig.from_dict(changed(valid_request(), path, good))
    assert TuningConfig.from_dict(parsed.to_dict()) == parsed


def test_definition_keeps_unvalidated_keys_verbatim() -> None:
    request = changed(valid_request(), (*D, "VpcConfig"), {"Subnets": ["subnet-1"], "Anything": [1, {"x": None}]})
    job = TuningConfig.from_dict(request).training_job_definition
    assert job is not None and job.raw["VpcConfig"] == {"Subnets": ["subnet-1"], "Anything": [1, {"x": None}]}


def test_unknown_key_message_lists_the_allowed_keys() -> None:
    message = error_of(changed(valid_request(), (*L, "MaxJobs"), 3))
    assert "MaxNumberOfTrainingJobs, MaxParallelTrainingJobs, MaxRuntimeInSeconds" in message


def test_static_hyperparameters_accept_numbers_and_booleans_as_strings() -> None:
    request = changed(
        valid_request(),
        (*D, "StaticHyperParameters"),
        {"sagemaker_program": "train.py", "epochs": 27, "decay": 0.5, "shuffle": True},
    )
    job = TuningConfig.from_dict(request).training_job_definition
    assert job is not None
    assert dict(job.static_hyperparameters) == {
        "decay": "0.5",
        "epochs": "27",
        "sagemaker_program": "train.py",
        "shuffle": "true",
    }
    assert job.raw["StaticHyperParameters"]["epochs"] == "27"


def test_null_optional_fields_count_as_absent() -> None:
    request = changed(valid_request(), (C, "RandomSeed"), None)
    request["WarmStartConfig"] = None
    c = TuningConfig.from_dict(request)
    assert c.random_seed is None and c.warm_start is None


# --- strategies -----------------------------------------------------------------------------------


def _grid_request(jobs: Any = DELETE) -> dict[str, Any]:
    request = valid_request()
    config = request[CONFIG]
    config["Strategy"] = "Grid"
    del config["StrategyConfig"]
    config["ParameterRanges"] = {
        "CategoricalParameterRanges": [
            {"Name": "opt", "Values": ["adam", "sgd"]},
            {"Name": "act", "Values": ["relu", "tanh", "gelu"]},
        ]
    }
    return changed(request, (*L, "MaxNumberOfTrainingJobs"), jobs)


def test_grid_defaults_the_job_count_to_the_grid_size() -> None:
    c = TuningConfig.from_dict(_grid_request())
    assert c.strategy is Strategy.GRID and c.hyperband is None
    assert c.resource_limits.max_number_of_training_jobs == 6
    assert TuningConfig.from_dict(_grid_request(4)).resource_limits.max_number_of_training_jobs == 4
    assert TuningConfig.from_dict(c.to_dict()) == c


def test_grid_takes_categorical_ranges_only() -> None:
    request = _grid_request()
    request[CONFIG]["ParameterRanges"]["IntegerParameterRanges"] = [{"Name": "n", "MinValue": "1", "MaxValue": "3"}]
    message = error_of(request)
    assert message.startswith(f"{CONFIG}.ParameterRanges: ") and "CategoricalParameterRanges only" in message


@pytest.mark.parametrize("strategy", ["Random", "Bayesian", "Grid"])
@pytest.mark.parametrize("strategy_config", [{}, {"HyperbandStrategyConfig": {"MaxResource": 9}}])
def test_strategy_config_only_with_hyperband(strategy: str, strategy_config: dict[str, Any]) -> None:
    request = _grid_request() if strategy == "Grid" else changed(valid_request(), (C, "Strategy"), strategy)
    if strategy != "Grid":
        del request[CONFIG]["StrategyConfig"]
    assert TuningConfig.from_dict(request).hyperband is None
    request[CONFIG]["StrategyConfig"] = strategy_config
    message = error_of(request)
    assert message.startswith(f"{CONFIG}.StrategyConfig: ") and "only when Strategy is Hyperband" in message


def test_amt_quotas_bind_only_when_enforced_and_validate_amt_names_them() -> None:
    request = copy.deepcopy(valid_request())
    request[CONFIG]["ResourceLimits"].update(MaxNumberOfTrainingJobs=10_000, MaxParallelTrainingJobs=200)
    message = error_of(request)  # valid_request enforces AMT's quotas
    assert message.startswith(f"{CONFIG}.ResourceLimits.MaxNumberOfTrainingJobs: ") and "(AMT's quota)" in message
    del request["TuningJobExtensions"]["EnforceAmtQuotas"]
    config = TuningConfig.from_dict(request)
    assert (config.resource_limits.max_number_of_training_jobs, config.resource_limits.max_parallel_training_jobs) \
        == (10_000, 200)
    findings = [(f.path.rpartition(".")[2], f.found) for f in config.amt_findings()]
    assert findings == [("MaxNumberOfTrainingJobs", 10_000), ("MaxParallelTrainingJobs", 200),
                        ("NumberOfBrackets", 2), ("Variant", "Promotion"),  # ReductionFactor 3 is the default
                        ("ResourceMetricName", "epoch"), ("MaxFailedTrainingJobs", 3), ("MaxRetriesPerTrial", 1),
                        ("MaxBillableSeconds", 36000), ("MaxCost", 25.5)]
    assert all("must hold, but got" in str(f) for f in config.amt_findings())


def test_a_plain_amt_request_has_no_amt_findings() -> None:
    request = changed(valid_request(), (C, "StrategyConfig", "HyperbandStrategyConfig"),
                      {"MinResource": 1, "MaxResource": 27})
    del request["TuningJobExtensions"]
    assert TuningConfig.from_dict(request).amt_findings() == ()


def test_non_hyperband_strategies_have_no_750_cap_and_allow_auto_early_stopping() -> None:
    request = changed(valid_request(), (C, "Strategy"), "Bayesian")
    del request[CONFIG]["StrategyConfig"]
    request[CONFIG]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = 751
    request[CONFIG]["TrainingJobEarlyStoppingType"] = "Auto"
    c = TuningConfig.from_dict(request)
    assert c.resource_limits.max_number_of_training_jobs == 751 and c.early_stopping_type is EarlyStoppingType.AUTO
    assert c.max_resource == 27  # from the epochs static hyperparameter


# --- MaxResource inference ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("static", "expected"),
    [
        ({"epochs": "12"}, 12),
        ({"num_epochs": "7", "epochs": "12"}, 12),  # epochs comes first
        ({"n-epochs": 5, "num_epochs": "7"}, 5),
        ({"numepochs": "8.0"}, 8),
        ({"n_epochs": "9"}, 9),
    ],
)
def test_max_resource_is_inferred_from_epochs(static: dict[str, Any], expected: int) -> None:
    request = changed(valid_request(), (*H, "MaxResource"), DELETE)
    request[CONFIG]["StrategyConfig"]["HyperbandStrategyConfig"]["NumberOfBrackets"] = 1
    request["TrainingJobDefinition"]["StaticHyperParameters"] = {"sagemaker_program": "train.py", **static}
    c = TuningConfig.from_dict(request)
    assert c.hyperband is not None and c.hyperband.max_resource == expected == c.max_resource
    assert TuningConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    ("static", "fragment"),
    [
        (
            {"sagemaker_program": "train.py"},
            f"{HYPERBAND}.MaxResource: `MaxResource is given, or a static hyperparameter among epochs",
        ),
        ({"epochs": "ten"}, "TrainingJobDefinition.StaticHyperParameters.epochs: `epochs is an integer`"),
        ({"epochs": "0"}, "`1 <= epochs <= 20000`"),
    ],
)
def test_max_resource_inference_failures(static: dict[str, Any], fragment: str) -> None:
    request = changed(valid_request(), (*H, "MaxResource"), DELETE)
    request["TrainingJobDefinition"]["StaticHyperParameters"] = static
    assert fragment in error_of(request)


def test_max_resource_without_definition_is_required() -> None:
    request = changed(valid_request(), (*H, "MaxResource"), DELETE)
    del request["TrainingJobDefinition"]
    del request[CONFIG]["StrategyConfig"]["HyperbandStrategyConfig"]["ResourceMetricName"]
    assert error_of(request).startswith(f"{HYPERBAND}.MaxResource: ")


def test_max_resource_property_is_none_without_a_source() -> None:
    request = changed(valid_request(), (C, "Strategy"), "Random")
    del request[CONFIG]["StrategyConfig"]
    del request["TrainingJobDefinition"]
    assert TuningConfig.from_dict(request).max_resource is None


# --- TrainingJobDefinitions -----------------------------------------------------------------------


def _as_definitions(request: dict[str, Any], count: int = 1) -> dict[str, Any]:
    out = copy.deepcopy(request)
    definition = out.pop("TrainingJobDefinition")
    out["TrainingJobDefinitions"] = [copy.deepcopy(definition) for _ in range(count)]
    return out


def test_one_definition_in_a_list_is_accepted_and_written_back_singular() -> None:
    c = TuningConfig.from_dict(_as_definitions(valid_request()))
    assert c == TuningConfig.from_dict(valid_request())
    assert "TrainingJobDefinition" in c.to_dict() and "TrainingJobDefinitions" not in c.to_dict()


@pytest.mark.parametrize("count", [0, 2])
def test_only_one_definition_is_supported(count: int) -> None:
    message = error_of(_as_definitions(valid_request(), count))
    assert message.startswith("TrainingJobDefinitions: `len(TrainingJobDefinitions) == 1` must hold")
    assert "Only one training job definition is supported" in message


def test_definition_and_definitions_are_exclusive() -> None:
    request = _as_definitions(valid_request())
    request["TrainingJobDefinition"] = valid_request()["TrainingJobDefinition"]
    assert "not both given" in error_of(request)


def test_objective_and_ranges_may_come_from_the_definition() -> None:
    request = _as_definitions(valid_request())
    config = request[CONFIG]
    definition = request["TrainingJobDefinitions"][0]
    definition["DefinitionName"] = "mlp"
    definition["TuningObjective"] = config.pop("HyperParameterTuningJobObjective")
    definition["HyperParameterRanges"] = config.pop("ParameterRanges")
    c = TuningConfig.from_dict(request)
    plain = TuningConfig.from_dict(valid_request())
    assert (c.objective, c.space) == (plain.objective, plain.space)
    assert c.training_job_definition is not None and "TuningObjective" not in c.training_job_definition.raw
    assert TuningConfig.from_dict(c.to_dict()) == c
    definition["HyperParameterRanges"]["IntegerParameterRanges"][0]["MinValue"] = "x"
    assert error_of(request).startswith(
        "TrainingJobDefinitions[0].HyperParameterRanges.IntegerParameterRanges[0].MinValue"
    )


def test_objective_given_twice_is_an_error() -> None:
    request = valid_request()
    request["TrainingJobDefinition"]["TuningObjective"] = {"Type": "Maximize", "MetricName": "x"}
    message = error_of(request)
    assert message.startswith("TrainingJobDefinition.TuningObjective: `HyperParameterTuningJobObjective is given once`")


# --- backend requirements -------------------------------------------------------------------------


def _definition(request: dict[str, Any]) -> TrainingJobDefinition:
    job = TuningConfig.from_dict(request).training_job_definition
    assert job is not None
    return job


def test_complete_definition_meets_both_backends() -> None:
    job = _definition(valid_request())
    job.require_sagemaker_fields(objective_metric="validation:accuracy")
    job.require_local_fields("validation:accuracy", resource_metric="epoch")


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (
            (*D, "AlgorithmSpecification", "TrainingImage"),
            DELETE,
            "TrainingJobDefinition.AlgorithmSpecification.TrainingImage",
        ),
        ((*D, "RoleArn"), DELETE, "TrainingJobDefinition.RoleArn"),
        ((*D, "OutputDataConfig"), {}, "TrainingJobDefinition.OutputDataConfig.S3OutputPath"),
        ((*D, "ResourceConfig"), {"InstanceCount": 1}, "TrainingJobDefinition.ResourceConfig.InstanceType"),
        ((*D, "StoppingCondition"), DELETE, "TrainingJobDefinition.StoppingCondition"),
        ((*D, "ResourceConfig"), "ml.g5.xlarge", "TrainingJobDefinition.ResourceConfig: `ResourceConfig is an object"),
    ],
)
def test_sagemaker_fields(path: tuple[Any, ...], value: Any, where: str) -> None:
    job = _definition(changed(valid_request(), path, value))
    with pytest.raises(ConfigError, match=f"^{where.replace('.', '[.]')}"):
        job.require_sagemaker_fields()


def test_sagemaker_alternatives_and_objective_metric() -> None:
    request = changed(valid_request(), (*D, "AlgorithmSpecification", "TrainingImage"), DELETE)
    request["TrainingJobDefinition"]["AlgorithmSpecification"]["AlgorithmName"] = "my-algorithm"
    del request["TrainingJobDefinition"]["ResourceConfig"]
    request["TrainingJobDefinition"]["HyperParameterTuningResourceConfig"] = {
        "InstanceConfigs": [{"InstanceType": "ml.m5.large"}]
    }
    job = _definition(request)
    job.require_sagemaker_fields()
    with pytest.raises(ConfigError, match="a MetricDefinition is named 'loss'"):
        job.require_sagemaker_fields(objective_metric="loss")


def test_local_fields() -> None:
    job = _definition(valid_request())
    with pytest.raises(ConfigError, match="a MetricDefinition is named 'loss'"):
        job.require_local_fields("loss")
    with pytest.raises(ConfigError, match="a MetricDefinition is named 'step'"):
        job.require_local_fields("validation:accuracy", resource_metric="step")
    no_program = _definition(changed(valid_request(), (*D, "StaticHyperParameters", "sagemaker_program"), DELETE))
    with pytest.raises(ConfigError, match=r"StaticHyperParameters\.sagemaker_program"):
        no_program.require_local_fields("validation:accuracy")


def test_definition_equality_and_hash_follow_the_json() -> None:
    a = _definition(valid_request())
    b = _definition(copy.deepcopy(valid_request()))
    assert a == b and hash(a) == hash(b) and a is not b
    c = _definition(changed(valid_request(), (*D, "RoleArn"), "arn:other"))
    assert a != c
    copy_ = a.to_dict()
    copy_["RoleArn"] = "changed"
    assert a.raw["RoleArn"] != "changed"


def test_definition_built_directly_writes_its_fields_into_raw() -> None:
    job = TrainingJobDefinition({"b": "2", "a": "1"}, (MetricDefinition("loss", "loss=(.*)"),), 60, {"RoleArn": "r"})
    assert list(job.static_hyperparameters) == ["a", "b"]
    assert job.to_dict() == {
        "RoleArn": "r",
        "StaticHyperParameters": {"a": "1", "b": "2"},
        "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "loss", "Regex": "loss=(.*)"}]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    assert TrainingJobDefinition.from_dict(job.to_dict()) == job


# --- JSON text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            '{"HyperParameterTuningJobConfig": ',
            "<json>: `the text is valid JSON` must hold, but got Expecting value at line 1",
        ),
        ('{\n  "a": 1,\n}', "line 3, column 1"),
        (
            '{"HyperParameterTuningJobConfig": {"RandomSeed": NaN}}',
            "<json>: `numbers are finite` must hold, but got NaN",
        ),
        ("[1, 2]", "<request>: `<request> is an object"),
        ("[" * 100_000, "<json>"),
    ],
)
def test_from_json_errors(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        TuningConfig.from_json(text)
    assert fragment in str(raised.value)


def test_config_errors_are_value_errors_with_a_path() -> None:
    with pytest.raises(ValueError) as raised:
        TuningConfig.from_dict(changed(valid_request(), (*L, "MaxParallelTrainingJobs"), 0))
    error = raised.value
    assert isinstance(error, ConfigError)
    assert error.path == f"{CONFIG}.ResourceLimits.MaxParallelTrainingJobs" and error.found == 0


def test_tuning_config_is_frozen_and_checks_the_hyperband_invariant() -> None:
    c = TuningConfig.from_dict(valid_request())
    with pytest.raises(AttributeError):
        c.name = "other"  # type: ignore[misc]
    with pytest.raises(ConfigError, match="exactly when Strategy is Hyperband"):
        TuningConfig(**{**c.__dict__, "hyperband": None})
    direct = TuningConfig(
        name=None,
        strategy=Strategy.RANDOM,
        objective=Objective("loss", ObjectiveType.MINIMIZE),
        resource_limits=ResourceLimits(10, 2, None),
        space=c.space,
        hyperband=None,
        completion=CompletionCriteria(),
        random_seed=None,
        early_stopping_type=EarlyStoppingType.OFF,
        training_job_definition=None,
        warm_start=None,
        extensions=Extensions(),
    )
    assert TuningConfig.from_dict(direct.to_dict()) == direct


# --- fuzzing --------------------------------------------------------------------------------------


def _keys_of(value: Any, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(key)
            _keys_of(item, found)
    elif isinstance(value, list):
        for item in value:
            _keys_of(item, found)
    return found


KNOWN_KEYS = sorted(_keys_of(valid_request(), {"TrainingJobDefinitions", "Autotune", "MinResource", "Mode"}))
TRICKY_TEXT = [
    "5",
    "5.0",
    "-1",
    "0",
    "1e400",
    "nan",
    "Infinity",
    "Hyperband",
    "Grid",
    "Auto",
    "Off",
    "",
    " 7 ",
    "1_000",
    "٣",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.sampled_from(TRICKY_TEXT)
    | st.text(max_size=12)
)
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


VALID_PATHS = _paths(valid_request())


def _parses_or_config_error(request: Any) -> None:
    try:
        c = TuningConfig.from_dict(request)
    except ConfigError:
        return
    assert TuningConfig.from_dict(c.to_dict()) == c
    assert TuningConfig.from_json(json.dumps(c.to_dict())) == c


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, json_values, max_size=6) | json_values)
def test_arbitrary_json_parses_or_raises_config_error(request: Any) -> None:
    _parses_or_config_error(request)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(VALID_PATHS), st.just(DELETE) | json_values), min_size=1, max_size=3))
def test_mutated_valid_request_parses_or_raises_config_error(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    request = valid_request()
    for path, value in mutations:
        try:
            request = changed(request, path, value)
        except (KeyError, IndexError, TypeError, AttributeError):  # an earlier mutation replaced the parent
            continue
    _parses_or_config_error(request)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(VALID_PATHS), st.sampled_from(TRICKY_TEXT + [True, 0, -5, 1.5, math.inf, [], {}]))
def test_single_tricky_value_parses_or_raises_config_error(path: tuple[Any, ...], value: Any) -> None:
    _parses_or_config_error(changed(valid_request(), path, value))


def test_grid_space_from_a_parsed_request_enumerates() -> None:
    c = TuningConfig.from_dict(_grid_request())
    assert next(iter(c.space.grid())) == {"opt": "adam", "act": "relu"}
    assert c.space.parameters[0] == CategoricalParameter("opt", ("adam", "sgd"))


def test_a_huge_grid_needs_an_explicit_job_count() -> None:
    request = _grid_request()
    values = [str(i) for i in range(30)]
    request[CONFIG]["ParameterRanges"] = {
        "CategoricalParameterRanges": [{"Name": f"c{i}", "Values": values} for i in range(7)]
    }
    assert "MaxNumberOfTrainingJobs is given when the grid has more than" in error_of(request)
    request[CONFIG]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = 100
    assert TuningConfig.from_dict(request).resource_limits.max_number_of_training_jobs == 100
