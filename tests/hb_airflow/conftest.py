"""A real Airflow for the tests: a temp AIRFLOW_HOME with SQLite, migrated once per session.

DAG runs go through ``dag.test()`` in a subprocess, so Airflow reads this home's
configuration from the environment at import time, as it would in production.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: Seconds a hung ``dag.test()`` gets to write its threads' stacks before it is killed.
STACK_DUMP_SECONDS = 5.0

SCRIPTS = Path(__file__).resolve().parents[1] / "hb_core" / "backends" / "scripts"


@dataclass
class AirflowHome:
    home: Path
    dags: Path
    env: dict[str, str]

    def run_dag(self, module: str, source: str, *, timeout: float = 600,
                env: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
        """Write a DAG file, run it with ``dag.test()``, return (dag run state, what its dump task wrote).

        ``env`` adds variables for this run only (an ``AIRFLOW_CONN_*`` connection, say)."""
        process = self.start_dag(module, source, env=env)
        try:
            stdout, stderr = self.wait(module, process, timeout)
        finally:
            if process.poll() is None:
                process.kill()
        return self.dag_result(module, process.returncode, stdout, stderr)

    def wait(self, module: str, process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
        """(stdout, stderr) of a ``dag.test()`` that ended within ``timeout`` seconds.

        One still running then is a hang: it is asked for every thread's stack and its event
        loop's tasks (SIGUSR1 and SIGUSR2, see :meth:`start_dag`), given
        :data:`STACK_DUMP_SECONDS` to write them, killed, and reported with the stacks and its
        output's tail; this process's threads (an emulator's, a moto server's) are dumped to
        stderr too, so the failure says where each side stood."""
        try:
            return process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)  # every thread's stack, written by faulthandler from C
            process.send_signal(signal.SIGUSR2)  # the event loop's tasks, if the main thread runs Python
            try:
                stdout, stderr = process.communicate(timeout=STACK_DUMP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
        (self.home / f"{module}.log").write_text(stdout + stderr)
        faulthandler.dump_traceback(all_threads=True)
        raise AssertionError(f"dag.test() of {module} still ran after {timeout:.0f} s; its threads then:\n"
                             f"{stderr[-12000:]}\n--- the end of its output:\n{stdout[-4000:]}")

    def start_dag(self, module: str, source: str, *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Write a DAG file and start ``dag.test()`` on it in a subprocess (its own session); do not wait."""
        (self.dags / f"{module}.py").write_text(textwrap.dedent(source))
        (self.home / f"{module}.out.json").unlink(missing_ok=True)
        driver = (
            "import asyncio, faulthandler, importlib, signal, sys\n"
            "faulthandler.register(signal.SIGUSR1, all_threads=True)\n"
            "def tasks(signum, frame):\n"
            "    try:\n"
            "        running = asyncio.all_tasks(asyncio.get_running_loop())\n"
            "    except RuntimeError:\n"
            "        running = set()\n"
            "    for task in running:\n"
            "        task.print_stack(file=sys.stderr)\n"
            "    sys.stderr.flush()\n"
            "signal.signal(signal.SIGUSR2, tasks)\n"
            f"sys.path.insert(0, {str(self.dags)!r})\n"
            f"dag = importlib.import_module({module!r}).dag\n"
            "run = dag.test()\n"
            "print('DAGRUN_STATE', run.state)\n"
        )
        env = {**self.env, **(env or {}), "HB_TEST_OUT": str(self.home / f"{module}.out.json")}
        return subprocess.Popen([sys.executable, "-c", driver], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def dag_result(self, module: str, returncode: int, stdout: str, stderr: str) -> tuple[str, dict[str, Any]]:
        """(dag run state, what its dump task wrote) of a finished ``dag.test()``; its log is kept beside it."""
        log = stdout + stderr
        (self.home / f"{module}.log").write_text(log)
        assert returncode == 0, log[-5000:]
        state = next((line.split()[-1] for line in stdout.splitlines() if line.startswith("DAGRUN_STATE")), "")
        out = self.home / f"{module}.out.json"
        return state, (json.loads(out.read_text()) if out.exists() else {})


def live_group_members(pgid: int) -> list[int]:
    """Processes (not zombies) still in the process group a trial's supervisor leads."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    home = tmp_path_factory.mktemp("airflow_home")
    dags = home / "dags"
    dags.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return AirflowHome(home, dags, env)


def tiny_request(*, name: str = "tiny", jobs: int = 8, parallel: int = 2, max_resource: int = 9,
                 sleep: float = 0.05, seed: int = 0, script: str = "epochs.py") -> dict[str, Any]:
    """A small Hyperband request over one parameter x, trained by the test script ``epochs.py``."""
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Hyperband",
            "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": max_resource}},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"}]
            },
            "TrainingJobEarlyStoppingType": "Off",
            "RandomSeed": seed,
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {
                "sagemaker_program": script,
                "sagemaker_submit_directory": str(SCRIPTS),
                "epochs": str(max_resource),
                "sleep": str(sleep),
            },
            "AlgorithmSpecification": {
                "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/tiny:latest",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "score", "Regex": "score=([0-9.]+)"}],
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }
