"""Honest accounting in a real deployment: the summary's trained epochs are the epochs the trials' logs show.

Issue 14: a real Airflow deployment running the local demo DAG once said "252
of 1,620 epochs spent" while its trials' logs showed 858 trained. Here a small
variant of the demo (``examples/mlp``, :func:`barrier.demo_request`: 15 trials,
MaxResource 9, 3 at a time, narrower ranges so a run takes about a minute) runs
in this module's deployment (api-server, scheduler, dag-processor and triggerer
as separate processes; the controller in the triggerer) twice at once: without
the rung barrier and with it. For each run the summary XCom's
``total_resource`` must be within 5% of the epochs the trials' own logs show
(``<home>/hyperband/<job>/trials/<trial>/<attempt>/output.log``), and its
``judged_resource`` what the state says was judged. The stop overshoot (epochs a
stopped trial trained past the rung where its stop was decided) is measured
both ways, and with the barrier its median is 0. ``python benchmarks/barrier.py
airflow`` runs this module and prints the figures it writes to the file named
by ``HB_ACCOUNTING_FIGURES``.

Each run lasts tens of seconds, so its trigger never fires before the
scheduler has seen the deferring worker exit (Airflow's stale-success race,
apache/airflow#66374 and #72716; see ``hb_fast`` in :mod:`tests.deployment.conftest`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType

from tests.deployment.conftest import Deployment


def _benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py``, a flat script, as a module (the measurement's one home)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"hb_benchmarks_{name}", path)
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


barrier = _benchmark("barrier")

JOBS = 15
#: barrier on or off -> DAG id; the fixture builds this module's deployment from DEPLOYMENT_DAGS
DAG_IDS = {False: "hb_demo_async", True: "hb_demo_barrier"}
DEPLOYMENT_DAGS = {dag_id: barrier.demo_request(JOBS, barrier=on, small=True, name=dag_id.replace("_", "-"))
                   for on, dag_id in DAG_IDS.items()}
TOLERANCE = 0.05


def test_the_summary_reports_the_epochs_the_logs_show_and_the_barrier_ends_the_stop_overshoot(
    deployment: Deployment,
) -> None:
    started = time.monotonic()
    runs = {on: deployment.trigger(dag_id) for on, dag_id in DAG_IDS.items()}  # both at once, as users would
    figures = []
    for on, dag_id in DAG_IDS.items():
        run_id = runs[on]
        name = deployment.job_name(dag_id, run_id)
        assert deployment.wait_run_ended(dag_id, run_id, 600) == "success", deployment.task_log(dag_id, run_id)[-3000:]
        seconds = time.monotonic() - started
        summary = deployment.xcom(dag_id, run_id, "summary")
        assert summary["status"] == "Completed" and summary["trials"] == JOBS, summary
        assert not deployment.live_trials(name)
        got = barrier.accounting(deployment.state_root / name)
        figures.append({"barrier": on, "jobs": JOBS, "seconds": seconds, "accounting": got.__dict__,
                        "summary_trained": summary["total_resource"], "summary_judged": summary["judged_resource"]})
        assert abs(summary["total_resource"] - got.logged) <= TOLERANCE * got.logged, (summary, got)
        assert (summary["total_resource"], summary["judged_resource"]) == (got.trained, got.judged), (summary, got)
        assert got.overshoot and min(got.overshoot) >= 0, got  # Hyperband stopped trials, none short of its rung
        if on:
            assert got.median_overshoot == 0, got
    if os.environ.get(barrier.ACCOUNTING_FIGURES):
        Path(os.environ[barrier.ACCOUNTING_FIGURES]).write_text(json.dumps(figures))
    for figure in figures:
        print(f"barrier {'on ' if figure['barrier'] else 'off'}: {barrier.Accounting(**figure['accounting']).line()}")
