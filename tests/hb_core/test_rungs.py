from __future__ import annotations

import collections

import pytest

from hb_core.rungs import bracket_for, bracket_weights, keep_count, promote_count, rank, rung_levels, stable_unit


@pytest.mark.parametrize(
    ("min_r", "max_r", "eta", "expected"),
    [
        (1, 27, 3, (1, 3, 9, 27)),
        (1, 20, 3, (1, 3, 9, 20)),
        (1, 81, 3, (1, 3, 9, 27, 81)),
        (2, 10, 2, (2, 4, 8, 10)),
        (1, 2, 3, (1, 2)),
        (5, 6, 4, (5, 6)),
        (1, 16, 4, (1, 4, 16)),
        (3, 100, 3, (3, 9, 27, 81, 100)),
    ],
)
def test_rung_levels(min_r: int, max_r: int, eta: int, expected: tuple[int, ...]) -> None:
    assert rung_levels(min_r, max_r, eta) == expected


@pytest.mark.parametrize(
    ("n", "eta", "kept", "promotable"),
    [(1, 3, 1, 0), (2, 3, 1, 0), (3, 3, 1, 1), (4, 3, 2, 1), (6, 3, 2, 2), (7, 3, 3, 2), (9, 3, 3, 3),
     (10, 2, 5, 5), (11, 2, 6, 5), (1, 2, 1, 0)],
)
def test_keep_and_promote_counts(n: int, eta: int, kept: int, promotable: int) -> None:
    assert keep_count(n, eta) == kept
    assert promote_count(n, eta) == promotable


@pytest.mark.parametrize(
    ("keys", "key", "expected"),
    [((), 0.5, 1), ((0.1, 0.2, 0.3), 0.0, 1), ((0.1, 0.2, 0.3), 0.25, 3), ((0.1, 0.2, 0.2, 0.3), 0.2, 2),
     ((0.1, 0.2), 0.9, 3)],
)
def test_rank_counts_strictly_better_keys(keys: tuple[float, ...], key: float, expected: int) -> None:
    assert rank(keys, key) == expected


def test_bracket_weights_follow_the_hyperband_paper() -> None:
    # R = 81, eta = 3: s_max = 4, the paper's n per bracket s=4..0 is 81, 34, 15, 8, 5.
    weights = bracket_weights(5, 5, 3)
    counts = [81, 34, 15, 8, 5]
    assert weights == pytest.approx([c / sum(counts) for c in counts])
    assert bracket_weights(4, 1, 3) == (1.0,)


def test_stable_unit_is_stable_and_spread() -> None:
    assert stable_unit("job", "0001") == stable_unit("job", "0001")
    assert stable_unit("job", "0001") != stable_unit("job", "0002")
    values = [stable_unit("job", str(i)) for i in range(2000)]
    assert 0.45 < sum(values) / len(values) < 0.55
    assert all(0.0 <= v < 1.0 for v in values)


def test_bracket_for_matches_weights_and_is_deterministic() -> None:
    weights = bracket_weights(4, 3, 3)
    picks = [bracket_for("job-a", f"{i:04d}", weights) for i in range(3000)]
    assert picks == [bracket_for("job-a", f"{i:04d}", weights) for i in range(3000)]
    shares = collections.Counter(picks)
    for bracket, weight in enumerate(weights):
        assert shares[bracket] / 3000 == pytest.approx(weight, abs=0.04)
