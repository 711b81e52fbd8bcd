"""The package as an Airflow provider: ``get_provider_info``, registered through the
``apache_airflow_provider`` entry point, as third-party providers do.

Airflow's ``ProvidersManager`` calls it to list the package (``airflow providers
list``, the UI's Providers page) with its operators, sensors, triggers and extra
links; the extra links are then known to the API server, which renders them on
the tuning task. The dashboard stays an ``AirflowPlugin`` (:mod:`hb_airflow.plugin`):
providers cannot mount an app or add UI views. This module imports nothing heavy:
Airflow loads it in every process that discovers providers.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

__all__ = ["DISTRIBUTION", "get_provider_info"]

#: The distribution's name in pyproject.toml: Airflow checks that ``package-name`` matches it.
DISTRIBUTION = "airflow-hyperband"
INTEGRATION = "Hyperband tuning"


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # imported from a source tree that is not installed
        return "0+unknown"


def get_provider_info() -> dict[str, Any]:
    """The provider's description, in the runtime schema of ``airflow/provider_info.schema.json``."""
    return {
        "package-name": DISTRIBUTION,
        "name": "Hyperband",
        "description": "Hyperband (ASHA) hyperparameter tuning as one deferrable task, speaking the SageMaker "
                       "AMT request format; trials on SageMaker or local processes.",
        "versions": [_version()],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning.html",
                "tags": ["software"],
            }
        ],
        "operators": [{"integration-name": INTEGRATION,
                       "python-modules": ["hb_airflow.operators", "hb_airflow.trial"]}],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["hb_airflow.sensors"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["hb_airflow.triggers"]}],
        "extra-links": ["hb_airflow.links.TuningDashboardLink", "hb_airflow.links.SageMakerBestTrainingJobLink"],
    }
