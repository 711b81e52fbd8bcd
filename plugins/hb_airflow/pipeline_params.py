"""The tuning pipeline's request side (:mod:`hb_airflow.pipeline`): its DAG ``params`` and the ``configure`` rule.

:func:`tuning_params` derives the run's trigger-form params from the request;
:func:`configure_request` (pure) applies a run's params, channels and warm
start to it. Split from :mod:`hb_airflow.pipeline`, which builds the task group
and re-exports both.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Param

from hb_airflow.spec import BACKENDS
from hb_core.config import TuningConfig, resource_hyperparameter
from hb_core.errors import ConfigError
from hb_core.request import load_request

__all__ = ["configure_request", "tuning_params"]

#: The ``params`` the pipeline reads (all optional: a missing one keeps the request's value).
BACKEND, INSTANCE_TYPE, MAX_PARALLEL, MAX_JOBS = "backend", "instance_type", "max_parallel_jobs", "max_training_jobs"
MAX_RESOURCE, OBJECTIVE_METRIC, OBJECTIVE_TYPE = "max_resource", "objective_metric", "objective_type"
APPROVAL_THRESHOLD, WARM_START_TYPE = "approval_threshold", "warm_start_type"
WARM_START_TYPES = ("TransferLearning", "IdenticalDataAndAlgorithm")


def _definition(request: Mapping[str, Any]) -> dict[str, Any]:
    return dict(request.get("TrainingJobDefinition") or {})


def tuning_params(
    tuning_request: Mapping[str, Any] | str | os.PathLike[str],
    *,
    backend: str = "sagemaker",
    approval_threshold: float | None = None,
    warm_start: bool = False,
) -> dict[str, Param]:
    """DAG ``params`` (with JSON schemas, so the trigger form validates them) whose defaults come from the request.

    :param tuning_request: the ``CreateHyperParameterTuningJob`` body (a dict or a JSON file's path).
    :param backend: default of the ``backend`` param (``sagemaker`` or ``local``).
    :param approval_threshold: default of the ``approval_threshold`` param (None: always pending).
    :param warm_start: add the ``warm_start_type`` param.

    The params: ``backend``, ``instance_type``, ``max_parallel_jobs``, ``max_training_jobs``,
    ``objective_metric``, ``objective_type``, ``approval_threshold``, ``max_resource`` (when the
    request has a MaxResource) and ``warm_start_type``; :func:`tuning_pipeline`'s ``configure``
    task applies them to the request.
    """
    request = load_request(tuning_request)
    config = TuningConfig.from_dict(request)
    if backend not in BACKENDS:
        raise ConfigError("backend", f"`backend in {BACKENDS}` must hold", backend)
    definition = _definition(request)
    metrics = [m["Name"] for m in definition.get("AlgorithmSpecification", {}).get("MetricDefinitions") or []]
    objective = config.objective
    limits = config.resource_limits
    params = {
        BACKEND: Param(backend, type="string", enum=list(BACKENDS), title="Backend",
                       description="Where trials run: SageMaker training jobs, or local processes on the worker."),
        INSTANCE_TYPE: Param(definition.get("ResourceConfig", {}).get("InstanceType", "ml.m5.large"), type="string",
                             pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$", title="Instance type",
                             description="ResourceConfig.InstanceType of every training job (SageMaker backend)."),
        MAX_PARALLEL: Param(limits.max_parallel_training_jobs, type="integer", minimum=1,
                            title="Max parallel jobs", description="ResourceLimits.MaxParallelTrainingJobs."),
        MAX_JOBS: Param(limits.max_number_of_training_jobs or 10, type="integer", minimum=1,
                        title="Budget (training jobs)",
                        description="ResourceLimits.MaxNumberOfTrainingJobs: how many configurations to try."),
        OBJECTIVE_METRIC: Param(objective.metric_name, type="string", enum=sorted(set(metrics) | {objective.metric_name}),
                                title="Target metric", description="The objective metric (one of MetricDefinitions)."),
        OBJECTIVE_TYPE: Param(objective.type.value, type="string", enum=["Maximize", "Minimize"],
                              title="Objective type"),
        APPROVAL_THRESHOLD: Param(approval_threshold, type=["number", "null"], title="Approval threshold",
                                  description="A registered model meeting this held-out metric is Approved, "
                                              "else PendingManualApproval (null: always pending)."),
    }
    if config.max_resource is not None:
        params[MAX_RESOURCE] = Param(config.max_resource, type="integer", minimum=1, maximum=20_000,
                                     title="MaxResource", description="The budget of one training job (epochs); "
                                     "the best configuration is retrained with it.")
    if warm_start:
        params[WARM_START_TYPE] = Param(WARM_START_TYPES[0], type="string", enum=list(WARM_START_TYPES),
                                        title="Warm start type", description="TransferLearning when the data "
                                        "changed since the parent tuning job, else IdenticalDataAndAlgorithm.")
    return params


def _set_channels(definition: dict[str, Any], channels: Mapping[str, Any]) -> None:
    """Point each named channel's S3DataSource at its URI (a local path for the local backend)."""
    entries = {c.get("ChannelName"): c for c in definition.get("InputDataConfig") or []}
    for name, uri in channels.items():
        if uri is None:
            continue
        entry = copy.deepcopy(entries.get(name) or {"ChannelName": name})
        source = entry.setdefault("DataSource", {}).setdefault("S3DataSource", {})
        source.setdefault("S3DataType", "S3Prefix")
        source.setdefault("S3DataDistributionType", "FullyReplicated")
        source["S3Uri"] = str(uri)
        entries[name] = entry
    definition["InputDataConfig"] = list(entries.values())


def configure_request(
    base: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    channels: Mapping[str, Any] | None = None,
    retrain_channels: Mapping[str, Any] | None = None,
    static_hyperparameters: Mapping[str, Any] | None = None,
    parent: str | None = None,
) -> dict[str, Any]:
    """The run's tuning request and what the retraining job needs; raises ConfigError for a bad result.

    Pure: ``params`` are the run's DAG params (missing or null ones keep the request's values),
    ``parent`` the warm-start parent tuning job.
    """
    request = copy.deepcopy(dict(base))
    job = request.setdefault("HyperParameterTuningJobConfig", {})
    limits = job.setdefault("ResourceLimits", {})
    definition = request.setdefault("TrainingJobDefinition", {})
    static = definition.setdefault("StaticHyperParameters", {})
    given = {k: v for k, v in params.items() if v is not None}
    if MAX_JOBS in given:
        limits["MaxNumberOfTrainingJobs"] = int(given[MAX_JOBS])
    if MAX_PARALLEL in given:
        limits["MaxParallelTrainingJobs"] = int(given[MAX_PARALLEL])
    if OBJECTIVE_METRIC in given or OBJECTIVE_TYPE in given:
        objective = job.setdefault("HyperParameterTuningJobObjective", {})
        objective["MetricName"] = given.get(OBJECTIVE_METRIC, objective.get("MetricName"))
        objective["Type"] = given.get(OBJECTIVE_TYPE, objective.get("Type"))
    resource_key = resource_hyperparameter(static)
    if MAX_RESOURCE in given:
        resource = int(given[MAX_RESOURCE])
        hyperband = (job.get("StrategyConfig") or {}).get("HyperbandStrategyConfig")
        if hyperband is not None:
            hyperband["MaxResource"] = resource
        static[resource_key] = str(resource)
    if INSTANCE_TYPE in given:
        definition.setdefault("ResourceConfig", {})["InstanceType"] = str(given[INSTANCE_TYPE])
    for key, value in (static_hyperparameters or {}).items():
        if value is not None:
            static[key] = str(value)
    retrain = copy.deepcopy(definition)
    if channels:
        _set_channels(definition, channels)
    _set_channels(retrain, retrain_channels if retrain_channels is not None else (channels or {}))
    if parent:
        kind = str(given.get(WARM_START_TYPE, WARM_START_TYPES[0]))
        request["WarmStartConfig"] = {"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": parent}],
                                      "WarmStartType": kind}
    config = TuningConfig.from_dict(request)
    retrain_static = retrain.get("StaticHyperParameters", {})
    return {
        "tuning_request": request,
        "retrain": {
            "static": {key: retrain_static.get(key) for key in {resource_key, *(static_hyperparameters or {})}},
            "channels": {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                         for c in retrain.get("InputDataConfig") or []},
            "instance_type": (retrain.get("ResourceConfig") or {}).get("InstanceType"),
        },
        "max_resource": config.max_resource,
        "s3_output_path": (definition.get("OutputDataConfig") or {}).get("S3OutputPath"),
        "warm_start_parent": parent,
    }
