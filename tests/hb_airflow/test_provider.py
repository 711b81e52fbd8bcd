"""The package registers as an Airflow provider: ``airflow providers list`` (a real CLI run) shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from hb_airflow.provider import DISTRIBUTION, get_provider_info


def test_provider_info_names_the_installed_distribution_and_loadable_classes() -> None:
    info = get_provider_info()
    assert info["package-name"] == DISTRIBUTION == metadata.distribution(DISTRIBUTION).metadata["Name"]
    assert info["versions"] == [metadata.version(DISTRIBUTION)]
    points = metadata.entry_points(group="apache_airflow_provider")
    assert any(p.value == "hb_airflow.provider:get_provider_info" for p in points)
    for kind in ("operators", "sensors", "triggers"):
        for module in info[kind][0]["python-modules"]:
            __import__(module)
    for path in info["extra-links"]:
        module, _, name = path.rpartition(".")
        assert hasattr(__import__(module, fromlist=[name]), name), path


def test_airflow_providers_list_shows_the_package(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run([str(airflow), "providers", "list", "--output", "json"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    providers = {p["package_name"]: p for p in json.loads(done.stdout[done.stdout.index("["):])}
    assert DISTRIBUTION in providers, sorted(providers)
    assert providers[DISTRIBUTION]["version"] == metadata.version(DISTRIBUTION)
    links = subprocess.run([str(airflow), "providers", "links", "--output", "json"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert links.returncode == 0, links.stderr[-3000:]
    assert "hb_airflow.links.TuningDashboardLink" in links.stdout
