"""Load: one controller with 1,000 concurrent simulated trials and 10,000 in total.

    python benchmarks/load.py [--trials 10000] [--concurrent 1000] [--out FILE]

Runs the real Tuner loop on the simulated backend and, every round, records the
CPU time of the round and the Python heap in use (tracemalloc), then prints
them per tenth of the run. CPU per round must stay flat; the heap grows with
the trials launched (the state keeps every trial and its points, for the UI
and for restarts), so the flat quantity is the heap per trial. Also reports the state's JSON size at the end,
and the controller's CPU per trial: the CPU of every round, summed, over the trials run (the figure issue 14's
event-driven rounds must not raise). Writes benchmarks/LOAD.md (or ``--out``). Figures are noisy on a shared machine: read the
trend across the deciles, not the digits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hb_core.backends.clock import VirtualClock  # noqa: E402
from hb_core.backends.simulated import SimulatedBackend  # noqa: E402
from hb_core.backends.stores import MemoryStore  # noqa: E402
from hb_core.curves import mlp_accuracy, mlp_epoch_seconds  # noqa: E402
from hb_core.runner import Tuner  # noqa: E402
from tests.helpers import config  # noqa: E402


async def measure(trials: int, concurrent: int) -> tuple[list[tuple[int, float, int]], int, int]:
    cfg = config("Hyperband", parallel=concurrent, max_jobs=trials, max_resource=81)  # past AMT's quotas: hb_core.amt
    clock = VirtualClock()
    backend = SimulatedBackend(mlp_accuracy, clock, cost=mlp_epoch_seconds)
    tuner = Tuner(cfg, backend, MemoryStore(), clock, job_name="load", poll_interval=math.inf)
    samples: list[tuple[int, float, int]] = []  # (trials so far, CPU seconds of the round, heap bytes)
    tracemalloc.start()
    state = await tuner.start()
    while not state.done:
        await clock.sleep_until(tuner._wake_time())
        start = time.process_time()
        state = await tuner.step()
        samples.append((len(state.trials), time.process_time() - start, tracemalloc.get_traced_memory()[0]))
    tracemalloc.stop()
    return samples, len(json.dumps(state.to_dict())), backend.peak_running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--concurrent", type=int, default=1_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "LOAD.md")
    args = parser.parse_args()
    started = time.perf_counter()
    samples, state_bytes, peak = asyncio.run(measure(args.trials, args.concurrent))
    wall = time.perf_counter() - started
    tenth = max(1, len(samples) // 10)
    lines = [
        "# Load: one controller, many simulated trials",
        "",
        f"Command: `python benchmarks/load.py --trials {args.trials} --concurrent {args.concurrent}` "
        f"({len(samples)} rounds, {wall:.0f} s wall clock with tracemalloc on; peak running jobs {peak}; "
        f"final state JSON {state_bytes / 1e6:.1f} MB). Controller CPU over every round "
        f"{sum(s[1] for s in samples):.1f} s, {1e3 * sum(s[1] for s in samples) / samples[-1][0]:.2f} ms per trial.",
        "",
        "| part of the run | trials launched by then | median CPU per round (us) | heap in use (MB) | heap per trial (KB) |",
        "|---|---|---|---|---|",
    ]
    for k in range(10):
        part = samples[k * tenth : (k + 1) * tenth] or samples[-1:]
        lines.append(f"| {k + 1}/10 | {part[-1][0]} | {statistics.median(s[1] for s in part) * 1e6:.0f} | "
                     f"{part[-1][2] / 1e6:.1f} | {part[-1][2] / part[-1][0] / 1e3:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
