"""Tables and plots from benchmark runs: one :class:`Block` per task and worker count.

A block holds every run of every method on one task with one worker count,
the targets, the cap and the oracle. :func:`method_table` renders its
per-method table (median time-to-target with a 95% bootstrap interval,
fraction reaching the target, speedups, ratio to the oracle);
:func:`headline_table` the one-line-per-block summary; :func:`plot` the
median and inter-quartile best-so-far curves as a PNG (matplotlib, Agg).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from harness import RunResult
from tta import Summary, censor, quantile_band, speedup, summarize

__all__ = ["REMOVED_METHODS", "Block", "headline_table", "method_table", "pairs_table", "peer_table", "plot"]

OURS_ORDER = ("Random", "Bayesian", "HB-stop", "HB-promo", "HB-MFGP", "HB-delayed", "HB-promo-delayed")
#: Our Hyperband variants (the "best HB" of the headline is the fastest of those present).
OURS_HB = ("HB-stop", "HB-promo", "HB-MFGP", "HB-delayed", "HB-promo-delayed")
#: Methods of ours that no longer exist (``Sampler: KDE`` was removed): their runs in a saved ``raw.json.gz`` are
#: dropped when it is re-rendered, rather than shown as a peer.
REMOVED_METHODS = ("HB-KDE",)
#: The method of ours each peer is compared with first: same scheduling rule and sampler family.
PEER_MATCH = {"optuna-SHA-random": "HB-stop", "synetune-ASHA": "HB-stop", "raytune-ASHA": "HB-stop",
              "optuna-SHA": "HB-MFGP", "optuna-HB": "HB-MFGP", "synetune-MOBSTER": "HB-MFGP",
              "synetune-HyperTune": "HB-MFGP", "synetune-PASHA": "HB-stop"}
#: Pairs of our methods compared seed by seed in :func:`pairs_table`: (baseline, variant).
OUR_PAIRS = (("HB-stop", "HB-delayed"), ("HB-promo", "HB-promo-delayed"), ("HB-stop", "HB-MFGP"))


@dataclass
class Block:
    """Runs of several methods on one task with one worker count (module docstring)."""

    key: str
    title: str
    workers: int
    targets: tuple[float, ...]
    cap: float
    oracle: float
    floor: float
    unit: str = "s"
    runs: dict[str, list[RunResult]] = field(default_factory=dict)
    oracles: dict[float, float] = field(default_factory=dict)  # per target, when they differ from ``oracle``

    def oracle_at(self, target: float) -> float:
        return self.oracles.get(target, self.oracle)

    def methods(self) -> list[str]:
        ours = [m for m in OURS_ORDER if m in self.runs]
        return ours + sorted(m for m in self.runs if m not in OURS_ORDER)

    def times(self, method: str, target: float) -> np.ndarray:
        return censor([run.time_to(target) for run in self.runs[method]], self.cap)

    def summary(self, method: str, target: float) -> Summary:
        return summarize([run.time_to(target) for run in self.runs[method]], self.cap)

    def seeds(self, method: str) -> list[int]:
        return [run.seed for run in self.runs[method]]

    def ratio(self, slower: str, faster: str, target: float) -> tuple[float, float, float] | None:
        if slower not in self.runs or faster not in self.runs:
            return None
        paired = slower in OURS_ORDER and faster in OURS_ORDER and self.seeds(slower) == self.seeds(faster)
        return speedup(self.times(slower, target), self.times(faster, target), paired=paired)


def ratio_cell(ratio: tuple[float, float, float] | None) -> str:
    if ratio is None:
        return "–"
    value, low, high = ratio
    return f"{value:.2f}x [{low:.2f}, {high:.2f}]"


def _seconds(x: float, cap: float) -> str:
    text = f"{x:,.0f}" if x >= 100 else f"{x:.3g}"
    return f">={text}" if x >= cap else text


def summary_cell(s: Summary) -> str:
    return f"{_seconds(s.median, s.cap)} [{_seconds(s.low, s.cap)}, {_seconds(s.high, s.cap)}]"


def method_table(block: Block, target: float) -> list[str]:
    """The per-method table of one block at one target (markdown lines)."""
    lines = [
        (f"| method | runs | reached | median time-to-target ({block.unit}) [95% CI] | Random/X | Bayesian/X "
        "| X/oracle | trials started (median) |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for method in block.methods():
        s = block.summary(method, target)
        oracle = block.oracle_at(target)
        over_oracle = f"{s.median / oracle:.1f}" if math.isfinite(oracle) and oracle > 0 else "–"
        if s.censored_median and over_oracle != "–":
            over_oracle = ">=" + over_oracle
        trials = int(np.median([run.trials for run in block.runs[method]]))
        lines.append(
            f"| {method} | {s.runs} | {s.reached}/{s.runs} ({100 * s.fraction:.0f}%) | {summary_cell(s)} | "
            f"{ratio_cell(block.ratio('Random', method, target)) if method != 'Random' else '1'} | "
            f"{ratio_cell(block.ratio('Bayesian', method, target)) if method != 'Bayesian' else '1'} | "
            f"{over_oracle} | {trials} |"
        )
    return lines


def peer_table(blocks: Sequence[Block]) -> list[str]:
    """Peer / ours at the hard target for every block with peers: >1 means ours is faster."""
    lines = ["| task | workers | peer | vs | peer/ours [95% CI] | peer/HB-stop [95% CI] | peer/HB-promo [95% CI] |",
             "|---|---|---|---|---|---|---|"]
    for block in blocks:
        target = max(block.targets)
        for peer, ours in PEER_MATCH.items():
            if peer not in block.runs:
                continue
            lines.append(f"| {block.title} | {block.workers} | {peer} | {ours} | "
                         f"{ratio_cell(block.ratio(peer, ours, target))} | "
                         f"{ratio_cell(block.ratio(peer, 'HB-stop', target))} | "
                         f"{ratio_cell(block.ratio(peer, 'HB-promo', target))} |")
    return lines


def headline_table(blocks: Sequence[Block]) -> list[str]:
    """One line per block and target (hardest first): medians of the main methods and the speedups.

    Columns of ours appear when some block has runs of them; ``HB-stop/HB-MFGP`` (the model-based gain) with
    HB-MFGP; ``best HB/oracle`` is the fastest of ours over the oracle at that target.
    """
    cols = tuple(m for m in OURS_ORDER if any(m in b.runs for b in blocks))
    gain = "HB-MFGP" in cols and "HB-stop" in cols
    lines = [
        "| task | workers | target | oracle | " + " | ".join(cols) + " | best peer | "
        + ("Random/HB-stop | Bayesian/HB-stop | " if "Random" in cols else "")
        + ("HB-stop/HB-MFGP | " if gain else "") + "best peer/best HB | best HB/oracle |",
        "|---|---|---|---|" + "---|" * len(cols) + "---|" + ("---|---|" if "Random" in cols else "")
        + ("---|" if gain else "") + "---|---|",
    ]
    for block in blocks:
        for target in sorted(block.targets, reverse=True):
            cells = []
            for m in cols:
                cells.append(_seconds(block.summary(m, target).median, block.cap) if m in block.runs else "–")
            peers = [m for m in block.runs if m not in OURS_ORDER]
            best_peer = min(peers, key=lambda m: block.summary(m, target).median) if peers else None
            ours = [m for m in OURS_HB if m in block.runs]
            best_hb = min(ours, key=lambda m: block.summary(m, target).median)
            peer_cell = (f"{best_peer} {_seconds(block.summary(best_peer, target).median, block.cap)}"
                         if best_peer else "–")
            vs_peer = f"{ratio_cell(block.ratio(best_peer, best_hb, target))} ({best_hb})" if best_peer else "–"
            oracle = block.oracle_at(target)
            hb_median = block.summary(best_hb, target)
            over = f"{'>=' if hb_median.censored_median else ''}{hb_median.median / oracle:.1f}"
            lines.append(
                f"| {block.title} | {block.workers} | {target:g} | {_seconds(oracle, math.inf)} | "
                + " | ".join(cells) + f" | {peer_cell} | "
                + (f"{ratio_cell(block.ratio('Random', 'HB-stop', target))} | "
                   f"{ratio_cell(block.ratio('Bayesian', 'HB-stop', target))} | " if "Random" in cols else "")
                + (f"{ratio_cell(block.ratio('HB-stop', 'HB-MFGP', target))} | " if gain else "")
                + f"{vs_peer} | {over} |"
            )
    return lines


def pairs_table(blocks: Sequence[Block], pairs: Sequence[tuple[str, str]] = OUR_PAIRS) -> list[str]:
    """Our methods side by side on the same seeds, every block and target: ``A/B`` above 1 means B is faster;
    ``B faster/slower`` counts the seeds where B reached the target sooner / later than A (ties: both at the cap
    or equal)."""
    lines = ["| task | workers | target | A | B | runs | median A | median B | A/B [95% CI] | B faster/slower |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for a, b in pairs:
        for block in blocks:
            if a not in block.runs or b not in block.runs or block.seeds(a) != block.seeds(b):
                continue
            for target in sorted(block.targets, reverse=True):
                ta, tb = block.times(a, target), block.times(b, target)
                lines.append(
                    f"| {block.title} | {block.workers} | {target:g} | {a} | {b} | {len(ta)} | "
                    f"{_seconds(block.summary(a, target).median, block.cap)} | "
                    f"{_seconds(block.summary(b, target).median, block.cap)} | "
                    f"{ratio_cell(block.ratio(a, b, target))} | {int((tb < ta).sum())}/{int((tb > ta).sum())} |")
    return lines


STYLE = {
    "Random": ("tab:gray", "-"), "Bayesian": ("tab:brown", "-"), "HB-stop": ("tab:blue", "-"),
    "HB-promo": ("tab:cyan", "-"), "optuna-HB": ("tab:orange", "--"),
    "optuna-SHA": ("tab:red", "--"), "optuna-SHA-random": ("tab:pink", "--"), "synetune-ASHA": ("tab:green", "--"),
    "raytune-ASHA": ("tab:olive", "--"), "HB-MFGP": ("black", "-"), "synetune-MOBSTER": ("tab:green", ":"),
    "synetune-HyperTune": ("tab:red", ":"), "synetune-PASHA": ("tab:purple", ":"),
    "HB-delayed": ("tab:blue", "-."), "HB-promo-delayed": ("tab:cyan", "-."),
}


def plot(blocks: Sequence[Block], path: Path, title: str) -> None:
    """Median (line) and inter-quartile range (band) of best-so-far vs time, one panel per block."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(blocks), figsize=(5.2 * len(blocks), 4.2), squeeze=False)
    legend: dict[str, object] = {}
    for ax, block in zip(axes[0], blocks, strict=True):
        start = min((run.trace[0][0] for runs in block.runs.values() for run in runs if run.trace), default=1.0)
        grid = np.geomspace(max(start * 0.8, block.cap * 1e-5), block.cap, 300)
        first = math.inf
        for method in block.methods():
            traces = [run.trace for run in block.runs[method]]
            q1, q2, q3 = quantile_band(traces, grid, block.floor)
            color, style = STYLE.get(method, ("black", ":"))
            (line,) = ax.plot(grid, q2, style, color=color, lw=1.4)
            ax.fill_between(grid, q1, q3, color=color, alpha=0.12, lw=0)
            legend.setdefault(method, line)
            above = np.flatnonzero(q2 >= min(block.targets) - 0.1)
            if above.size:
                first = min(first, float(grid[above[0]]))
        for target in block.targets:
            ax.axhline(target, color="black", lw=0.7, ls=":")
        if math.isfinite(block.oracle):
            legend.setdefault("oracle", ax.axvline(block.oracle, color="black", lw=0.7, ls="-."))
        hard = max(block.targets)
        low = min(block.targets) - 0.1 if len(block.targets) > 1 else hard - 0.15
        ax.set_ylim(max(block.floor, low), hard + 0.015)
        ax.set_xscale("log")
        if math.isfinite(first):
            ax.set_xlim(min(first * 0.6, block.oracle * 0.8 if math.isfinite(block.oracle) else math.inf),
                        block.cap * 1.1)
        ax.set_xlabel(f"time ({block.unit}, log scale); runs stop at the hard target")
        ax.set_ylabel("best validation accuracy so far")
        ax.set_title(f"{block.title}, {block.workers} workers", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(list(legend.values()), list(legend.keys()), fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
