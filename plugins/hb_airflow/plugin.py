"""The ``AirflowPlugin`` registered through the ``airflow.plugins`` entry point."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class HyperbandPlugin(AirflowPlugin):
    """Registers the Hyperband tuner with Airflow (operator links and the UI app join it as they land)."""

    name = "hyperband"
