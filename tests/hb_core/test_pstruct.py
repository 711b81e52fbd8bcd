"""The persistent containers behave like sorted lists and lists, and old versions never change."""

from __future__ import annotations

import bisect

from hypothesis import given, settings
from hypothesis import strategies as st

from hb_core.pstruct import PVector, SortedItems

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.sampled_from([0.0, 0.5, 1.0])
operations = st.lists(st.tuples(st.sampled_from(["insert", "remove"]), values), max_size=200)


@settings(max_examples=150, deadline=None)
@given(operations=operations, probes=st.lists(values, max_size=20))
def test_sorted_items_match_a_sorted_list_and_keep_old_versions(
    operations: list[tuple[str, float]], probes: list[float]
) -> None:
    items: SortedItems[float] = SortedItems()
    reference: list[float] = []
    history = []
    for op, value in operations:
        history.append((items, list(reference)))
        if op == "insert":
            items = items.insert(value)
            bisect.insort(reference, value)
        else:
            items = items.remove(value)
            if value in reference:
                reference.remove(value)
    assert list(items) == reference and len(items) == len(reference) and items == reference
    for k in range(len(reference)):
        assert items[k] == items.kth(k) == reference[k]
    if reference:
        assert items[-1] == reference[-1]
    for probe in probes + reference[:5]:
        assert items.rank(probe) == bisect.bisect_left(reference, probe)
    for old, expected in history:
        assert list(old) == expected


def test_sorted_items_hold_tuples_and_compare_with_sequences() -> None:
    paused = SortedItems([(0.5, 3), (0.1, 7), (0.5, 1)])
    assert paused[0] == (0.1, 7) and paused.remove((0.1, 7))[0] == (0.5, 1)
    assert paused == [(0.1, 7), (0.5, 1), (0.5, 3)] and paused != [(0.1, 7)]
    assert SortedItems() == () and len(SortedItems()) == 0


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 3000), updates=st.lists(st.tuples(st.integers(0, 5000), st.integers()), max_size=50))
def test_pvector_matches_a_list_across_levels(size: int, updates: list[tuple[int, int]]) -> None:
    vector: PVector[object] = PVector(range(size))  # object: the last check appends a str
    reference = list(range(size))
    before = vector
    for index, value in updates:
        if size:
            vector = vector.set(index % size, value)
            reference[index % size] = value
    assert vector == reference and len(vector) == size
    assert before == list(range(size))  # the old version is untouched
    if size:
        assert vector[-1] == reference[-1] and vector[size // 2 : size // 2 + 40] == reference[size // 2 : size // 2 + 40]
    assert vector.append("x")[size] == "x" and len(vector) == size
