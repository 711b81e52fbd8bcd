"""The rung barrier, measured: stop overshoot of real local trials, and time-to-target under SageMaker latencies.

    python benchmarks/barrier.py local [--jobs 60] [--tree DIR]   # real subprocess trials of examples/mlp
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
the decision's resource is unknown and the overshoot reads 0).

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
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from hb_core.state import TrialStatus, TuningState  # noqa: E402

EPOCH_LINE = re.compile(r"^epoch=(\d+) ", re.MULTILINE)


# ---------------------------------------------------------------- local: real processes


def overshoots(job_dir: Path) -> tuple[list[int], int, int, int]:
    """Epochs each stopped trial printed past the resource it had when its stop was decided; and the epochs
    trained by every trial as the state records them (and judged), and as the trials' own logs show them."""
    state = TuningState.from_dict(json.loads((job_dir / "state.json").read_text()))
    result, logged = [], 0
    for trial in state.trials:
        log = job_dir / "trials" / trial.trial_id / str(trial.attempt) / "output.log"
        printed = max((int(e) for e in EPOCH_LINE.findall(log.read_text())), default=0) if log.exists() else 0
        logged += printed
        if trial.status is TrialStatus.STOPPED and trial.points:
            result.append(printed - trial.judged_resource)
    return result, state.total_resource(), logged, state.judged_resource()


def local(jobs: int, tree: Path) -> None:
    body = json.loads((tree / "examples/mlp/tuning.json").read_text())
    body["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = jobs
    for barrier in (False, True) if tree == ROOT else (False,):
        hb = body["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"]
        hb.pop("RungBarrierTimeoutSeconds", None)
        if barrier:
            hb["RungBarrierTimeoutSeconds"] = 120
        static = body["TrainingJobDefinition"]["StaticHyperParameters"]
        static["sagemaker_submit_directory"] = str(tree / "examples/mlp")
        with tempfile.TemporaryDirectory() as tmp:
            request = Path(tmp) / "tuning.json"
            request.write_text(json.dumps(body))
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-m", "hb_core.cli", "run", str(request), "--backend", "local",
                            "--job-dir", str(Path(tmp) / "job")], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=tree,
                           env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)})
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            over, recorded, logged, judged = overshoots(Path(tmp) / "job")
        print(f"{tree.name} barrier {'on ' if barrier else 'off'}: {len(over)} stopped trials, overshoot median "
              f"{statistics.median(over) if over else math.nan:g} epochs, mean {statistics.fmean(over) if over else 0:.2f}, "
              f"max {max(over, default=0)}, total {sum(over)}; epochs trained {recorded} per the state ({judged} "
              f"judged), {logged} per the trials' logs; controller CPU {cpu:.1f} s, "
              f"{1000 * cpu / jobs:.0f} ms per trial")


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
    s = sub.add_parser("sim")
    s.add_argument("--seeds", type=int, default=8)
    s.add_argument("--datasets", nargs="+", default=["cifar10"])
    args = parser.parse_args()
    if args.what == "local":
        local(args.jobs, args.tree.resolve())
    else:
        sim(args.seeds, args.datasets)


if __name__ == "__main__":
    main()
