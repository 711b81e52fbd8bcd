"""The rung barrier, measured: stop overshoot of real local trials, and time-to-target under SageMaker latencies.

    python benchmarks/barrier.py local [--jobs 60] [--tree DIR]   # real subprocess trials of examples/mlp
    python benchmarks/barrier.py sim [--seeds 8] [--datasets cifar10]

``local`` runs ``hb-tune run examples/mlp/tuning.json --backend local`` twice,
without and with ``RungBarrierTimeoutSeconds``, and reads every stopped
trial's own log: its *stop overshoot* is the epochs it printed past the rung
where its stop was decided (the resource the controller recorded for it).
It also reports the controller's CPU time (``hb-tune run`` and the
launchers it waits for; the trials are detached and not counted) per trial.
``--tree DIR`` runs another checkout's ``hb_core`` and ``examples/mlp`` (e.g.
the main branch, for the figure before event-driven rounds), without the barrier.

``sim`` runs NAS-Bench-201 (5 workers, top-1% target, :mod:`nasbench`) for
Random, HB-stop and HB-promo under ``ideal`` (no latency) and under the
issue's profile (180 s cold start, 20 s warm start on a free warm-pool
instance, 60 s metric delay, 30 s stop delay), with the barrier ``off``, ``on``
(verdicts only: the rung value still reaches the controller through the
metric source) and ``on+values`` (the value the script publishes at the rung
is read from S3 within ``value_delay``, and a job that exits on its verdict
is seen ended as soon; the SageMaker backend does not read published values
yet), and prints median time-to-target and Random/HB against ideal.
The profile is applied by :class:`LatentBackend`, a stand-in written for
this measurement (every event is seen ``metric_delay`` late, as the SageMaker
backend holds a job's end until its last metrics are read; a stop lands
``stop_delay`` later, except at a barrier, where the waiting script ends by
itself; a launch on an instance freed within the keep-alive period starts
warm; in ``on+values``, the value a script publishes at a rung is seen
``value_delay`` = 5 s after it is printed, about what a backend polling S3
every 7.5 s near a rung gives, and so is the end of a job that exits on its
verdict: its last value is already known, so nothing holds its end back for
CloudWatch). Replace it with ``hb_core.Latency`` once the simulator has it.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import math
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from hb_core.backends.clock import VirtualClock  # noqa: E402
from hb_core.backends.simulated import SimulatedBackend  # noqa: E402
from hb_core.backends.stores import MemoryStore  # noqa: E402
from hb_core.config import TuningConfig  # noqa: E402
from hb_core.events import Event, Launch, MetricReported, Resume, RungVerdict  # noqa: E402
from hb_core.runner import Tuner  # noqa: E402

BARRIER_TIMEOUT = 600.0
EPOCH_LINE = re.compile(r"^epoch=(\d+) ", re.MULTILINE)
PROFILE = {"cold": 180.0, "warm": 20.0, "metric_delay": 60.0, "stop_delay": 30.0, "keep_alive": 3600.0,
           "value_delay": 5.0}
IDEAL = {"cold": 0.0, "warm": 0.0, "metric_delay": 0.0, "stop_delay": 0.0, "keep_alive": 0.0, "value_delay": 0.0}


# ---------------------------------------------------------------- local: real processes


def overshoots(job_dir: Path) -> list[int]:
    """Epochs each stopped trial printed past the resource the controller recorded when it stopped it."""
    state = json.loads((job_dir / "state.json").read_text())
    result = []
    for trial in state["trials"]:
        if trial["status"] != "Stopped" or not trial["points"]:
            continue
        decided = trial["points"][-1][0]
        log = job_dir / "trials" / trial["trial_id"] / str(trial["attempt"]) / "output.log"
        printed = [int(e) for e in EPOCH_LINE.findall(log.read_text())]
        result.append(max(printed) - decided)
    return result


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
            over = overshoots(Path(tmp) / "job")
        print(f"{tree.name} barrier {'on ' if barrier else 'off'}: {len(over)} stopped trials, overshoot median "
              f"{statistics.median(over) if over else math.nan:g} epochs, mean {statistics.fmean(over) if over else 0:.2f}, "
              f"max {max(over, default=0)}, total {sum(over)}; controller CPU {cpu:.1f} s, "
              f"{1000 * cpu / jobs:.0f} ms per trial")


# ---------------------------------------------------------------- sim: latencies in virtual time


class LatentBackend(SimulatedBackend):
    """A :class:`SimulatedBackend` with start-up, warm pool, metric and stop delays (module docstring)."""

    def __init__(self, *args: Any, cold: float, warm: float, metric_delay: float, stop_delay: float,
                 keep_alive: float, value_delay: float | None, **kwargs: Any) -> None:
        super().__init__(*args, startup_seconds=cold, **kwargs)
        self.cold, self.warm, self.metric_delay, self.stop_delay, self.keep_alive = (
            cold, warm, metric_delay, stop_delay, keep_alive)
        self.value_delay = metric_delay if value_delay is None else value_delay
        self._seen: list[tuple[float, int, Event]] = []  # (visible time, order, event)
        self._stops: list[tuple[float, int, str, int]] = []
        self._free: list[float] = []  # end times of jobs whose instance stays warm
        self._at_barrier: set[tuple[str, int]] = set()  # jobs that exited on a verdict
        self._order = itertools.count()

    async def launch(self, action: Launch | Resume) -> None:
        now = self.clock.now()
        self._free = [t for t in self._free if t + self.keep_alive > now]
        self.startup_seconds = self.cold
        if self._free:
            self._free.remove(min(self._free))
            self.startup_seconds = self.warm
        await super().launch(action)

    async def stop(self, trial_id: str, attempt: int, reason: str) -> None:
        job = self._jobs.get(trial_id)
        if job is None or job.attempt != attempt or not job.running:
            return
        if job.waiting is not None or self.stop_delay == 0:  # at a barrier the script reads its verdict and exits
            if job.waiting is not None:
                self._at_barrier.add((trial_id, attempt))
            await super().stop(trial_id, attempt, reason)
            self._free.append(self.clock.now())
            return
        heapq.heappush(self._stops, (self.clock.now() + self.stop_delay, next(self._order), trial_id, attempt))

    async def verdict(self, action: RungVerdict) -> None:
        job = self._jobs.get(action.trial_id)
        if job is not None and job.attempt == action.attempt and job.waiting == action.level and not action.goes_on:
            self._at_barrier.add((action.trial_id, action.attempt))
        await super().verdict(action)

    async def poll(self) -> list[Event]:
        now = self.clock.now()
        raw = await super().poll()
        while self._stops and self._stops[0][0] <= now:
            _, _, trial_id, attempt = heapq.heappop(self._stops)
            job = self._jobs.get(trial_id)
            if job is not None and job.attempt == attempt and job.running:
                await super().stop(trial_id, attempt, "stop landed")
                self._free.append(now)
        raw += await super().poll()
        for event in raw:
            if event.kind in ("TrialCompleted", "TrialFailed"):
                self._free.append(event.time)
            heapq.heappush(self._seen, (event.time + self._delay(event), next(self._order), event))
        seen = []
        while self._seen and self._seen[0][0] <= now:
            seen.append(heapq.heappop(self._seen)[2])
        return seen

    def _delay(self, event: Event) -> float:
        job = self._jobs.get(event.trial_id)
        published = (isinstance(event, MetricReported) and job is not None and job.attempt == event.attempt
                     and event.resource in job.rung_levels)
        ended_on_verdict = event.kind in ("TrialCompleted", "TrialStopped") and (
            (event.trial_id, event.attempt) in self._at_barrier)
        return self.value_delay if published or ended_on_verdict else self.metric_delay

    def next_event_time(self) -> float | None:
        times = [t for t in (super().next_event_time(),) if t is not None]
        times = [t + min(self.metric_delay, self.value_delay) for t in times]
        if self._seen:
            times.append(self._seen[0][0])
        if self._stops:
            times.append(self._stops[0][0])
        return min(times) if times else None


def run_one(task: Any, method: str, seed: int, latency: dict[str, float], mode: str, cap: float) -> float:
    from harness import request

    body = request(task, method, seed=seed, workers=5, cap=cap)
    hb = body["HyperParameterTuningJobConfig"].get("StrategyConfig", {}).get("HyperbandStrategyConfig")
    latency = dict(latency, value_delay=latency["value_delay"] if mode == "on+values" else None)
    if mode != "off" and hb is not None:
        hb["RungBarrierTimeoutSeconds"] = BARRIER_TIMEOUT
    config = TuningConfig.from_dict(body)
    clock = VirtualClock()
    timeout = config.hyperband.rung_barrier_timeout if config.hyperband is not None else None
    backend = LatentBackend(task.objective, clock, cost=task.cost, default_budget=config.max_resource,
                            barrier_timeout=timeout, **latency)
    tuner = Tuner(config, backend, MemoryStore(), clock, job_name="barrier-bench", seed=seed, poll_interval=math.inf)
    state = asyncio.run(tuner.run())
    target = task.hard_target
    hits = [time for t in state.trials for _, value, time in t.points if value >= target]
    return min(min(hits, default=math.inf), cap)


def sim(seeds: int, datasets: list[str]) -> None:
    import nasbench

    methods = ("Random", "HB-stop", "HB-promo")
    for dataset in datasets:
        task = nasbench.task(dataset)
        cap = 60.0 * nasbench.oracle(dataset)[0]
        print(f"## {task.name}, 5 workers, top-1% target, median time-to-target (s) over {seeds} seeds, cap {cap:.0f}")
        print("| profile | barrier | Random | HB-stop | HB-promo | Random/HB-stop | Random/HB-promo |")
        print("|---|---|---|---|---|---|---|")
        ratios: dict[tuple[str, str], tuple[float, float]] = {}
        for name, latency in (("ideal", IDEAL), ("180/20/60/30", PROFILE)):
            for mode in ("off", "on", "on+values"):
                med = {m: statistics.median(run_one(task, m, s, latency, mode, cap) for s in range(seeds))
                       for m in methods}
                stop, promo = med["Random"] / med["HB-stop"], med["Random"] / med["HB-promo"]
                ratios[(name, mode)] = (stop, promo)
                print(f"| {name} | {mode} | {med['Random']:,.0f} | {med['HB-stop']:,.0f} | "
                      f"{med['HB-promo']:,.0f} | {stop:.2f}x | {promo:.2f}x |", flush=True)
        ideal = ratios[("ideal", "off")]
        for mode in ("off", "on", "on+values"):
            stop, promo = ratios[("180/20/60/30", mode)]
            print(f"profile, barrier {mode}: Random/HB-stop at {stop / ideal[0]:.2f} of ideal, "
                  f"Random/HB-promo at {promo / ideal[1]:.2f} of ideal")


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
