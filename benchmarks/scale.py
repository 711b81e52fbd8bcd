"""Scale of the controller: 10,000 trials on 200 simulated workers, and how a decision grows with n.

    python benchmarks/scale.py [--trials 10000] [--workers 200] [--repeats 3]

Prints, for the virtual-time run, the wall-clock seconds (median of the
repeats), decision rounds, and the microseconds per round; then the cost of a
single rung decision against the number of values already at the rung, which
must grow like log n (bisection) and not like n; and the resource ratio of
ASHA against Random on constant curves. Writes the same to benchmarks/SCALE.md.
Timings are noisy on a shared machine: read the ratios, not the digits.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hb_core  # noqa: E402
from hb_core.controller import decide, new_state  # noqa: E402
from hb_core.curves import make_curve, mlp_epoch_seconds  # noqa: E402
from hb_core.events import Event, MetricReported, TrialStarted  # noqa: E402
from hb_core.pstruct import SortedItems  # noqa: E402
from hb_core.state import Rung  # noqa: E402
from tests.helpers import config  # noqa: E402


def big_run(trials: int, workers: int) -> tuple[float, int, int]:
    cfg = config("Hyperband", parallel=workers, max_jobs=trials, max_resource=81)  # past AMT's quotas: hb_core.amt
    objective, _ = make_curve("quadratic", cfg.space)
    start = time.perf_counter()
    result = hb_core.simulate(cfg, objective, cost=mlp_epoch_seconds, n_workers=workers)
    return time.perf_counter() - start, result.state.revision, len(result.trials)


def decision_cost(n: int, repeats: int = 2000) -> float:
    """Microseconds for one rung decision when the rung already holds n values."""
    cfg = config("Hyperband", parallel=1, max_jobs=10)
    state, _ = decide(new_state(cfg, now=0.0), [], 0.0)
    keys = SortedItems(sorted(-(i / n) for i in range(n)))  # what Rung's __post_init__ would build from a tuple
    state = dataclasses.replace(state, rungs=((Rung(1, keys), *state.rungs[0][1:]),))
    state, _ = decide(state, [TrialStarted("0000", 1, 0.0)], 0.0)
    event: list[Event] = [MetricReported("0000", 1, 1.0, 0.5)]
    start = time.perf_counter()
    for _ in range(repeats):
        decide(state, event, 1.0)
    return (time.perf_counter() - start) / repeats * 1e6


def resource_ratio(seeds: int = 5) -> list[float]:
    ratios = []
    for seed in range(seeds):
        hb = config("Hyperband", parallel=5, max_jobs=100, seed=seed)
        rnd = config("Random", parallel=5, max_jobs=100, seed=seed)
        objective, _ = make_curve("constant", hb.space, seed=seed)
        ratios.append(hb_core.simulate(hb, objective).total_resource / hb_core.simulate(rnd, objective).total_resource)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    runs = [big_run(args.trials, args.workers) for _ in range(args.repeats)]
    seconds = statistics.median(r[0] for r in runs)
    rounds, n_trials = runs[0][1], runs[0][2]
    lines = [
        "# Controller scale",
        "",
        f"Command: `python benchmarks/scale.py --trials {args.trials} --workers {args.workers} "
        f"--repeats {args.repeats}`",
        "",
        f"- {n_trials} trials on {args.workers} simulated workers (Hyperband, eta=3, MaxResource 81): "
        f"median {seconds:.1f} s wall clock over {args.repeats} runs, {rounds} decision rounds, "
        f"{seconds / rounds * 1e6:.0f} us per round (objective and cost functions included).",
        "",
        "| values at the rung | us per rung decision |",
        "|---|---|",
    ]
    for n in (10, 100, 1_000, 10_000, 100_000):
        lines.append(f"| {n} | {statistics.median(decision_cost(n) for _ in range(3)):.1f} |")
    ratios = resource_ratio()
    lines += [
        "",
        f"- Constant curves, 100 trials, eta=3: ASHA (stopping) spent {statistics.median(ratios):.3f}x the "
        f"resource of Random (median of 5 seeds; per seed {', '.join(f'{r:.3f}' for r in ratios)}).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (Path(__file__).resolve().parent / "SCALE.md").write_text(text)


if __name__ == "__main__":
    main()
