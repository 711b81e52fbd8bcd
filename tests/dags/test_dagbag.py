"""Every DAG in ``dags/`` parses in Airflow's DagBag with no import errors and no warnings, and
without doing I/O at the top level: the parse runs with sockets, AWS clients, subprocesses and
Airflow Variables made to fail, as a DAG processor should never need them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"

PARSER = textwrap.dedent("""
    import json, socket, subprocess, sys

    def forbidden(what):
        def refuse(*args, **kwargs):
            raise RuntimeError(f"top-level I/O while parsing a DAG file: {what}")
        return refuse

    socket.socket.connect = forbidden("socket.connect")
    socket.create_connection = forbidden("socket.create_connection")
    subprocess.Popen.__init__ = forbidden("subprocess")
    import boto3, botocore.session
    boto3.client = boto3.resource = forbidden("boto3 client")
    botocore.session.Session.create_client = forbidden("botocore client")
    from airflow.sdk import Variable
    Variable.get = classmethod(forbidden("Variable.get"))

    from pathlib import Path
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    # Airflow 3.3's DagBag has no include_examples: examples are a bundle of their own (off: LOAD_EXAMPLES).
    bag = DagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]), bundle_name="dags-folder")
    dags = {}
    for dag_id, dag in bag.dags.items():
        dag.params.validate()  # every param's default satisfies its JSON schema
        DagSerialization.to_dict(dag)  # what the DAG processor stores
        dags[dag_id] = {
            "fileloc": dag.fileloc, "catchup": dag.catchup, "doc_md": bool(dag.doc_md), "tags": sorted(dag.tags),
            "params": {k: dag.params.get_param(k).schema for k in dag.params},
            "timetable": type(dag.timetable).__name__, "max_active_runs": dag.max_active_runs,
            "tasks": [t.task_id for t in dag.tasks],
        }
    print("DAGBAG", json.dumps({"import_errors": bag.import_errors, "warnings": bag.captured_warnings,
                                "dags": dags}, default=str))
""")


def parse(folder: Path, home: Path) -> dict[str, Any]:
    """DagBag of ``folder`` in a fresh Airflow home, in a subprocess, with top-level I/O forbidden."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "HYPERBAND_", "AWS_"))}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONWARNINGS": "default"})
    done = subprocess.run([sys.executable, "-c", PARSER, str(folder)], env=env, check=False, capture_output=True, text=True,
                          timeout=300, cwd=str(home))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("DAGBAG "))
    bag: dict[str, Any] = json.loads(line.removeprefix("DAGBAG "))
    return bag


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return parse(DAGS, tmp_path_factory.mktemp("dagbag_home"))


def test_the_parse_check_catches_top_level_io(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "greedy_dag.py").write_text(textwrap.dedent("""
        import boto3
        from airflow.sdk import DAG
        boto3.client("s3").list_buckets()  # at parse time: what a DAG file must not do
        dag = DAG(dag_id="greedy", schedule=None)
    """))
    found = parse(folder, tmp_path)
    [error] = found["import_errors"].values()
    assert "top-level I/O while parsing a DAG file: boto3 client" in error


def test_every_dag_file_parses_without_errors_warnings_or_io(dagbag: dict[str, Any]) -> None:
    assert dagbag["import_errors"] == {}
    assert dagbag["warnings"] == {}
    files = {Path(d["fileloc"]).name for d in dagbag["dags"].values()}
    assert files == {p.name for p in DAGS.glob("*.py")}  # every file holds a DAG
    assert {"hyperband_local_demo", "hyperband_tuning_pipeline", "hyperband_scheduled_retraining"} <= set(
        dagbag["dags"])
    for dag in dagbag["dags"].values():
        assert dag["catchup"] is False and dag["doc_md"] and "hyperband" in dag["tags"]


@pytest.mark.parametrize("dag_id", ["hyperband_tuning_pipeline", "hyperband_scheduled_retraining"])
def test_pipeline_params_have_json_schemas_for_the_trigger_form(dagbag: dict[str, Any], dag_id: str) -> None:
    dag = dagbag["dags"][dag_id]
    params = dag["params"]
    assert params["backend"]["enum"] == ["sagemaker", "local"]
    assert params["instance_type"]["type"] == "string" and params["instance_type"]["pattern"].startswith("^ml")
    parallel = params["max_parallel_jobs"]
    assert (parallel["type"], parallel["minimum"]) == ("integer", 1)
    # No AMT quota in the form: the controller runs any count (TuningJobExtensions.EnforceAmtQuotas opts in)
    assert "maximum" not in parallel and "maximum" not in params["max_training_jobs"]
    assert params["objective_metric"]["enum"] == ["epoch", "train:loss", "validation:accuracy"]
    assert params["approval_threshold"]["type"] == ["number", "null"]
    assert params["max_resource"]["maximum"] == 20_000
    assert dag["tasks"] == ["prepare_data", "configure", "tune", "retrain", "evaluate", "compare", "register",
                            "summary"]
    assert dag["max_active_runs"] == 1


def test_retraining_runs_on_a_schedule_or_when_the_data_asset_updates(dagbag: dict[str, Any]) -> None:
    retraining = dagbag["dags"]["hyperband_scheduled_retraining"]
    assert retraining["timetable"] == "AssetOrTimeSchedule"
    assert retraining["params"]["warm_start_type"]["enum"] == ["TransferLearning", "IdenticalDataAndAlgorithm"]
    assert "warm_start_type" not in dagbag["dags"]["hyperband_tuning_pipeline"]["params"]
