"""Extra links on the tuning task: the best training job in the SageMaker console, and the tuning dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink
from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey

__all__ = ["DASHBOARD_PREFIX", "SageMakerBestTrainingJobLink", "TuningDashboardLink", "dashboard_path"]

#: Where the plugin's UI app is mounted on the API server.
DASHBOARD_PREFIX = "/hyperband"


def dashboard_path(tuning_job_name: str) -> str:
    return f"{DASHBOARD_PREFIX}/jobs/{tuning_job_name}"


class SageMakerBestTrainingJobLink(BaseAwsLink):
    """The best trial's training job in the SageMaker console (SageMaker backend)."""

    name = "Best training job (SageMaker)"
    key = "hyperband_best_training_job_link"
    format_str = BASE_AWS_CONSOLE_LINK + "/sagemaker/home?region={region_name}#/jobs/{job_name}"


class TuningDashboardLink(BaseOperatorLink):
    """The tuning job's page in the Hyperband dashboard of the Airflow UI."""

    name = "Hyperband dashboard"
    key: ClassVar[str] = "tuning_job_name"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        job = XCom.get_value(key=self.key, ti_key=ti_key)
        return dashboard_path(job) if job else ""
