"""NAS-Bench-201 under latency: every method, ours and the peers, under the same :class:`hb_core.Latency` profiles.

    python benchmarks/latency.py --seeds 8 --out benchmarks/results/LATENCY.md       # the committed table
                                                   # (make bench-latency; peers under three profiles)
    python benchmarks/latency.py --seeds 2 --datasets cifar10 --profiles ideal,target  # a quick look

Profiles: the named ones of :data:`hb_core.latency.PROFILES`, plus the
issue's rows (``issue-s<start-up>-d<delay>``: every job starts after s
seconds, every event is seen d seconds late, no warm pool, stops land at
once) and ``target``: 180 s cold start, 20 s warm start, 60 s metric delay,
30 s stop delay, event-driven, with the product's defaults (warm pools for
Hyperband per :meth:`hb_core.config.TuningConfig.keep_alive_seconds`).
``HB-stop-barrier`` and ``HB-promo-barrier`` are HB-stop and HB-promo with
``RungBarrierTimeoutSeconds`` (:mod:`hb_core.barrier`): the simulated
scripts publish their rung value and wait at the rung for the verdict
(:class:`hb_core.backends.simulated.SimulatedBackend`).
Runs are paired by seed across methods and profiles. A run that misses the
target within its cap (60 x the oracle's time, as ``run.py``) counts at the
cap. Medians with 95% bootstrap intervals (:mod:`tta`); ratios are paired
bootstrap speedups.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from hb_core.latency import DEFAULT_SAGEMAKER_PROFILE, PROFILES, Latency  # noqa: E402

CAP_TIMES_ORACLE = 60.0
OURS = ("Random", "HB-stop", "HB-promo", "HB-stop-barrier", "HB-promo-barrier")
PEERS = ("synetune-ASHA", "raytune-ASHA")
#: The issue's table: (start-up, metric delay) with no warm pool, and its warm-pool row as a 20 s start-up.
ISSUE_ROWS = ((0, 0), (0, 60), (0, 300), (180, 300), (20, 60))
TARGET = Latency(startup_seconds=180, warm_startup_seconds=20, metric_delay_seconds=60, stop_delay_seconds=30)


def latency_of(name: str) -> Latency:
    if name == "target":
        return TARGET
    if name.startswith("issue-s"):
        start, delay = name[len("issue-s"):].split("-d")
        return Latency(startup_seconds=float(start), metric_delay_seconds=float(delay))
    return PROFILES[name]


def one(dataset: str, method: str, seed: int, workers: int, profile: str) -> tuple[str, str, int, str, float, dict[str, Any]]:
    import logging

    logging.disable(logging.WARNING)
    import nasbench
    from harness import run_ours, run_policy

    task = nasbench.task(dataset)
    cap = CAP_TIMES_ORACLE * nasbench.oracle(dataset)[0]
    latency = latency_of(profile)
    if method in OURS:
        run = run_ours(task, method, seed, workers, cap, latency=latency)
    else:
        from peers import PEERS as FACTORIES

        run = run_policy(FACTORIES[method](task, seed), task, method=method, seed=seed, workers=workers, cap=cap,
                         latency=latency)
    extra = {"trials": run.trials, "epochs": run.epochs, **{k: v for k, v in run.extra.items() if k != "peak_running"}}
    return dataset, method, seed, profile, min(run.time_to(task.hard_target), cap), extra


#: ``make bench``'s latency part (``benchmarks/run.py``, ``--parts latency``): ideal, the product's default
#: SageMaker profile and the issue's target, ours and the peers under each.
BENCH_PROFILES = ("ideal", DEFAULT_SAGEMAKER_PROFILE, "target")

Result = tuple[str, str, int, str, float, dict[str, Any]]


def measure(datasets: Sequence[str], profiles: Sequence[str], methods: Sequence[str], workers: int, seeds: int,
            jobs: int, peer_profiles: set[str] | None = None) -> tuple[list[Result], float]:
    """Every (data set, profile, method, seed) run, the peers only under ``peer_profiles`` (None: every
    profile), in ``jobs`` processes; (results, seconds)."""
    work = [(d, m, s, workers, p) for d in datasets for p in profiles for m in methods for s in range(seeds)
            if m in OURS or peer_profiles is None or p in peer_profiles]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, *zip(*work), chunksize=4))
    return results, time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--datasets", default="cifar10,cifar100,imagenet")
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--profiles", default=",".join(
        ["ideal", DEFAULT_SAGEMAKER_PROFILE, "sagemaker-cloudwatch", "target",
         *(f"issue-s{s}-d{d}" for s, d in ISSUE_ROWS[1:])]))
    parser.add_argument("--methods", default=",".join(OURS + PEERS))
    parser.add_argument("--peer-profiles", default=f"ideal,{DEFAULT_SAGEMAKER_PROFILE},target",
                        help="the profiles the peers run under (ours run under every profile)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
    args = parser.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    profiles = [p for p in args.profiles.split(",") if p]
    methods = [m for m in args.methods.split(",") if m]
    for p in profiles:
        latency_of(p)  # a bad name fails now, not in a worker
    peer_profiles = set(args.peer_profiles.split(","))
    results, seconds = measure(datasets, profiles, methods, args.workers, args.seeds, args.jobs, peer_profiles)
    command = "python benchmarks/latency.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(results, datasets, profiles, methods, args.workers, args.seeds, seconds, command)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def report(results: Sequence[Sequence[Any]], datasets: Sequence[str], profiles: Sequence[str],
           methods: Sequence[str], workers: int, seeds: int, seconds: float, command: str, heading: str = "#") -> str:
    """The Markdown report; ``heading`` is its title's level (``##`` inside ``RESULTS.md``), data sets one below."""
    import nasbench
    from tta import speedup, summarize

    times: dict[tuple[str, str, str], list[float]] = {}
    extras: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for dataset, method, seed, profile, t, extra in sorted(results, key=lambda r: r[2]):
        times.setdefault((dataset, profile, method), []).append(t)
        extras.setdefault((dataset, profile, method), []).append(extra)
    lines = [
        f"{heading} Hyperband under latency: NAS-Bench-201, ours and the peers under the same delays",
        "",
        f"Command: `{command}` ({seconds:.0f} s on {os.cpu_count()} CPUs). {workers} workers, {seeds} seeds per cell,",
        "paired by seed. Time-to-target (top-1% accuracy) in virtual seconds: median [95% bootstrap interval];",
        f"a run that misses within {CAP_TIMES_ORACLE:.0f} x the oracle's time counts at that cap (`>=`).",
        "Ratios are paired bootstrap speedups; `vs ideal` is a ratio divided by the same ratio under `ideal`.",
        "",
        "Profiles (start-up / warm start / metric delay / stop delay / poll, seconds):",
        "",
    ]
    for p in profiles:
        lat = latency_of(p)
        warm = "-" if lat.warm_startup_seconds is None else f"{lat.warm_startup_seconds:g}"
        lines.append(f"- `{p}`: {lat.startup_seconds:g} / {warm} / {lat.metric_delay_seconds:g} / "
                     f"{lat.stop_delay_seconds:g} / {lat.poll_interval_seconds:g}")
    for dataset in datasets:
        cap = CAP_TIMES_ORACLE * nasbench.oracle(dataset)[0]
        lines += ["", f"{heading}# {nasbench.DATASETS[dataset][0]}", ""]
        header = ["profile", *methods]
        pairs = (("Random", "HB-stop"), ("Random", "HB-promo"), ("HB-promo", "HB-stop"),
                 ("Random", "HB-stop-barrier"), ("Random", "HB-promo-barrier"))
        ratio_pairs = [(a, b) for a, b in pairs if a in methods and b in methods]
        header += [f"{a}/{b}" for a, b in ratio_pairs]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        ideal_ratio: dict[tuple[str, str], float] = {}
        for p in profiles:
            row = [f"`{p}`"]
            for m in methods:
                got = times.get((dataset, p, m))
                row.append(summarize(got, cap).cell() if got else "")
            for a, b in ratio_pairs:
                ta, tb = times.get((dataset, p, a)), times.get((dataset, p, b))
                if not ta or not tb:
                    row.append("")
                    continue
                r, low, high = speedup(ta, tb, paired=True)
                if p == "ideal":
                    ideal_ratio[(a, b)] = r
                rel = f"; {r / ideal_ratio[(a, b)]:.2f} vs ideal" if (a, b) in ideal_ratio and p != "ideal" else ""
                row.append(f"{r:.2f}x [{low:.2f}, {high:.2f}]{rel}")
            lines.append("| " + " | ".join(row) + " |")
        lines += ["", "Trained epochs, judged epochs (what the controller had seen when it decided each stop) and "
                  "billed job-hours per run (median; ours only: trained includes the epochs trained while a stop "
                  "was landing, billed includes warm-pool retention):", ""]
        lines += ["| profile | " + " | ".join(m for m in methods if m in OURS) + " |",
                  "|---|" + "---|" * len([m for m in methods if m in OURS])]
        for p in profiles:
            row = [f"`{p}`"]
            for m in (m for m in methods if m in OURS):
                ex = extras.get((dataset, p, m)) or []
                if not ex:
                    row.append("")
                    continue
                import numpy as np

                trained = np.median([e.get("trained", 0) for e in ex])
                judged = np.median([e.get("judged", e["epochs"]) for e in ex])
                billed = np.median([e.get("billed", 0.0) for e in ex]) / 3600
                row.append(f"{trained:,.0f} trained / {judged:,.0f} judged, {billed:,.1f} h")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
