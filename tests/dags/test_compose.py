"""docker-compose.yaml, emulated.env and the Dockerfile, checked by parsing (no Docker engine here).

What is checked is what would break a ``docker compose up``: the services and their commands, the
health checks that gate start-up order, the mounts, the AWS connection coming from the
environment, the ``emulated`` profile's wiring (and that its commands match the emulator's real
CLI), and that the image installs this project with every package the services run.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the test extra

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
EMULATED = {"aws", "sagemaker-emulator", "aws-init"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    return parsed


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = compose["services"]
    return services


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'")
    return values


def test_celery_deployment_has_every_airflow_3_component(services: dict[str, Any]) -> None:
    assert set(services) == {*AIRFLOW_SERVICES, "airflow-init", "postgres", "redis", *EMULATED}
    for name, command in AIRFLOW_SERVICES.items():
        service = services[name]
        assert service["command"] == command, name
        assert service["image"].endswith("airflow-hyperband:local}") and service["build"] == "."
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://") and "@postgres/" in \
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://") and "@redis:6379" in \
            env["AIRFLOW__CELERY__BROKER_URL"]
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert "profiles" not in service  # the core runs in every profile
    assert services["airflow-triggerer"]["command"] == "triggerer"  # the tuning controllers run there
    assert services["airflow-apiserver"]["ports"] == ["8080:8080"]


def test_dags_and_examples_are_mounted(services: dict[str, Any]) -> None:
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        mounts = services[name]["volumes"]
        assert "./dags:/opt/airflow/dags" in mounts
        assert "./examples:/opt/airflow/examples:ro" in mounts  # the DAG templates' request and scripts


def test_one_copy_of_the_project_on_every_path(services: dict[str, Any]) -> None:
    """The image installs hb_core and hb_airflow (its wheel); no mount may add a second copy where Python
    finds it: Airflow puts its plugins and DAG folders on sys.path, and the first copy found would win."""
    on_sys_path = ("/opt/airflow/plugins", "/opt/airflow/dags", "/opt/airflow/config")
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source, _, target = mount.partition(":")
            target = target.split(":")[0]
            if not source.startswith(".") or not any(target.startswith(p) for p in on_sys_path):
                continue
            folder = ROOT / source
            copies = [p for p in ("hb_airflow", "hb_core") if (folder / p / "__init__.py").exists()]
            assert not copies, f"{name} mounts {source} at {target}: a second {copies} beside the image's wheel"
    # hb_airflow registers through its entry point; the plugins-folder loader must not import it a second time
    assert "hb_airflow/" in (ROOT / "plugins" / ".airflowignore").read_text().split()


def test_health_checks_gate_the_start_up_order(services: dict[str, Any]) -> None:
    checks = {name: " ".join(map(str, service["healthcheck"]["test"])) for name, service in services.items()
              if "healthcheck" in service}
    assert set(checks) == set(services) - {"airflow-init", "aws-init"}  # one-shot services need none
    assert "pg_isready" in checks["postgres"] and "redis-cli ping" in checks["redis"]
    assert "/api/v2/version" in checks["airflow-apiserver"] and ":8974/health" in checks["airflow-scheduler"]
    assert "--job-type TriggererJob" in checks["airflow-triggerer"]
    assert "--job-type DagProcessorJob" in checks["airflow-dag-processor"]
    assert "inspect ping" in checks["airflow-worker"]
    for name in AIRFLOW_SERVICES:
        needs = services[name]["depends_on"]
        assert needs["postgres"]["condition"] == needs["redis"]["condition"] == "service_healthy"
        assert needs["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    init = services["airflow-init"]
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert "import hb_airflow.plugin, hb_core" in init["command"][1]  # fails fast if the image lacks the project


def test_aws_connection_comes_from_the_environment(services: dict[str, Any]) -> None:
    env = services["airflow-worker"]["environment"]
    for key in ("AIRFLOW_CONN_AWS_DEFAULT", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert env[key] == f"${{{key}:-}}", key  # interpolated from the caller's environment, empty by default
    assert env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] == "true"


def test_the_dashboard_reads_the_state_the_sagemaker_backend_writes(services: dict[str, Any]) -> None:
    env = services["airflow-apiserver"]["environment"]
    # the backend's default state_uri is <S3OutputPath>/<job>/hyperband, and the templates' S3OutputPath is this
    assert env["AIRFLOW__HYPERBAND__STATE_ROOT"] == (
        "${HYPERBAND_STATE_ROOT:-${HYPERBAND_S3_OUTPUT:-s3://my-bucket/hyperband/mlp}}")
    assert env["HYPERBAND_S3_OUTPUT"] == "${HYPERBAND_S3_OUTPUT:-s3://my-bucket/hyperband/mlp}"


def test_emulated_profile_runs_moto_and_the_emulator_without_aws(services: dict[str, Any]) -> None:
    for name in EMULATED:
        assert services[name]["profiles"] == ["emulated"]
    aws = services["aws"]
    assert aws["entrypoint"] == ["moto_server"] and aws["command"] == ["-H", "0.0.0.0", "-p", "5000"]
    assert set(aws["ports"]) == {"5000:5000", "4566:4566"}
    emulator = services["sagemaker-emulator"]
    assert emulator["network_mode"] == "service:aws"  # moto is on its loopback, as the emulator requires
    assert emulator["depends_on"]["aws"]["condition"] == "service_healthy"
    script = emulator["command"][0]
    assert "socat TCP-LISTEN:4566" in script and "TCP:127.0.0.1:4567" in script
    words = shlex.split(script.split("&")[0].replace("\\\n", " "))
    assert words[:3] == ["python", "-m", "hb_emulator"]
    flags = {word for word in words if word.startswith("--")}
    usage = subprocess.run([sys.executable, "-m", "hb_emulator", "--help"], check=False, capture_output=True, text=True,
                           timeout=60).stdout
    assert flags and all(re.search(rf"{flag}\b", usage) for flag in flags), (flags, usage)
    assert words[words.index("--moto-endpoint") + 1] == "http://127.0.0.1:5000"
    assert words[words.index("--port") + 1] == "4567"
    assert "create_bucket" in services["aws-init"]["command"][0]


def test_emulated_env_routes_sagemaker_to_the_emulator_and_the_rest_to_moto() -> None:
    values = env_file(ROOT / "emulated.env")
    training = json.loads(values["AIRFLOW_CONN_AWS_DEFAULT"])["extra"]
    assert training["endpoint_url"] == "http://aws:5000"
    assert training["service_config"]["sagemaker"]["endpoint_url"] == "http://aws:4566"
    assert training["config_kwargs"]["s3"]["addressing_style"] == "path"  # 'aws' is no bucket's DNS domain
    assert values["HYPERBAND_REGISTRY_CONN_ID"] == "aws_default"  # the emulator passes registry calls to moto
    assert "AIRFLOW_CONN_AWS_REGISTRY" not in values
    assert values["AWS_ACCESS_KEY_ID"] == values["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert values["HYPERBAND_BACKEND"] == "sagemaker"


def test_image_is_airflow_3_3_with_this_project_installed() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^ARG AIRFLOW_VERSION=(\S+)$", dockerfile, re.MULTILINE)
    assert match is not None
    version = match.group(1)
    assert version.startswith("3.3.")
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}" in dockerfile
    assert "COPY hb_core/ hb_core/" in dockerfile and "COPY plugins/hb_airflow/ plugins/hb_airflow/" in dockerfile
    assert "COPY hb_emulator/ hb_emulator/" in dockerfile  # the emulated profile runs python -m hb_emulator
    assert re.search(r"pip wheel .*--no-deps .*\s\.$", dockerfile, re.MULTILINE)
    assert re.search(r'pip install .*"apache-airflow==\$\{AIRFLOW_VERSION\}" /tmp/wheels/airflow_hyperband-\*\.whl',
                     dockerfile)
    assert "socat" in dockerfile  # the emulated profile's port forward
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = " ".join(project["project"]["dependencies"])
    assert re.search(r"apache-airflow>=3\.3", pins)
    packages = set(project["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts)
               for package in ("hb_core", "hb_emulator") for p in (ROOT / package).rglob("__init__.py")}
    assert on_disk <= packages  # hb_emulator, which the emulated profile runs, is in the wheel
    assert {"hb_airflow"} <= packages
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "airflow_home", ".git"} <= set(ignored)
