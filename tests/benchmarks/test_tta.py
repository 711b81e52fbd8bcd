"""Time-to-target statistics: censoring at the cap, bootstrap intervals, speedups, best-so-far."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tta
from scipy.stats import spearmanr


@pytest.mark.parametrize(
    ("trace", "target", "expected"),
    [
        ([(1.0, 0.5), (2.0, 0.8), (5.0, 0.9)], 0.8, 2.0),
        ([(1.0, 0.5), (2.0, 0.8), (5.0, 0.9)], 0.85, 5.0),
        ([(1.0, 0.5)], 0.6, math.inf),
        ([], 0.1, math.inf),
    ],
)
def test_time_to_target(trace: list[tuple[float, float]], target: float, expected: float) -> None:
    assert tta.time_to_target(trace, target) == expected


def test_censoring_counts_misses_and_late_runs_at_the_cap() -> None:
    assert tta.censor([1.0, math.inf, 150.0, 100.0], cap=100.0).tolist() == [1.0, 100.0, 100.0, 100.0]


def test_censor_rejects_a_non_positive_cap() -> None:
    with pytest.raises(ValueError, match="cap > 0"):
        tta.censor([1.0], cap=0.0)


def test_summary_counts_reached_runs_and_marks_a_censored_median() -> None:
    s = tta.summarize([1.0, math.inf, math.inf, 200.0, math.inf], cap=100.0)
    assert (s.runs, s.reached) == (5, 1)
    assert s.median == 100.0 and s.censored_median
    assert s.cell().startswith(">=100")
    assert tta.summarize([1.0, 2.0, 3.0], cap=10.0).cell() == "2 [1, 3]"


def test_bootstrap_interval_holds_the_median_and_is_reproducible() -> None:
    values = np.random.default_rng(1).exponential(10.0, size=40)
    # the ignores: tta's parameters say Sequence[float]; numpy arrays are what the benchmarks give it
    median, low, high = tta.bootstrap_median(values, seed=3)
    assert low <= median <= high
    assert tta.bootstrap_median(values, seed=3) == (median, low, high)
    wide = tta.bootstrap_median(values[:8], seed=3)
    assert wide[2] - wide[1] > high - low  # fewer runs: a wider interval


def test_bootstrap_of_identical_values_is_a_point() -> None:
    assert tta.bootstrap_median([7.0] * 5) == (7.0, 7.0, 7.0)


def test_bootstrap_needs_values() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        tta.bootstrap_median([])


def test_speedup_of_a_method_against_itself_is_one() -> None:
    values = [3.0, 5.0, 8.0, 13.0]
    assert tta.speedup(values, values, paired=True) == (1.0, 1.0, 1.0)


def test_paired_speedup_resamples_seeds_together() -> None:
    slow = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    ratio, low, high = tta.speedup(slow, slow / 2.0, paired=True)
    assert ratio == 2.0 and low == 2.0 and high == 2.0  # every paired resample has ratio exactly 2
    _, low_u, high_u = tta.speedup(slow, slow / 2.0, paired=False)
    assert low_u < 2.0 < high_u


def test_paired_speedup_needs_as_many_seeds() -> None:
    with pytest.raises(ValueError, match="paired"):
        tta.speedup([1.0, 2.0], [1.0], paired=True)


def test_best_so_far_is_a_running_maximum_step_function() -> None:
    grid = np.array([0.5, 1.0, 1.5, 3.0, 10.0])
    out = tta.best_so_far([(1.0, 0.6), (2.0, 0.5), (3.0, 0.9)], grid, floor=0.0)
    assert out.tolist() == [0.0, 0.6, 0.6, 0.9, 0.9]


def test_quantile_band_is_ordered() -> None:
    grid = np.linspace(0.0, 10.0, 11)
    traces = [[(float(i), 0.1 * i)] for i in range(1, 8)]
    q1, q2, q3 = tta.quantile_band(traces, grid, floor=0.0)
    assert np.all(q1 <= q2) and np.all(q2 <= q3)


def test_oracle_time_adds_startup_and_epochs_until_the_target() -> None:
    assert tta.oracle_time([0.5, 0.8, 0.95, 0.97], [1.0, 2.0, 3.0, 4.0], 0.9, startup=0.5) == 6.5
    assert tta.oracle_time([0.5], [1.0], 0.9) == math.inf


def test_spearman_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=50).astype(float)
    b = a + rng.normal(0, 2, size=50)
    assert tta.spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
