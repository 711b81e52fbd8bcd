"""Entry point of the benchmarks: ``make bench-quick``, ``make bench`` (the issue's plan), or more seeds.

    python benchmarks/run.py --profile quick   # a few minutes; prints the tables, writes results/quick/
    python benchmarks/run.py --profile bench   # the issue's plan: ~70 min, plus 30-45 min the first time
                                               # (the MLP curve cache); writes results/RESULTS.md and the plots
    python benchmarks/run.py --profile full    # bench with more MLP seeds (8 wall-clock, 80 virtual)
    python benchmarks/run.py --profile models --parts nas   # model-based HB against every peer (make bench-models)
    python benchmarks/run.py --profile delayed --parts nas  # the delayed rung rule at 16 and 64 workers

    # add a method to a saved run, or measure one part again, and re-render:
    python benchmarks/run.py --profile bench --from-raw benchmarks/results/raw.json.gz \
        --parts nas --methods raytune-ASHA --note "why" --out benchmarks/results

Parts, in this order (each can be skipped, see ``--help``):

1. ``real``: the MLP on the local backend, wall clock (:mod:`mlp_real`), alone on the machine.
2. ``mlp``: the same MLP on the virtual 5-worker clock (:mod:`mlp_real`).
3. ``nas``: NAS-Bench-201 in virtual time (:mod:`nasbench`), ours and the peers (:mod:`peers`), under
   ``--latency`` (default ``ideal``; ``benchmarks/latency.py`` runs every NAS block under ``ideal`` and
   the product's SageMaker profile side by side, ``make bench-latency``).
4. ``cost``: the controller's own cost (:mod:`controller_cost`).
5. ``latency``: every 5-worker NAS block under ``ideal``, the product's default SageMaker profile and the
   issue's ``target``, ours and the peers under the same delays (:func:`latency.measure`, the code of
   ``make bench-latency``, with the profile's ``latency_seeds``), rendered side by side in ``RESULTS.md``.
   Re-run alone into a saved report with ``--from-raw benchmarks/results/raw.json.gz --parts latency``.

Runs are paired by seed: seed ``s`` is ``RandomSeed`` s for our methods and the
peers' sampler seed. Parts 2 and 3 run in ``--jobs`` processes (one BLAS
thread each). Every run's trace is saved to ``raw.json.gz`` beside the report
(:func:`render.raw`); ``--from-raw`` re-renders the report from it.

Size: a little over 400 lines, the profiles and one function per part of the report; the
measuring lives in the modules each part names above, and the report in ``render``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
from harness import OURS, RunResult  # noqa: E402

RESULTS = HERE / "results"
CHEAP_OURS = ("Random", "HB-stop", "HB-promo")
CHEAP_PEERS = ("synetune-ASHA", "raytune-ASHA", "optuna-SHA-random")
MODEL_PEERS = ("optuna-HB", "optuna-SHA")
#: Virtual-time cap per worker count, as a multiple of the oracle's time (runs that miss count at the cap).
CAP_TIMES_ORACLE = {5: 60.0, 16: 25.0, 64: 10.0}


@dataclass(frozen=True)
class NasPlan:
    """Seeds per method on one data set; a method with 0 seeds (or absent) is not run."""

    dataset: str
    seeds: dict[str, dict[int, int]]  # method -> workers -> seeds


@dataclass(frozen=True)
class Profile:
    name: str
    real_methods: tuple[str, ...]
    real_seeds: int
    real_cap: float
    mlp_methods: tuple[str, ...]
    mlp_seeds: int
    mlp_cap: float
    nas: tuple[NasPlan, ...]
    cost_trials: tuple[int, ...]
    workers: tuple[int, ...] = (5, 16, 64)
    notes: list[str] = field(default_factory=list)
    #: NAS targets, as fractions of the best cells (``--tops``); runs stop at the hardest.
    nas_tops: tuple[float, ...] = (0.01,)
    seed_offset: int = 0
    #: seeds per method and profile of the ``latency`` part (0: the profile has no latency part)
    latency_seeds: int = 0


def _nas(dataset: str, cheap: int, model: int, tpe: dict[int, int], bayes: dict[int, int],
         workers: Sequence[int] = (5, 16, 64)) -> NasPlan:
    seeds: dict[str, dict[int, int]] = {}
    for method in (*CHEAP_OURS, *CHEAP_PEERS):
        seeds[method] = {w: cheap for w in workers}
    seeds["HB-MFGP"] = {w: model for w in workers}
    for method in MODEL_PEERS:
        seeds[method] = {w: tpe.get(w, 0) for w in workers}
    seeds["Bayesian"] = {w: bayes.get(w, 0) for w in workers}
    return NasPlan(dataset, seeds)


ALL_OURS = tuple(m for m in OURS if m != "HB-MFGP")  # the bench profile's methods; HB-MFGP: the models profile
#: The model-based comparison (``--profile models``): our model-based Hyperband against HB-stop, the strongest
#: random-sampling peers and Syne Tune's model-based ones, at the top-1% and top-0.1% targets, 5 and 16 workers.
MODEL_METHODS = ("HB-stop", "HB-MFGP", "HB-delayed", "optuna-SHA", "synetune-ASHA", "raytune-ASHA",
                 "synetune-MOBSTER", "synetune-HyperTune", "synetune-PASHA")
#: The delayed rung rule at high parallelism (``--profile delayed``): ASHA as today against ``MinRungResults``,
#: both variants, at 16 and 64 workers.
DELAYED_METHODS = ("HB-stop", "HB-delayed", "HB-promo", "HB-promo-delayed")


def _models(dataset: str, seeds: int, costly: int) -> NasPlan:
    """Syne Tune's GP peers cost 20-300x more CPU per run than the rest (MOBSTER: 2-5 CPU minutes at 5 workers,
    more than 5 at 16): ``costly`` seeds for Hyper-Tune, and for MOBSTER at 5 workers only."""
    plan = {m: {5: seeds, 16: seeds} for m in MODEL_METHODS}
    plan["synetune-HyperTune"] = {5: costly, 16: costly}
    plan["synetune-MOBSTER"] = {5: costly, 16: 0}
    return NasPlan(dataset, plan)


#: The issue's plan on every data set and worker count: 50 seeds for the cheap methods and HB-MFGP, 20 for Bayesian
#: and TPE.
NAS_ISSUE_PLAN = tuple(_nas(d, 50, 50, {5: 20, 16: 20, 64: 20}, {5: 20, 16: 20, 64: 20})
                       for d in ("cifar10", "cifar100", "imagenet"))
PROFILES = {
    "quick": Profile(
        "quick", ("Random", "Bayesian", "HB-stop"), 2, 120.0, ("Random", "Bayesian", "HB-stop"), 3, 300.0,
        (_nas("cifar10", 8, 3, {5: 3, 16: 3}, {5: 3}),),
        (100, 1000),
    ),
    "bench": Profile(
        "bench", ALL_OURS, 5, 150.0, ALL_OURS, 40, 300.0,
        NAS_ISSUE_PLAN,
        (100, 1000, 10_000), latency_seeds=8,
    ),
    "models": Profile(
        "models", (), 0, 0.0, (), 0, 0.0, tuple(_models(d, 5, 2) for d in ("cifar10", "cifar100", "imagenet")), (),
        workers=(5, 16), nas_tops=(0.01, 0.001),
    ),
    "delayed": Profile(
        "delayed", (), 0, 0.0, (), 0, 0.0,
        tuple(NasPlan(d, {m: {16: 30, 64: 30} for m in DELAYED_METHODS}) for d in ("cifar10", "cifar100", "imagenet")),
        (), workers=(16, 64), nas_tops=(0.01, 0.001),
    ),
    "full": Profile(
        "full", ALL_OURS, 8, 180.0, ALL_OURS, 80, 300.0,
        NAS_ISSUE_PLAN,
        (100, 1000, 10_000), latency_seeds=8,
    ),
}


def only_methods(profile: Profile, methods: set[str]) -> Profile:
    """``profile`` with every part restricted to ``methods``."""
    import dataclasses

    nas = tuple(NasPlan(plan.dataset, {m: w for m, w in plan.seeds.items() if m in methods}) for plan in profile.nas)
    return dataclasses.replace(profile, real_methods=tuple(m for m in profile.real_methods if m in methods),
                               mlp_methods=tuple(m for m in profile.mlp_methods if m in methods), nas=nas)


def with_nas_seeds(profile: Profile, seeds: int | None, offset: int, datasets: str | None) -> Profile:
    """``profile`` with ``seeds`` NAS seeds per method and worker count from ``offset`` on, on ``datasets`` only."""
    import dataclasses

    nas = profile.nas
    if datasets:
        nas = tuple(plan for plan in nas if plan.dataset in {d.strip() for d in datasets.split(",")})
    if seeds is not None:
        nas = tuple(NasPlan(p.dataset, {m: {w: seeds for w in per} for m, per in p.seeds.items()}) for p in nas)
    return dataclasses.replace(profile, nas=nas, seed_offset=offset)


# ---------------------------------------------------------------- jobs (run in worker processes)

_MLP_CACHE: Any = None


def _quiet() -> None:
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("hb_core").setLevel(logging.ERROR)


def nas_job(dataset: str, method: str, seed: int, workers: int, cap: float,
            tops: tuple[float, ...] = (0.01,), latency: str = "ideal") -> RunResult:
    _quiet()
    import nasbench
    from harness import run_ours
    from peers import PEERS, run_peer

    from hb_core.latency import profile as latency_profile

    task = nasbench.task(dataset, tops)
    # every method, ours and the peers, under the same delays (harness docstring)
    lat = None if latency == "ideal" else latency_profile(latency)
    if method in PEERS:
        return run_peer(task, method, seed, workers, cap, source=(dataset, tops), latency=lat)
    return run_ours(task, method, seed, workers, cap, latency=lat)


def mlp_job(method: str, seed: int, cap: float, cache_dir: str, tag: str) -> RunResult:
    global _MLP_CACHE
    _quiet()
    import mlp_real
    from harness import run_ours

    if _MLP_CACHE is None:
        _MLP_CACHE = mlp_real.CurveCache(Path(cache_dir), tag=tag)
    before = _MLP_CACHE.trained_epochs
    result = run_ours(mlp_real.virtual_task(_MLP_CACHE), method, seed, mlp_real.WORKERS, cap)
    if _MLP_CACHE.trained_epochs != before:
        _MLP_CACHE.save()
    result.extra["trained_epochs"] = _MLP_CACHE.trained_epochs - before
    return result


# ---------------------------------------------------------------- parts


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def part_real(profile: Profile, seeds_offset: int = 0) -> tuple[list[RunResult], float]:
    import mlp_real

    _quiet()
    runs = []
    started = time.perf_counter()
    for seed in range(seeds_offset, seeds_offset + profile.real_seeds):
        for method in profile.real_methods:  # interleaved: methods of one seed run side by side in time
            run = mlp_real.real_run(method, seed, profile.real_cap)
            runs.append(run)
            reached = run.time_to(mlp_real.HARD)
            log(f"real {method} seed {seed}: {reached:.1f} s to {mlp_real.HARD} "
                f"({run.trials} trials, load {run.extra['load'][0]:.1f})")
    return runs, time.perf_counter() - started


def part_mlp(profile: Profile, jobs: int, cache_dir: Path) -> tuple[list[RunResult], float]:
    started = time.perf_counter()
    shards = [ProcessPoolExecutor(max_workers=1) for _ in range(max(1, jobs))]
    futures: list[Future[RunResult]] = []
    try:
        for seed in range(profile.mlp_seeds):  # a seed's methods share configurations: keep them in one shard
            pool = shards[seed % len(shards)]
            for method in profile.mlp_methods:
                tag = f"s{seed % len(shards)}"
                futures.append(pool.submit(mlp_job, method, seed, profile.mlp_cap, str(cache_dir), tag))
        runs = [f.result() for f in futures]
    finally:
        for pool in shards:
            pool.shutdown()
    for method in profile.mlp_methods:
        mine = [r for r in runs if r.method == method]
        log(f"mlp virtual {method}: median {np.median([min(r.time_to(0.93), profile.mlp_cap) for r in mine]):.2f} s "
            f"to 0.93 over {len(mine)} seeds")
    return runs, time.perf_counter() - started


def part_nas(profile: Profile, jobs: int,
             latency: str = "ideal") -> tuple[dict[tuple[str, int], dict[str, list[RunResult]]], dict[str, float]]:
    import nasbench

    caps = {}
    work: list[tuple[float, str, str, int, int, float, tuple[float, ...]]] = []
    for plan in profile.nas:
        oracle, _ = nasbench.oracle(plan.dataset)
        for method, per_workers in plan.seeds.items():
            for workers, seeds in per_workers.items():
                cap = CAP_TIMES_ORACLE[workers] * oracle
                caps[f"{plan.dataset}/{workers}"] = cap
                weight = {"Bayesian": 40.0, "optuna-HB": 10.0, "optuna-SHA": 8.0, "HB-MFGP": 6.0,
                          "synetune-MOBSTER": 60.0, "synetune-HyperTune": 60.0, "synetune-PASHA": 15.0,
                          }.get(method, 1.0)
                weight *= 1 + workers / 16
                for seed in range(profile.seed_offset, profile.seed_offset + seeds):
                    work.append((weight, plan.dataset, method, seed, workers, cap, profile.nas_tops))
    work.sort(key=lambda w: -w[0])  # the long ones first, so that the pool ends together
    results: dict[tuple[str, int], dict[str, list[RunResult]]] = {}
    started = time.perf_counter()
    log(f"nas: {len(work)} runs in {jobs} processes")
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [(w, pool.submit(nas_job, *w[1:], latency)) for w in work]
        for done, (w, future) in enumerate(futures, start=1):
            run = future.result()
            results.setdefault((w[1], w[4]), {}).setdefault(w[2], []).append(run)
            if done % max(1, len(work) // 20) == 0:
                log(f"nas: {done}/{len(work)} runs ({time.perf_counter() - started:.0f} s)")
    for per in results.values():
        for runs in per.values():
            runs.sort(key=lambda r: r.seed)
    return results, {"seconds": time.perf_counter() - started, **caps}


def part_cost(profile: Profile) -> tuple[list[Any], float]:
    import controller_cost

    started = time.perf_counter()
    costs = []
    for n in profile.cost_trials:
        c = controller_cost.measure(n)
        costs.append(c)
        log(f"cost {n} trials: {c.rounds} rounds, {c.cpu_per_round_us:.0f} us CPU per round, {c.state_bytes:,} B state")
    return costs, time.perf_counter() - started


def part_latency(profile: Profile, jobs: int, seeds: int | None) -> dict[str, Any]:
    """:func:`latency.measure` on every data set of the profile at 5 workers, under :data:`latency.BENCH_PROFILES`,
    ours and the peers alike."""
    import latency

    seeds = profile.latency_seeds if seeds is None else seeds
    datasets = [plan.dataset for plan in profile.nas]
    methods = [*latency.OURS, *latency.PEERS]
    profiles = list(latency.BENCH_PROFILES)
    log(f"latency: {len(datasets)} data sets x {len(profiles)} profiles x {len(methods)} methods x {seeds} seeds")
    results, seconds = latency.measure(datasets, profiles, methods, 5, seeds, jobs)
    return {"results": results, "datasets": datasets, "profiles": profiles, "methods": methods, "workers": 5,
            "seeds": seeds, "seconds": seconds}


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--parts", default="real,mlp,nas,cost,latency",
                        help="comma-separated subset of real,mlp,nas,cost,latency")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the virtual-time parts")
    parser.add_argument("--out", type=Path, default=None,
                        help="report directory (default: benchmarks/results, or benchmarks/results/quick for quick)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="MLP curve cache (default: $XDG_CACHE_HOME/airflow-hyperband-bench)")
    parser.add_argument("--from-raw", type=Path, default=None,
                        help="re-render the report from a saved raw.json (with --parts '' to run nothing again)")
    parser.add_argument("--note", dest="command_note", default=None,
                        help="with --from-raw: what the parts run again are for (kept in the report's header)")
    parser.add_argument("--seeds", type=int, default=None, help="NAS seeds per method and worker count")
    parser.add_argument("--seed-offset", type=int, default=0, help="first NAS seed (development: use another range "
                        "than the one reported)")
    parser.add_argument("--datasets", default=None, help="comma-separated subset of cifar10,cifar100,imagenet")
    parser.add_argument("--methods", default=None,
                        help="comma-separated: run only these methods (with --from-raw, their runs replace or "
                             "join the saved ones, e.g. a peer added to a saved run)")
    parser.add_argument("--latency", default="ideal",
                        help="the latency profile of the nas part (hb_core.latency.PROFILES, e.g. sagemaker-live, "
                             "the product's SageMaker defaults); benchmarks/latency.py puts profiles side by side")
    parser.add_argument("--latency-seeds", type=int, default=None,
                        help="seeds per method and profile of the latency part (default: the profile's)")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    if args.methods:
        profile = only_methods(profile, {m.strip() for m in args.methods.split(",") if m.strip()})
    profile = with_nas_seeds(profile, args.seeds, args.seed_offset, args.datasets)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    out = args.out or {"quick": RESULTS / "quick", "models": RESULTS / "models",
                       "delayed": RESULTS / "models" / "delayed"}.get(profile.name, RESULTS)
    import mlp_real
    import render

    cache_dir = args.cache_dir or mlp_real.default_cache_dir()
    started = time.perf_counter()
    log(f"profile {profile.name}: parts {sorted(parts)}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    data: dict[str, Any] = {"profile": profile.name, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                            "python": platform.python_version(), "timings": {}}
    if args.from_raw is not None:  # re-render a saved run; the parts named in --parts are run again
        opener = gzip.open if args.from_raw.suffix == ".gz" else open
        with opener(args.from_raw, "rt", encoding="utf-8") as handle:
            data = render.from_raw(json.load(handle))
        done_then = ", ".join(sorted(parts)) + (f" (only {args.methods})" if args.methods and parts else "")
        if args.command_note:
            done_then += f": {args.command_note}"
        data["rerendered"] = [*(data.get("rerendered") or []), *([done_then] if parts else [])]
        if data.get("nas") and not data.get("nas_caps"):
            import nasbench

            data["nas_caps"] = {f"{d}/{w}": CAP_TIMES_ORACLE[w] * nasbench.oracle(d)[0] for d, w in data["nas"]}
    data["nas_tops"] = list(data.get("nas_tops") or profile.nas_tops)
    joining = args.from_raw is not None and bool(args.methods)  # new runs replace or join the saved ones

    def keep(saved: list[RunResult] | None, new: list[RunResult]) -> list[RunResult]:
        ran = {r.method for r in new}
        return [r for r in saved or [] if r.method not in ran] + new if joining else new

    if "real" in parts:
        real, seconds = part_real(profile)
        data["real"], data["timings"]["real"] = keep(data.get("real"), real), seconds
    if "mlp" in parts:
        mlp, seconds = part_mlp(profile, args.jobs, cache_dir)
        data["mlp"], data["timings"]["mlp"] = keep(data.get("mlp"), mlp), seconds
    if "nas" in parts:
        nas, caps = part_nas(profile, args.jobs, args.latency)
        seconds = caps.pop("seconds")
        if joining:
            for key, per in nas.items():
                data["nas"].setdefault(key, {}).update(per)
            data["timings"]["nas"] = data["timings"].get("nas", 0.0) + seconds
        else:
            data["nas"], data["timings"]["nas"] = nas, seconds
        data["nas_caps"] = {**(data.get("nas_caps") or {}), **caps}
    if "cost" in parts:
        data["cost"], data["timings"]["cost"] = part_cost(profile)
    if "latency" in parts and (profile.latency_seeds or args.latency_seeds):
        data["latency"] = part_latency(profile, args.jobs, args.latency_seeds)
        data["timings"]["latency"] = data["latency"]["seconds"]
    cache = mlp_real.CurveCache(cache_dir)
    if args.from_raw is None:
        data["total"] = time.perf_counter() - started
    elif not data.get("total"):
        data["total"] = sum(data["timings"].values())
    command = " ".join(["benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
    if args.from_raw is not None:
        command = data.get("command") or f"benchmarks/run.py --profile {profile.name}"
    data["command"] = command
    text, blocks = render.results_markdown(profile, data, cache, command=command)
    out.mkdir(parents=True, exist_ok=True)
    (out / "RESULTS.md").write_text(text)
    render.plots(blocks, out)
    with gzip.open(out / "raw.json.gz", "wt", encoding="utf-8") as handle:
        json.dump(render.raw(data), handle)
    print(render.console_table(blocks))
    log(f"done in {data['total']:.0f} s; report: {out / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

