"""The registration rule (pure, table-driven) and the Model Registry calls against moto's server."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from hb_airflow.registry import (
    METRIC_KEY,
    TRAINING_JOB_KEY,
    TUNING_JOB_KEY,
    VALUE_KEY,
    ApprovalStatus,
    Champion,
    ModelRegistry,
    RegistrationDecision,
    decide,
)
from tests.aws_fixtures import aws, client, moto_server  # noqa: F401 - fixtures

APPROVED, PENDING = ApprovalStatus.APPROVED, ApprovalStatus.PENDING


def champion(value: float | None, metric: str | None = "accuracy") -> Champion:
    return Champion("arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3", 3, metric, value)


@pytest.mark.parametrize(
    ("value", "current", "threshold", "greater", "margin", "register", "status", "reason"),
    [
        # no approved model: register; the threshold sets the status
        (0.90, None, 0.85, True, 0.0, True, APPROVED, "no approved model yet, and meets the approval threshold"),
        (0.80, None, 0.85, True, 0.0, True, PENDING, "misses the approval threshold 0.85"),
        (0.80, None, None, True, 0.0, True, PENDING, "no approval threshold is set"),
        (0.85, None, 0.85, True, 0.0, True, APPROVED, "meets"),  # the threshold itself is enough
        # an approved model: only a strictly better one is registered
        (0.91, champion(0.90), 0.85, True, 0.0, True, APPROVED, "accuracy=0.91 > 0.9 of the approved version 3"),
        (0.90, champion(0.90), 0.85, True, 0.0, False, None, "does not beat the approved version 3 (<= 0.9)"),
        (0.89, champion(0.90), 0.85, True, 0.0, False, None, "does not beat"),
        (0.905, champion(0.90), 0.85, True, 0.01, False, None, "(<= 0.9 + 0.01)"),  # not by the margin
        (0.95, champion(0.90), 0.99, True, 0.01, True, PENDING, "misses the approval threshold 0.99"),
        # lower is better (a loss)
        (0.20, champion(0.30, "loss"), 0.25, False, 0.0, True, APPROVED, "loss=0.2 < 0.3"),
        (0.30, champion(0.30, "loss"), 0.25, False, 0.0, False, None, "(>= 0.3)"),
        (0.28, champion(0.30, "loss"), 0.25, False, 0.0, True, PENDING, "misses the approval threshold 0.25"),
        # an approved model we cannot compare with: a person decides, whatever the threshold
        (0.99, champion(None), 0.5, True, 0.0, True, PENDING, "records no accuracy"),
        (0.99, champion(0.5, "f1"), 0.5, True, 0.0, True, PENDING, "records no accuracy"),
    ],
)
def test_decide(value: float, current: Champion | None, threshold: float | None, greater: bool, margin: float,
                register: bool, status: ApprovalStatus | None, reason: str) -> None:
    metric = current.metric if current is not None and current.metric == "loss" else "accuracy"
    decision = decide(value, metric=metric, champion=current, threshold=threshold, greater_is_better=greater,
                      min_improvement=margin)
    assert (decision.register, decision.approval_status) == (register, status)
    assert reason in decision.reason
    assert decision.champion == current and decision.value == value
    assert RegistrationDecision.from_dict(json.loads(json.dumps(decision.to_dict()))) == decision


@pytest.mark.parametrize(("value", "margin", "message"), [
    (math.nan, 0.0, "`the challenger's accuracy is finite` must hold, but got nan"),
    (math.inf, 0.0, "is finite"),
    (0.9, -0.1, "`min_improvement >= 0` must hold, but got -0.1"),
])
def test_decide_rejects_what_cannot_be_compared(value: float, margin: float, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decide(value, metric="accuracy", champion=None, threshold=0.5, min_improvement=margin)


@pytest.fixture
def registry(aws: str, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:  # noqa: F811
    monkeypatch.setenv("AIRFLOW_CONN_HB_REGISTRY", json.dumps(
        {"conn_type": "aws", "extra": {"endpoint_url": aws, "region_name": "us-east-1"}}))
    return ModelRegistry("hb_registry")


def register(registry: ModelRegistry, decision: RegistrationDecision,
             job: str = "retrain-1234abcd-0000-1") -> dict[str, Any]:
    return registry.register("mlp", decision, model_data_url=f"s3://b/{job}/output/model.tar.gz",
                             image="123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp:1", training_job=job,
                             tuning_job="mlp-hyperband-1234abcd", content_types=["application/json"],
                             response_types=["application/json"], evaluation_uri=f"s3://b/{job}/evaluation.json")


def test_registry_registers_versions_and_finds_the_approved_one(registry: ModelRegistry, aws: str) -> None:  # noqa: F811
    assert registry.champion("mlp") is None  # no group yet
    first = register(registry, decide(0.90, metric="accuracy", champion=None, threshold=0.8))
    assert first["created"] and first["model_package_version"] == 1 and first["approval_status"] == "Approved"
    found = registry.champion("mlp")
    assert found == Champion(first["model_package_arn"], 1, "accuracy", 0.90)

    described = client("sagemaker", aws).describe_model_package(ModelPackageName=first["model_package_arn"])
    assert described["CustomerMetadataProperties"] == {
        METRIC_KEY: "accuracy", VALUE_KEY: "0.9", TRAINING_JOB_KEY: "retrain-1234abcd-0000-1",
        TUNING_JOB_KEY: "mlp-hyperband-1234abcd"}
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == "s3://b/retrain-1234abcd-0000-1/output/model.tar.gz"
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("/evaluation.json")
    assert described["ModelPackageDescription"].startswith("retrain-1234abcd-0000-1 (accuracy=0.9 on held-out")

    pending = register(registry, decide(0.95, metric="accuracy", champion=found, threshold=0.99),
                       job="retrain-5678abcd-0000-1")
    assert pending["model_package_version"] == 2 and pending["approval_status"] == "PendingManualApproval"
    assert registry.champion("mlp") == found  # a pending version does not replace the approved one


def test_a_retried_registration_finds_the_version_it_created(registry: ModelRegistry, aws: str) -> None:  # noqa: F811
    decision = decide(0.90, metric="accuracy", champion=None, threshold=0.8)
    first = register(registry, decision)
    again = register(registry, decision)
    assert not again["created"] and again["model_package_arn"] == first["model_package_arn"]
    listed = client("sagemaker", aws).list_model_packages(ModelPackageGroupName="mlp")["ModelPackageSummaryList"]
    assert len(listed) == 1


def test_an_approved_version_without_our_metric_is_not_comparable(registry: ModelRegistry, aws: str) -> None:  # noqa: F811
    sagemaker = client("sagemaker", aws)
    sagemaker.create_model_package_group(ModelPackageGroupName="mlp")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="mlp", ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"Image": "i", "ModelDataUrl": "s3://b/m.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        CustomerMetadataProperties={VALUE_KEY: "not-a-number"})["ModelPackageArn"]
    found = registry.champion("mlp")
    assert found == Champion(arn, 1, None, None)
    assert decide(0.5, metric="accuracy", champion=found, threshold=0.1).approval_status is PENDING


def test_register_refuses_a_decision_not_to_register(registry: ModelRegistry) -> None:
    skip = decide(0.5, metric="accuracy", champion=champion(0.9), threshold=0.1)
    with pytest.raises(ValueError, match="`decision.register` must hold"):
        register(registry, skip)
