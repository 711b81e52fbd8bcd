"""The rung barrier, measured: stop overshoot of real local trials, and time-to-target under SageMaker latencies.

    python benchmarks/barrier.py local [--jobs 60] [--small] [--tree DIR]  # real subprocess trials of examples/mlp
    python benchmarks/barrier.py airflow                                  # the same in a real Airflow deployment
    python benchmarks/barrier.py sim [--seeds 8] [--datasets cifar10]

``local`` runs ``hb-tune run examples/mlp/tuning.json --backend local`` twice,
without and with ``RungBarrierTimeoutSeconds``, and reads every stopped
trial's own log: its *stop overshoot* is the epochs it printed past the
resource it had reached when its stop was decided (``stop_resource`` in the
state). It also checks the state's trained resource against the logs, and
reports the controller's CPU time (``hb-tune run`` and the launchers it
waits for; the trials are detached and not counted) per trial. ``--tree DIR``
runs another checkout's ``hb_core`` and ``examples/mlp`` without the barrier
(its state must record ``stop_resource``, as this merge's does: without it
the decision's resource is unknown and the overshoot reads 0). ``--small`` runs
:func:`demo_request`'s small variant instead of the demo's request.

``airflow`` measures the same in a real deployment (api-server, scheduler,
dag-processor and triggerer as separate processes, :mod:`deploy.local_airflow`):
it runs ``tests/deployment/test_accounting.py``, whose fixture starts the
deployment and whose test triggers the small variant of the local demo DAG
without and with the barrier through the REST API, compares the summary XCom's
trained epochs with the trials' logs and writes its :class:`Accounting` figures
to the file ``HB_ACCOUNTING_FIGURES`` names; this prints them (recorded in
``benchmarks/results/ACCOUNTING.md``).

``sim`` is :mod:`latency` (NAS-Bench-201, 5 workers, top-1% target) for
Random, HB-stop and HB-promo with and without the barrier, under ``ideal``
and ``target`` (180 s cold start, 20 s warm start, 60 s metric delay, 30 s
stop delay, event-driven, :data:`latency.TARGET`): one home for the latency
model, :class:`hb_core.Latency` in the simulated backend.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from hb_core.state import TrialStatus, TuningState  # noqa: E402

EPOCH_LINE = re.compile(r"^epoch=(\d+) ", re.MULTILINE)


# ---------------------------------------------------------------- local: real processes

#: The small variant's ranges (:func:`demo_request`): an epoch takes well under a second on a loaded 2-core machine
#: (the demo's widest, units 1,000 at batch size 10, takes about 30 s there).
SMALL_RANGES = {"units": ("10", "100"), "batch_size": ("50", "200")}
BARRIER_TIMEOUT_SECONDS = 120


def demo_request(jobs: int, *, barrier: bool, small: bool = False, tree: Path = ROOT,
                 name: str | None = None) -> dict[str, Any]:
    """``examples/mlp/tuning.json`` with ``jobs`` trials, its script in ``tree``, and the rung barrier on
    (``RungBarrierTimeoutSeconds``) or off. ``small``: MaxResource 9 (and ``epochs`` 9), 3 trials at a time and
    the ranges of :data:`SMALL_RANGES`, so a run of 15 trials takes about a minute."""
    body: dict[str, Any] = json.loads((tree / "examples/mlp/tuning.json").read_text())
    config = body["HyperParameterTuningJobConfig"]
    config["ResourceLimits"]["MaxNumberOfTrainingJobs"] = jobs
    hb = config["StrategyConfig"]["HyperbandStrategyConfig"]
    hb.pop("RungBarrierTimeoutSeconds", None)
    if barrier:
        hb["RungBarrierTimeoutSeconds"] = BARRIER_TIMEOUT_SECONDS
    static = body["TrainingJobDefinition"]["StaticHyperParameters"]
    static["sagemaker_submit_directory"] = str(tree / "examples/mlp")
    if small:
        hb["MaxResource"] = 9
        static["epochs"] = "9"
        config["ResourceLimits"]["MaxParallelTrainingJobs"] = 3
        for item in config["ParameterRanges"]["IntegerParameterRanges"]:
            if item["Name"] in SMALL_RANGES:
                item["MinValue"], item["MaxValue"] = SMALL_RANGES[item["Name"]]
    if name is not None:
        body["HyperParameterTuningJobName"] = name
    return body


@dataclass(frozen=True)
class Accounting:
    """One run's stop overshoot and trained epochs, from its state and from its trials' own logs."""

    #: per stopped trial: the epochs it printed past the resource it had when its stop was decided
    overshoot: list[int]
    #: epochs trained as the state records them (``total_resource``), and judged (``judged_resource``)
    trained: int
    judged: int
    #: epochs trained as the trials' logs show them (the last ``epoch=`` line of every attempt's log)
    logged: int

    @property
    def median_overshoot(self) -> float:
        return statistics.median(self.overshoot) if self.overshoot else math.nan

    def line(self) -> str:
        over = self.overshoot
        return (f"{len(over)} stopped trials, overshoot median {self.median_overshoot:g} epochs, mean "
                f"{statistics.fmean(over) if over else 0:.2f}, max {max(over, default=0)}, total {sum(over)}; "
                f"epochs trained {self.trained} per the state ({self.judged} judged), {self.logged} per the "
                f"trials' logs")


def accounting(job_dir: Path) -> Accounting:
    """:class:`Accounting` of the local tuning job in ``job_dir`` (its ``state.json`` and every trial's
    ``trials/<trial>/<attempt>/output.log``, as the local backend writes them)."""
    state = TuningState.from_dict(json.loads((job_dir / "state.json").read_text()))
    over, logged = [], 0
    for trial in state.trials:
        log = job_dir / "trials" / trial.trial_id / str(trial.attempt) / "output.log"
        printed = max((int(e) for e in EPOCH_LINE.findall(log.read_text())), default=0) if log.exists() else 0
        logged += printed
        if trial.status is TrialStatus.STOPPED and trial.points:
            over.append(printed - trial.judged_resource)
    return Accounting(over, state.total_resource(), state.judged_resource(), logged)


def local(jobs: int, tree: Path, small: bool) -> None:
    for barrier in (False, True) if tree == ROOT else (False,):
        with tempfile.TemporaryDirectory() as tmp:
            request = Path(tmp) / "tuning.json"
            request.write_text(json.dumps(demo_request(jobs, barrier=barrier, small=small, tree=tree)))
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-m", "hb_core.cli", "run", str(request), "--backend", "local",
                            "--job-dir", str(Path(tmp) / "job")], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=tree,
                           env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)})
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            figures = accounting(Path(tmp) / "job")
        print(f"{tree.name} barrier {'on ' if barrier else 'off'}: {figures.line()}; controller CPU {cpu:.1f} s, "
              f"{1000 * cpu / jobs:.0f} ms per trial")


# ---------------------------------------------------------------- airflow: a real deployment

ACCOUNTING_FIGURES = "HB_ACCOUNTING_FIGURES"


def airflow() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/deployment/test_accounting.py"], check=True, cwd=ROOT,
                       env={**os.environ, ACCOUNTING_FIGURES: str(out), "OPENBLAS_NUM_THREADS": "1"})
        runs = json.loads(out.read_text())
    print(f"a real Airflow deployment ({time.perf_counter() - started:.0f} s with its start-up and teardown):")
    for run in runs:
        figures = Accounting(**run["accounting"])
        print(f"  barrier {'on ' if run['barrier'] else 'off'}: {run['jobs']} trials, {run['seconds']:.0f} s; "
              f"{figures.line()}; the summary XCom says {run['summary_trained']} trained, "
              f"{run['summary_judged']} judged")


# ---------------------------------------------------------------- sim: latencies in virtual time


def sim(seeds: int, datasets: list[str]) -> None:
    import latency

    methods = ("Random", "HB-stop", "HB-promo", "HB-stop-barrier", "HB-promo-barrier")
    latency.main(["--seeds", str(seeds), "--datasets", ",".join(datasets), "--profiles", "ideal,target",
                  "--methods", ",".join(methods)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    loc = sub.add_parser("local")
    loc.add_argument("--jobs", type=int, default=60)
    loc.add_argument("--tree", type=Path, default=ROOT)
    loc.add_argument("--small", action="store_true", help="the small variant (demo_request)")
    sub.add_parser("airflow")
    s = sub.add_parser("sim")
    s.add_argument("--seeds", type=int, default=8)
    s.add_argument("--datasets", nargs="+", default=["cifar10"])
    args = parser.parse_args()
    if args.what == "local":
        local(args.jobs, args.tree.resolve(), args.small)
    elif args.what == "airflow":
        airflow()
    else:
        sim(args.seeds, args.datasets)


if __name__ == "__main__":
    main()
