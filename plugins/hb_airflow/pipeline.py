"""A tuning pipeline as one task group: configure -> tune -> retrain -> evaluate -> compare -> register -> summary.

:func:`tuning_pipeline` builds it from a ``CreateHyperParameterTuningJob``
request and one callable, so a DAG author writes a data-preparation task and
calls the factory instead of copying 200 lines:

- **configure** applies the DAG run's ``params`` (:func:`tuning_params`: backend,
  instance type, max parallel jobs, budget, MaxResource, objective) and the data
  channels to the request, adds a ``WarmStartConfig`` naming the previous run's
  tuning job when ``warm_start`` is set, and validates the result.
- **tune**: :class:`~hb_airflow.operators.HyperbandTuningOperator`.
- **retrain**: :class:`~hb_airflow.trial.SageMakerTrialOperator` runs the best
  hyperparameters at MaxResource on ``retrain_channels`` (e.g. train +
  validation).
- **evaluate** fetches the model (``model.tar.gz`` from S3, or the local model
  directory) and calls ``evaluate(model_dir) -> {metric: value}`` on held-out data.
- **compare** and **register**: the SageMaker Model Registry
  (:mod:`hb_airflow.registry`): a new version only when it beats the approved
  one; ``Approved`` when it meets the approval threshold, else
  ``PendingManualApproval``. A skipped registration shows as a skipped task.
- **summary** records this run's tuning job in an Airflow Variable, so the next
  run can warm-start from it, and returns what happened.

Task ids are not prefixed with the group id (``tune``, ``retrain``, ...), so one
pipeline per DAG: ``SageMakerTrialOperator`` names its tuning job after its task
id, and a group prefix's ``.`` is not allowed in a SageMaker job name.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException
from airflow.sdk import TaskGroup, TriggerRule, Variable, task

from hb_airflow.artifacts import local_model_dir, publish_model, put_json, stage_data
from hb_airflow.operators import HyperbandTuningOperator
from hb_airflow.pipeline_params import (  # re-exported: the request side of the pipeline
    APPROVAL_THRESHOLD,
    BACKEND,
    _definition,
    _set_channels,
    configure_request,
    tuning_params,
)
from hb_airflow.registry import ModelRegistry, RegistrationDecision, decide
from hb_airflow.spec import BACKENDS, default_state_uri
from hb_airflow.trial import SageMakerTrialOperator
from hb_core.config import TuningConfig, resource_hyperparameter
from hb_core.errors import ConfigError
from hb_core.request import load_request  # re-exported: the DAGs read their requests through it

__all__ = ["configure_request", "load_request", "stage_data", "tuning_params", "tuning_pipeline"]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- the task group


def tuning_pipeline(
    tuning_request: Mapping[str, Any] | str | os.PathLike[str],
    *,
    evaluate: Callable[[str], Mapping[str, float]],
    evaluation_metric: str,
    greater_is_better: bool = True,
    model_package_group: str | None = None,
    approval_threshold: float | None = None,
    min_improvement: float = 0.0,
    backend: str = "sagemaker",
    channels: Mapping[str, Any] | None = None,
    retrain_channels: Mapping[str, Any] | None = None,
    static_hyperparameters: Mapping[str, Any] | None = None,
    warm_start: bool = False,
    state_variable: str | None = None,
    inference_image: str | None = None,
    content_types: tuple[str, ...] = ("application/json",),
    response_types: tuple[str, ...] = ("application/json",),
    model_asset: Any = None,
    aws_conn_id: str | None = "aws_default",
    registry_conn_id: str | None = None,
    region_name: str | None = None,
    base_dir: str | None = None,
    poll_interval: float = 30.0,
    deferrable: bool = True,
    group_id: str = "hyperband",
) -> TaskGroup:
    """Build the pipeline's task group inside the current DAG (module docstring).

    :param tuning_request: the ``CreateHyperParameterTuningJob`` body (a dict or a JSON file's path;
        a file's folder is the base of relative paths such as ``sagemaker_submit_directory``).
    :param evaluate: ``evaluate(model_dir) -> {metric: value}``, on held-out data.
    :param evaluation_metric: the key of ``evaluate``'s result that decides registration.
    :param greater_is_better: the direction of ``evaluation_metric``.
    :param model_package_group: the Model Registry group; None: no compare or register step.
    :param approval_threshold: default of the ``approval_threshold`` param.
    :param min_improvement: how much a new model must beat the approved one by.
    :param backend: default of the ``backend`` param (``sagemaker`` or ``local``).
    :param channels: tuning channels, name -> URI (S3, or a local path for the local backend);
        values may be XComArgs (e.g. of a data-preparation task).
    :param retrain_channels: the retraining job's channels (default: ``channels``).
    :param static_hyperparameters: overrides of static hyperparameters (values may be XComArgs; None keeps
        the request's), e.g. ``sagemaker_submit_directory`` after uploading the code.
    :param warm_start: warm-start from the tuning job recorded in ``state_variable``, when there is one
        on the same backend.
    :param state_variable: the Airflow Variable where the summary records this run's tuning job.
    :param inference_image: the model package's image (default: the training image).
    :param model_asset: an ``Asset`` the register task updates when it registers a version.
    :param aws_conn_id: the AWS connection of training jobs and S3.
    :param registry_conn_id: the AWS connection of the Model Registry (default: ``aws_conn_id``).
    :param content_types: the model package's ``SupportedContentTypes``.
    :param response_types: the model package's ``SupportedResponseMIMETypes``.
    :param region_name: the AWS region (default: the connection's).
    :param base_dir: the folder relative paths in the request resolve against (local backend;
        default: the request file's folder).
    :param poll_interval: seconds between two decision rounds of ``tune`` and ``retrain``.
    :param deferrable: run ``tune`` and ``retrain`` in the triggerer (default True).
    :param group_id: the task group's id (task ids are not prefixed with it).

    Task ids: ``configure``, ``tune``, ``retrain``, ``evaluate``, with ``model_package_group``
    also ``compare`` and ``register``, and ``summary``; ``tune`` and ``retrain`` push the XComs
    of :class:`~hb_airflow.operators.HyperbandTuningOperator` and
    :class:`~hb_airflow.trial.SageMakerTrialOperator`. ``docs/dag-authors.md`` shows it in a DAG.
    """
    base = load_request(tuning_request)
    objective = TuningConfig.from_dict(base).objective  # a bad request fails when the DAG is parsed
    if warm_start and not state_variable:
        raise ConfigError("state_variable", "`a state_variable is given when warm_start is set` must hold", None)
    if not isinstance(tuning_request, Mapping) and base_dir is None:
        base_dir = str(Path(tuning_request).resolve().parent)
    definition = _definition(base)
    image = inference_image or definition.get("AlgorithmSpecification", {}).get("TrainingImage")
    if model_package_group and not image:
        raise ConfigError("inference_image", "`an inference image is given (or a TrainingImage)` must hold", None)
    registry_conn_id = registry_conn_id if registry_conn_id is not None else aws_conn_id
    defaults = {BACKEND: backend, APPROVAL_THRESHOLD: approval_threshold}
    retrain_names = list(retrain_channels if retrain_channels is not None else (channels or {}))

    with TaskGroup(group_id=group_id, prefix_group_id=False, tooltip="Hyperband tuning pipeline") as group:

        @task(task_id="configure", multiple_outputs=True)
        def configure(channels: Any, retrain_channels: Any, static_hyperparameters: Any,
                      params: Mapping[str, Any] | None = None) -> dict[str, Any]:
            """Apply the run's params and channels to the request; add the warm start; validate."""
            run_params = {**defaults, **{k: v for k, v in (params or {}).items() if v is not None}}
            chosen = str(run_params[BACKEND])
            if chosen not in BACKENDS:
                raise AirflowFailException(f"`backend in {BACKENDS}` must hold, but got {chosen!r}")
            try:
                result = configure_request(base, run_params, channels=channels, retrain_channels=retrain_channels,
                                           static_hyperparameters=static_hyperparameters)
                parent = _warm_start_parent(state_variable, chosen, result["tuning_request"]) if warm_start else None
                if parent:
                    result = configure_request(base, run_params, channels=channels, parent=parent,
                                               retrain_channels=retrain_channels,
                                               static_hyperparameters=static_hyperparameters)
            except ConfigError as exc:
                raise AirflowFailException(f"invalid tuning request for this run: {exc}") from exc
            return {**result, "backend": chosen, "approval_threshold": run_params.get(APPROVAL_THRESHOLD)}

        # The task decorator's types say XComArg; these are its mapped outputs, read by key.
        configured: Any = configure(channels, retrain_channels, static_hyperparameters)
        conf_id = configured.operator.task_id

        def pull(key: str, suffix: str = "") -> str:
            return f"{{{{ ti.xcom_pull(task_ids='{conf_id}', key='{key}'){suffix} }}}}"

        tune = HyperbandTuningOperator(
            task_id="tune", tuning_request=configured["tuning_request"], backend=configured["backend"],
            base_dir=base_dir, aws_conn_id=aws_conn_id, region_name=region_name, poll_interval=poll_interval,
            deferrable=deferrable)
        retrain = SageMakerTrialOperator(
            task_id="retrain", training_job_definition=_retrain_skeleton(definition, retrain_names,
                                                                         static_hyperparameters, pull),
            hyperparameters=f"{{{{ ti.xcom_pull(task_ids='{tune.task_id}', key='best_hyperparameters') | tojson }}}}",
            objective_metric_name=objective.metric_name, objective_type=objective.type.value,
            backend=configured["backend"], base_dir=base_dir, aws_conn_id=aws_conn_id, region_name=region_name,
            poll_interval=poll_interval, deferrable=deferrable)
        tune >> retrain

        @task(task_id="evaluate")
        def evaluate_model(trained: dict[str, Any]) -> dict[str, Any]:
            """Run the evaluation callable on the retrained model."""
            with tempfile.TemporaryDirectory() as tmp:
                model_dir = local_model_dir(str(trained["model_artifacts"]), aws_conn_id, Path(tmp))
                metrics = dict(evaluate(str(model_dir)))
            value = metrics.get(evaluation_metric)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise AirflowFailException(f"the evaluation must return a finite {evaluation_metric!r}, "
                                           f"but got {metrics!r}")
            log.info("held-out evaluation of %s: %s", trained["training_job_name"], metrics)
            return {"metric": evaluation_metric, "value": float(value), "metrics": metrics,
                    "training_job_name": trained["training_job_name"], "model_artifacts": trained["model_artifacts"]}

        evaluation: Any = evaluate_model(cast(Any, retrain.output))
        ends = [evaluation]
        if model_package_group:
            ends = _registry_tasks(
                evaluation, configured, tune, group=model_package_group, registry_conn_id=registry_conn_id,
                aws_conn_id=aws_conn_id, region_name=region_name, greater_is_better=greater_is_better,
                min_improvement=min_improvement, image=image, content_types=list(content_types),
                response_types=list(response_types), model_asset=model_asset)

        @task(task_id="summary", trigger_rule=TriggerRule.NONE_FAILED)
        def summary(tuning: dict[str, Any], evaluation: dict[str, Any], ti: Any = None) -> dict[str, Any]:
            """What happened; records the tuning job for the next run's warm start."""
            result = {
                "tuning_job_name": ti.xcom_pull(task_ids=tune.task_id, key="tuning_job_name"),
                "state_uri": ti.xcom_pull(task_ids=tune.task_id, key="state_uri"),
                "backend": ti.xcom_pull(task_ids=conf_id, key="backend"),
                "warm_start_parent": ti.xcom_pull(task_ids=conf_id, key="warm_start_parent"),
                "tuning": tuning,
                "evaluation": evaluation,
                "decision": ti.xcom_pull(task_ids="compare") if model_package_group else None,
                "registration": ti.xcom_pull(task_ids="register") if model_package_group else None,
                "dag_id": ti.dag_id,
                "run_id": ti.run_id,
            }
            if state_variable:
                keep = ("tuning_job_name", "state_uri", "backend", "dag_id", "run_id")
                Variable.set(state_variable, {k: result[k] for k in keep}, serialize_json=True,
                             description="The last successful Hyperband pipeline run (its tuning job is the next "
                                         "run's warm-start parent).")
            decision = result["decision"] or {}
            log.info("pipeline: tuning job %s, best %s=%s; held-out %s=%s; registry: %s", result["tuning_job_name"],
                     tuning.get("objective"), tuning.get("best_objective"), evaluation["metric"],
                     evaluation["value"], decision.get("reason", "not configured"))
            return result

        done = summary(cast(Any, tune.output)["summary"], evaluation)
        for end in ends:
            end >> done
    return group


def _retrain_skeleton(definition: Mapping[str, Any], channels: list[str], static_overrides: Mapping[str, Any] | None,
                      pull: Callable[[str, str], str]) -> dict[str, Any]:
    """The retraining job's definition with the per-run values as templates on configure's XCom."""
    skeleton = copy.deepcopy(dict(definition))
    static = skeleton.setdefault("StaticHyperParameters", {})
    for key in {resource_hyperparameter(static), *(static_overrides or {})}:
        static[key] = pull("retrain", f"['static'][{key!r}]")
    if skeleton.get("ResourceConfig"):
        skeleton["ResourceConfig"]["InstanceType"] = pull("retrain", "['instance_type']")
    if channels:
        _set_channels(skeleton, {name: pull("retrain", f"['channels'][{name!r}]") for name in channels})
    return skeleton


def _warm_start_parent(variable: str | None, backend: str, request: Mapping[str, Any]) -> str | None:
    """The previous run's tuning job, when its state is where the tuning operator will look for it."""
    record = Variable.get(variable, default=None, deserialize_json=True) if variable else None
    if not isinstance(record, Mapping) or not record.get("tuning_job_name"):
        log.info("warm start: no previous run recorded in Variable %s; starting cold", variable)
        return None
    name = str(record["tuning_job_name"])
    expected = default_state_uri(backend, name, TuningConfig.from_dict(request))
    if record.get("backend") != backend or record.get("state_uri") != expected:
        log.warning("warm start: the previous tuning job %s ran on %s with state at %s, not at %s; starting cold",
                    name, record.get("backend"), record.get("state_uri"), expected)
        return None
    log.info("warm start from tuning job %s (run %s of %s)", name, record.get("run_id"), record.get("dag_id"))
    return name


def _registry_tasks(evaluation: Any, configured: Any, tune: Any, *, group: str, registry_conn_id: str | None,
                    aws_conn_id: str | None, region_name: str | None, greater_is_better: bool,
                    min_improvement: float, image: str, content_types: list[str], response_types: list[str],
                    model_asset: Any) -> list[Any]:
    @task(task_id="compare")
    def compare(evaluation: dict[str, Any], threshold: float | None) -> dict[str, Any]:
        """Find the approved version and decide whether (and how) to register the new model."""
        champion = ModelRegistry(registry_conn_id, region_name).champion(group)
        decision = decide(evaluation["value"], metric=evaluation["metric"], champion=champion,
                          threshold=None if threshold is None else float(threshold),
                          greater_is_better=greater_is_better, min_improvement=min_improvement)
        log.info("registry decision for %s: %s", group, decision.reason)
        return decision.to_dict()

    @task(task_id="register", outlets=[model_asset] if model_asset is not None else [])
    def register(decision: dict[str, Any], evaluation: dict[str, Any], s3_output_path: str | None,
                 ti: Any = None) -> dict[str, Any]:
        """Register the model as a new version, or skip (the reason is in the log and the task note)."""
        chosen = RegistrationDecision.from_dict(decision)
        if not chosen.register:
            raise AirflowSkipException(chosen.reason)
        training_job = evaluation["training_job_name"]
        url = publish_model(str(evaluation["model_artifacts"]), s3_output_path, training_job, aws_conn_id)
        report = put_json(url.rsplit("/", 1)[0] + "/evaluation.json", {
            "metric": evaluation["metric"], "value": evaluation["value"], "metrics": evaluation["metrics"],
            "decision": decision}, aws_conn_id)
        return ModelRegistry(registry_conn_id, region_name).register(
            group, chosen, model_data_url=url, image=image, training_job=training_job,
            tuning_job=ti.xcom_pull(task_ids=tune.task_id, key="tuning_job_name"), content_types=content_types,
            response_types=response_types, evaluation_uri=report)

    decided: Any = compare(evaluation, configured["approval_threshold"])
    registered = register(decided, evaluation, configured["s3_output_path"])
    return [registered]
