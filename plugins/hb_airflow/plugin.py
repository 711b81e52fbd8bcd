"""The ``AirflowPlugin`` registered through the ``airflow.plugins`` entry point.

It mounts the dashboard app (:mod:`hb_airflow.ui`) on the API server at
:data:`~hb_airflow.links.DASHBOARD_PREFIX` and adds two views to the Airflow UI:
a top-level navigation entry (the job list) and a tab on every task instance
(the tuning job that task started, or a note that it started none).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from hb_airflow.links import DASHBOARD_PREFIX
from hb_airflow.ui import dashboard_app

#: Placeholders the Airflow UI fills in for a view with a non-nav destination.
_TI = "{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}"


class HyperbandPlugin(AirflowPlugin):
    """Registers the Hyperband tuner with Airflow: the dashboard app and its two UI views."""

    name = "hyperband"
    fastapi_apps = [{"app": dashboard_app, "url_prefix": DASHBOARD_PREFIX, "name": "Hyperband dashboard"}]
    external_views = [
        {
            "name": "Hyperband",
            "href": f"{DASHBOARD_PREFIX}/",
            "destination": "nav",
            "url_route": "hyperband",
            "nav_top_level": True,
            "icon": f"{DASHBOARD_PREFIX}/static/icon.svg",
        },
        {
            "name": "Hyperband tuning",
            "href": f"{DASHBOARD_PREFIX}/ti/{_TI}",
            "destination": "task_instance",
            "url_route": "hyperband-task",
            "icon": f"{DASHBOARD_PREFIX}/static/icon.svg",
        },
    ]
