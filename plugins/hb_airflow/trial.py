"""``SageMakerTrialOperator``: one training job with given hyperparameters (e.g. retrain the best).

It is the tuning operator with a one-point search space: the request it builds
is a Grid tuning job whose categorical ranges each hold the single given value,
so the trial runs through the same controller loop, the same deferrable
trigger, the same backends and the same state store, with the same guarantees
(a retry reattaches, a kill stops the job, nothing is launched twice).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from hb_airflow.links import SageMakerBestTrainingJobLink
from hb_airflow.operators import HyperbandTuningOperator
from hb_airflow.spec import TuningSpec
from hb_core.config import resource_hyperparameter
from hb_core.errors import ConfigError
from hb_core.naming import training_job_name
from hb_core.state import TuningState, TuningStatus

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SageMakerTrialOperator", "single_trial_request"]


def single_trial_request(
    training_job_definition: Mapping[str, Any],
    hyperparameters: Mapping[str, Any],
    *,
    name: str,
    objective_metric_name: str | None = None,
    objective_type: str = "Maximize",
    resource: int | None = None,
) -> dict[str, Any]:
    """A ``CreateHyperParameterTuningJob`` body that runs exactly one trial with ``hyperparameters``."""
    definition = json.loads(json.dumps(training_job_definition))
    static = dict(definition.get("StaticHyperParameters") or {})
    for key in hyperparameters:
        static.pop(key, None)
    if resource is not None:
        static[resource_hyperparameter(static)] = str(resource)
    definition["StaticHyperParameters"] = static
    metrics = definition.get("AlgorithmSpecification", {}).get("MetricDefinitions") or []
    metric = objective_metric_name or (metrics[0]["Name"] if metrics else None)
    if not metric:
        raise ConfigError("objective_metric_name", "a metric to report must be named (or defined first in "
                          "AlgorithmSpecification.MetricDefinitions)", None)
    ranges = [{"Name": key, "Values": [_as_string(value)]} for key, value in hyperparameters.items()]
    if not ranges:  # a Grid needs one range: pin the resource hyperparameter instead
        key = resource_hyperparameter(static)
        ranges = [{"Name": key, "Values": [static.pop(key, str(resource or 1))]}]
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Grid",
            "HyperParameterTuningJobObjective": {"Type": objective_type, "MetricName": metric},
            "ResourceLimits": {"MaxParallelTrainingJobs": 1},
            "ParameterRanges": {"CategoricalParameterRanges": ranges},
        },
        "TrainingJobDefinition": definition,
    }


def _as_string(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


class SageMakerTrialOperator(HyperbandTuningOperator):
    """Run one training job with the given hyperparameters and return its final metrics and artifacts.

    A :class:`~hb_airflow.operators.HyperbandTuningOperator` whose request is
    :func:`single_trial_request`: a Grid tuning job with one configuration, named after the task
    id. So it runs deferred or on the worker like the tuning operator, a retry reattaches to its
    training job, and the task fails without a retry when the training job failed.

    :param training_job_definition: a ``TrainingJobDefinition`` as in the tuning request
        (templated), e.g. the tuning request's with the full data as its channels.
    :param hyperparameters: the trial's hyperparameters: a dict, or JSON text (templated; e.g.
        ``"{{ ti.xcom_pull(task_ids='tune', key='best_hyperparameters') | tojson }}"``, with
        ``tune >> this_task``). They override static ones.
    :param objective_metric_name: the metric reported as the trial's objective (templated;
        default: the first of ``MetricDefinitions``).
    :param objective_type: ``Maximize`` (default) or ``Minimize`` (templated).
    :param resource: the budget, written to the resource hyperparameter (``epochs`` or the
        first of its aliases among the static ones), e.g. MaxResource (templated; default: the
        definition's value).

    Other parameters are :class:`~hb_airflow.operators.HyperbandTuningOperator`'s: ``backend``,
    ``state_uri``, ``base_dir`` (a dict definition's relative paths resolve against the DAG
    file's folder unless given), ``aws_conn_id``, ``region_name``, ``poll_interval``,
    ``backend_options``, ``deferrable`` and ``tuning_job_name``; not ``tuning_request``.

    XComs: ``tuning_job_name`` and ``state_uri`` when the task starts; the return value when
    the training job ended: ``{"training_job_name", "status", "hyperparameters", "resource",
    "final_metrics", "model_artifacts", "billable_seconds"}``. ``final_metrics`` holds the
    objective, and on the local backend every ``MetricDefinitions`` metric's last value.
    ``on_kill`` stops the training job, as the tuning operator's does. Extra link: **Best
    training job (SageMaker)**.
    """

    template_fields: Sequence[str] = (
        *HyperbandTuningOperator.template_fields, "training_job_definition", "hyperparameters", "resource",
        "objective_metric_name", "objective_type",
    )
    template_fields_renderers = {"training_job_definition": "json", "hyperparameters": "json"}
    operator_extra_links = (SageMakerBestTrainingJobLink(),)

    def __init__(
        self,
        *,
        training_job_definition: dict[str, Any],
        hyperparameters: dict[str, Any] | str,
        objective_metric_name: str | None = None,
        objective_type: str = "Maximize",
        resource: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        self.training_job_definition = training_job_definition
        self.hyperparameters = hyperparameters
        self.objective_metric_name = objective_metric_name
        self.objective_type = objective_type
        self.resource = resource
        super().__init__(tuning_request={}, **kwargs)

    def _load_request(self) -> dict[str, Any]:
        hyperparameters = self.hyperparameters
        if isinstance(hyperparameters, str):
            if "{{" in hyperparameters:
                hyperparameters = {}  # rendered at execute time
            else:
                hyperparameters = json.loads(hyperparameters)
        name = re.sub(r"[^a-zA-Z0-9]+", "-", self.task_id).strip("-")[:32].strip("-") or "trial"
        return single_trial_request(
            self.training_job_definition, hyperparameters, name=name,
            objective_metric_name=self.objective_metric_name, objective_type=self.objective_type,
            resource=int(self.resource) if self.resource not in (None, "") else None,
        )

    def _finish(self, context: Context, spec: TuningSpec, state: TuningState) -> dict[str, Any]:
        trial = state.trials[0] if len(state.trials) else None
        if trial is None or state.status is TuningStatus.FAILED or trial.status.value == "Failed":
            reason = trial.stop_reason if trial is not None else (state.finish.reason if state.finish else None)
            raise AirflowFailException(f"training job of {spec.job_name} failed: {reason}")
        job = training_job_name(spec.job_name, trial.trial_id, trial.attempt)
        metrics = {state.config.objective.metric_name: trial.last_value}
        if spec.backend == "local":
            from hb_core.backends.local import LocalBackend

            backend = LocalBackend(state.config, spec.state_uri, job_name=spec.job_name, base_dir=spec.base_dir)
            metrics.update(backend.final_metrics(trial.trial_id, trial.attempt))
        elif spec.backend == "sagemaker":
            SageMakerBestTrainingJobLink.persist(context=context, operator=self, region_name=self.region_name or "",
                                                 aws_partition="aws", job_name=job)
        result = {
            "training_job_name": job,
            "status": trial.status.value,
            "hyperparameters": dict(trial.hyperparameters),
            "resource": trial.resource,
            "judged_resource": trial.judged_resource,
            "final_metrics": metrics,
            "model_artifacts": self._model_artifacts(spec, state, trial),
            "billable_seconds": trial.billable_seconds,
        }
        self.log.info("training job %s: %s, %s", job, trial.status.value, metrics)
        return result
