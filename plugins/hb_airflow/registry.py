"""The SageMaker Model Registry end of a tuning pipeline: champion lookup, the decision, registration.

Terms:

- *group*: a model package group; each registration is a new version in it.
- *champion*: the group's most recently created version whose
  ``ModelApprovalStatus`` is ``Approved`` (what a deployment picks up).
- *challenger*: the model just retrained, with its held-out metric.
- The held-out metric of every version we register is kept in its
  ``CustomerMetadataProperties`` (``hyperband:evaluation-metric`` and
  ``hyperband:evaluation-value``), with the training and tuning jobs that made
  it, so the next run can compare against it without re-evaluating.

:func:`decide` is pure. :class:`ModelRegistry` makes the calls through the
Amazon provider's ``SageMakerHook`` (the connection's ``endpoint_url`` is
honoured, so moto's server stands in for SageMaker in tests). Registration is
idempotent: a retried task finds the version it already created (matched by
the training job named in the version's description) instead of adding
another; ``ClientToken`` asks SageMaker for the same.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "METRIC_KEY",
    "TRAINING_JOB_KEY",
    "TUNING_JOB_KEY",
    "VALUE_KEY",
    "ApprovalStatus",
    "Champion",
    "ModelRegistry",
    "RegistrationDecision",
    "decide",
]

log = logging.getLogger(__name__)

METRIC_KEY = "hyperband:evaluation-metric"
VALUE_KEY = "hyperband:evaluation-value"
TRAINING_JOB_KEY = "hyperband:training-job"
TUNING_JOB_KEY = "hyperband:tuning-job"
RECENT_VERSIONS = 20  # how far back a retried registration looks for the version it already created


class ApprovalStatus(StrEnum):
    APPROVED = "Approved"
    PENDING = "PendingManualApproval"
    REJECTED = "Rejected"


@dataclass(frozen=True)
class Champion:
    """The approved version a challenger must beat; ``value`` is None when it records no comparable metric."""

    arn: str
    version: int | None
    metric: str | None
    value: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Champion:
        return cls(**data)


@dataclass(frozen=True)
class RegistrationDecision:
    """Whether to register the challenger, with which approval status, and why (one sentence)."""

    register: bool
    approval_status: ApprovalStatus | None
    reason: str
    metric: str
    value: float
    champion: Champion | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "register": self.register,
            "approval_status": None if self.approval_status is None else self.approval_status.value,
            "reason": self.reason,
            "metric": self.metric,
            "value": self.value,
            "champion": None if self.champion is None else self.champion.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegistrationDecision:
        status = data.get("approval_status")
        champion = data.get("champion")
        return cls(bool(data["register"]), None if status is None else ApprovalStatus(status), str(data["reason"]),
                   str(data["metric"]), float(data["value"]), None if champion is None else Champion.from_dict(champion))


def decide(
    value: float,
    *,
    metric: str,
    champion: Champion | None,
    threshold: float | None,
    greater_is_better: bool = True,
    min_improvement: float = 0.0,
) -> RegistrationDecision:
    """Register only a challenger that beats the champion by more than ``min_improvement``.

    - No champion: register.
    - A champion without a recorded ``metric`` value cannot be compared: register, but
      ``PendingManualApproval`` whatever the threshold, so a person decides.
    - Otherwise register when ``sign * (value - champion) > min_improvement``, else skip.

    A registered challenger is ``Approved`` when it meets ``threshold`` (``>=``, or ``<=``
    when lower is better), else ``PendingManualApproval``; with no threshold, always pending.
    """
    if not math.isfinite(value):
        raise ValueError(f"`the challenger's {metric} is finite` must hold, but got {value!r}")
    if min_improvement < 0:
        raise ValueError(f"`min_improvement >= 0` must hold, but got {min_improvement!r}")
    sign = 1.0 if greater_is_better else -1.0
    better, worse = (">", "<=") if greater_is_better else ("<", ">=")

    def registered(why: str) -> RegistrationDecision:
        if threshold is None:
            return RegistrationDecision(True, ApprovalStatus.PENDING, f"{why}; no approval threshold is set",
                                        metric, value, champion)
        if sign * (value - threshold) >= 0:
            return RegistrationDecision(True, ApprovalStatus.APPROVED,
                                        f"{why}, and meets the approval threshold {threshold:g}", metric, value,
                                        champion)
        return RegistrationDecision(True, ApprovalStatus.PENDING, f"{why}, but misses the approval threshold "
                                    f"{threshold:g}", metric, value, champion)

    if champion is None:
        return registered(f"{metric}={value:.6g} and no approved model yet")
    if champion.value is None or champion.metric != metric:
        return RegistrationDecision(
            True, ApprovalStatus.PENDING,
            f"the approved model {champion.arn} records no {metric}; registered for a person to compare",
            metric, value, champion)
    gain = sign * (value - champion.value)
    if gain > min_improvement:
        return registered(f"{metric}={value:.6g} {better} {champion.value:.6g} of the approved "
                          f"version {champion.version}")
    margin = f" + {min_improvement:g}" if min_improvement else ""
    return RegistrationDecision(
        False, None, f"{metric}={value:.6g} does not beat the approved version {champion.version} "
        f"({worse} {champion.value:.6g}{margin}); not registered", metric, value, champion)


def client_token(*parts: str) -> str:
    """A stable ``ClientToken`` (``[a-zA-Z0-9-]{1,36}``) for one registration."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class ModelRegistry:
    """Model Registry calls on an Airflow AWS connection (``SageMakerHook``)."""

    def __init__(self, aws_conn_id: str | None = "aws_default", region_name: str | None = None) -> None:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        self.hook = SageMakerHook(aws_conn_id=aws_conn_id, region_name=region_name)  # type: ignore[no-untyped-call]

    @property
    def client(self) -> Any:
        return self.hook.conn

    def group_exists(self, group: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ValidationException" and "does not exist" in str(error.get("Message")):
                return False
            raise
        return True

    def champion(self, group: str) -> Champion | None:
        """The latest ``Approved`` version of ``group`` (None when the group is missing or has none)."""
        if not self.group_exists(group):
            return None
        page = self.client.list_model_packages(
            ModelPackageGroupName=group, ModelApprovalStatus=ApprovalStatus.APPROVED.value,
            SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
        summaries = page.get("ModelPackageSummaryList") or []
        if not summaries:
            return None
        arn = summaries[0]["ModelPackageArn"]
        described = self.client.describe_model_package(ModelPackageName=arn)
        properties = described.get("CustomerMetadataProperties") or {}
        raw = properties.get(VALUE_KEY)
        try:
            value = float(raw) if raw is not None else None
        except ValueError:
            value = None
        if value is not None and not math.isfinite(value):
            value = None
        return Champion(arn, described.get("ModelPackageVersion"), properties.get(METRIC_KEY), value)

    def _existing(self, group: str, training_job: str) -> dict[str, Any] | None:
        page = self.client.list_model_packages(ModelPackageGroupName=group, SortBy="CreationTime",
                                               SortOrder="Descending", MaxResults=RECENT_VERSIONS)
        for summary in page.get("ModelPackageSummaryList") or []:
            if str(summary.get("ModelPackageDescription", "")).startswith(f"{training_job} ("):
                return dict(summary)
        return None

    def register(
        self,
        group: str,
        decision: RegistrationDecision,
        *,
        model_data_url: str,
        image: str,
        training_job: str,
        tuning_job: str,
        content_types: list[str],
        response_types: list[str],
        evaluation_uri: str | None = None,
    ) -> dict[str, Any]:
        """Create the group if needed and a new version in it; returns its ARN, version and status."""
        if not decision.register or decision.approval_status is None:
            raise ValueError(f"`decision.register` must hold, but got {decision.to_dict()}")
        if self.hook.create_model_package_group(group, f"Models tuned with Hyperband ({decision.metric})"):
            log.info("created model package group %s", group)
        existing = self._existing(group, training_job)
        if existing is not None:
            log.info("training job %s is already registered as %s; not registering it again", training_job,
                     existing["ModelPackageArn"])
            return {"model_package_arn": existing["ModelPackageArn"],
                    "model_package_version": existing.get("ModelPackageVersion"),
                    "approval_status": existing.get("ModelApprovalStatus"), "model_data_url": model_data_url,
                    "evaluation_uri": evaluation_uri, "created": False}
        request: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "ModelPackageDescription": f"{training_job} ({decision.metric}={decision.value:.6g} on held-out data; "
                                       f"tuning job {tuning_job})"[:1024],
            "ModelApprovalStatus": decision.approval_status.value,
            "ClientToken": client_token(group, training_job),
            "InferenceSpecification": {
                "Containers": [{"Image": image, "ModelDataUrl": model_data_url}],
                "SupportedContentTypes": content_types,
                "SupportedResponseMIMETypes": response_types,
            },
            "CustomerMetadataProperties": {
                METRIC_KEY: decision.metric,
                VALUE_KEY: repr(float(decision.value)),
                TRAINING_JOB_KEY: training_job,
                TUNING_JOB_KEY: tuning_job,
            },
        }
        if evaluation_uri:
            request["ModelMetrics"] = {
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}}
        arn = self.client.create_model_package(**request)["ModelPackageArn"]
        described = self.client.describe_model_package(ModelPackageName=arn)
        log.info("registered %s as %s (%s): %s", training_job, arn, decision.approval_status.value, decision.reason)
        return {"model_package_arn": arn, "model_package_version": described.get("ModelPackageVersion"),
                "approval_status": described.get("ModelApprovalStatus"), "model_data_url": model_data_url,
                "evaluation_uri": evaluation_uri, "created": True}
