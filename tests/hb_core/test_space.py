"""Tests of hb_core.space: sampling, warping, grid, rendering and the AMT ParameterRanges layout."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hb_core.errors import ConfigError
from hb_core.space import (
    CategoricalParameter,
    ContinuousParameter,
    IntegerParameter,
    Parameter,
    ScalingType,
    SearchSpace,
)

RANGES = "HyperParameterTuningJobConfig.ParameterRanges"
P = TypeVar("P", ContinuousParameter, IntegerParameter)

EVERY_SCALING: tuple[Parameter, ...] = (
    ContinuousParameter("lin", -2.0, 3.0, ScalingType.LINEAR),
    ContinuousParameter("log", 1e-6, 1e-1, ScalingType.LOGARITHMIC),
    ContinuousParameter("rev", 0.01, 0.99, ScalingType.REVERSE_LOGARITHMIC),
    ContinuousParameter("auto_log", 1e-4, 1.0),
    ContinuousParameter("auto_lin", 0.0, 1.0),
    IntegerParameter("ilin", -3, 7, ScalingType.LINEAR),
    IntegerParameter("ilog", 1, 512, ScalingType.LOGARITHMIC),
    IntegerParameter("iauto", 4, 512),
    IntegerParameter("single", 5, 5),
    CategoricalParameter("opt", ("adam", "sgd", "rmsprop")),
    CategoricalParameter("one", ("only",)),
)
SPACE = SearchSpace(EVERY_SCALING)


def amt_ranges() -> dict[str, Any]:
    """A valid ParameterRanges object in the AMT layout, numbers as strings."""
    return {
        "ContinuousParameterRanges": [
            {"Name": "lr", "MinValue": "1e-4", "MaxValue": "0.1", "ScalingType": "Logarithmic"},
            {"Name": "momentum", "MinValue": "0.01", "MaxValue": "0.99", "ScalingType": "ReverseLogarithmic"},
        ],
        "IntegerParameterRanges": [
            {"Name": "units", "MinValue": "10", "MaxValue": "1000", "ScalingType": "Auto"},
            {"Name": "batch", "MinValue": "10", "MaxValue": "200"},
        ],
        "CategoricalParameterRanges": [{"Name": "act", "Values": ["relu", "tanh"]}],
    }


# --- sampling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("parameter", EVERY_SCALING, ids=lambda p: p.name)
def test_samples_lie_in_the_range_with_the_declared_type(parameter: Parameter) -> None:
    space = SearchSpace((parameter,))
    rng = np.random.default_rng(7)
    for _ in range(2000):
        value = space.sample(rng)[parameter.name]
        if isinstance(parameter, CategoricalParameter):
            assert value in parameter.values
        elif isinstance(parameter, IntegerParameter):
            assert type(value) is int and parameter.min_value <= value <= parameter.max_value
        else:
            assert type(value) is float and parameter.min_value <= value <= parameter.max_value


def test_sampling_is_deterministic_for_a_seed() -> None:
    first = [SPACE.sample(np.random.default_rng(42)) for _ in range(3)]
    again = [SPACE.sample(np.random.default_rng(42)) for _ in range(3)]
    assert first == again
    assert SPACE.sample(np.random.default_rng(43)) != first[0]


@pytest.mark.parametrize(
    ("parameter", "expected_median"),
    [
        (ContinuousParameter("x", 1e-4, 1e-1, ScalingType.LOGARITHMIC), 10**-2.5),
        (ContinuousParameter("x", 1e-4, 1e-1), 10**-2.5),  # Auto: ratio 1000 -> Logarithmic
        (ContinuousParameter("x", 1e-4, 1e-1, ScalingType.LINEAR), 0.05005),
        (ContinuousParameter("x", 0.0, 0.99, ScalingType.REVERSE_LOGARITHMIC), 1 - math.sqrt(0.01)),
    ],
    ids=["log", "auto-log", "linear", "reverse-log"],
)
def test_scaling_shapes_the_distribution(parameter: ContinuousParameter, expected_median: float) -> None:
    space = SearchSpace((parameter,))
    rng = np.random.default_rng(2024)
    samples = np.array([space.sample(rng)["x"] for _ in range(4001)])
    assert np.median(samples) == pytest.approx(expected_median, rel=0.15)


def test_every_integer_is_reachable_on_both_scales() -> None:
    for scaling in (ScalingType.LINEAR, ScalingType.LOGARITHMIC):
        space = SearchSpace((IntegerParameter("n", 1, 6, scaling),))
        rng = np.random.default_rng(3)
        assert {space.sample(rng)["n"] for _ in range(3000)} == set(range(1, 7))


@pytest.mark.parametrize(
    ("parameter", "resolved"),
    [
        (ContinuousParameter("x", 1e-3, 0.1), ScalingType.LOGARITHMIC),  # ratio exactly 100
        (ContinuousParameter("x", 1e-3, 0.0999), ScalingType.LINEAR),  # ratio just under 100
        (ContinuousParameter("x", 0.0, 1e6), ScalingType.LINEAR),  # MinValue not > 0
        (ContinuousParameter("x", -1.0, 1e6), ScalingType.LINEAR),
        (IntegerParameter("n", 1, 100), ScalingType.LOGARITHMIC),
        (IntegerParameter("n", 1, 99), ScalingType.LINEAR),
        (ContinuousParameter("x", 0.1, 0.2, ScalingType.LOGARITHMIC), ScalingType.LOGARITHMIC),
    ],
)
def test_auto_scaling_rule(parameter: ContinuousParameter | IntegerParameter, resolved: ScalingType) -> None:
    assert parameter.scaling is resolved


# --- unit cube ------------------------------------------------------------------------------------


def test_dimensions_count_one_hot_blocks() -> None:
    assert SPACE.dimensions == 9 + 3 + 1
    assert SPACE.names[0] == "lin" and len(SPACE.names) == len(EVERY_SCALING)


def test_encode_gives_a_point_of_the_unit_cube() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = SPACE.encode(SPACE.sample(rng))
        assert x.shape == (SPACE.dimensions,)
        assert np.all((x >= 0) & (x <= 1))


def test_encode_categorical_is_one_hot_and_bounds_map_to_the_ends() -> None:
    space = SearchSpace((ContinuousParameter("lr", 1e-4, 1e-1), CategoricalParameter("opt", ("a", "b", "c"))))
    assert space.encode({"lr": 1e-4, "opt": "b"}).tolist() == pytest.approx([0.0, 0.0, 1.0, 0.0])
    assert space.encode({"lr": 1e-1, "opt": "c"}).tolist() == pytest.approx([1.0, 0.0, 0.0, 1.0])


def test_decode_clips_rounds_and_takes_argmax() -> None:
    space = SearchSpace((IntegerParameter("n", 1, 10, ScalingType.LINEAR), CategoricalParameter("c", ("a", "b"))))
    assert space.decode([-5.0, 0.2, 0.9]) == {"n": 1, "c": "b"}
    assert space.decode([7.0, 0.5, 0.5]) == {"n": 10, "c": "a"}  # ties go to the first value


@pytest.mark.parametrize("x", [[0.5], [0.1, 0.2, 0.3, 0.4], [[0.1, 0.2, 0.3]], [0.1, float("nan"), 0.3], "abc"])
def test_decode_rejects_points_of_the_wrong_shape(x: Any) -> None:
    space = SearchSpace((IntegerParameter("n", 1, 10), CategoricalParameter("c", ("a", "b"))))
    with pytest.raises(ConfigError, match="x"):
        space.decode(x)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=SPACE.dimensions, max_size=SPACE.dimensions))
def test_decode_encode_round_trip(u: list[float]) -> None:
    hps = SPACE.decode(u)
    again = SPACE.decode(SPACE.encode(hps))
    for parameter in SPACE.parameters:
        if isinstance(parameter, ContinuousParameter):
            assert again[parameter.name] == pytest.approx(hps[parameter.name], rel=1e-9, abs=1e-12)
        else:
            assert again[parameter.name] == hps[parameter.name]


finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


@st.composite
def integer_parameters(draw: st.DrawFn) -> IntegerParameter:
    """Valid integer parameters with random bounds and scaling."""
    scaling = draw(st.sampled_from([s for s in ScalingType if s is not ScalingType.REVERSE_LOGARITHMIC]))
    low = 1 if scaling is ScalingType.LOGARITHMIC else -(10**12)
    lo, hi = sorted(draw(st.tuples(st.integers(low, 10**12), st.integers(low, 10**12))))
    return _valid_or_discard(lambda: IntegerParameter("p", lo, hi, scaling))


@st.composite
def continuous_parameters(draw: st.DrawFn) -> ContinuousParameter:
    """Valid continuous parameters with random bounds and scaling."""
    scaling = draw(st.sampled_from(ScalingType))
    bounds = {
        ScalingType.REVERSE_LOGARITHMIC: st.floats(0, 0.999999),
        ScalingType.LOGARITHMIC: st.floats(1e-12, 1e12),
    }.get(scaling, finite)
    lo, hi = sorted(draw(st.tuples(bounds, bounds)))
    return _valid_or_discard(lambda: ContinuousParameter("p", lo, hi, scaling))


numeric_parameters = integer_parameters() | continuous_parameters()


def _valid_or_discard(build: Callable[[], P]) -> P:
    """The parameter ``build`` makes; hypothesis discards the draw when the range breaks a rule."""
    try:
        return build()
    except ConfigError:
        assume(False)
        raise


@settings(max_examples=400, deadline=None)
@given(numeric_parameters, st.floats(0, 1))
def test_round_trip_on_random_ranges(parameter: ContinuousParameter | IntegerParameter, u: float) -> None:
    space = SearchSpace((parameter,))
    value = space.decode([u])["p"]
    assert space.contains({"p": value})
    back = space.decode(space.encode({"p": value}))["p"]
    if isinstance(parameter, IntegerParameter):
        assert back == value
    else:
        width = parameter.max_value - parameter.min_value
        assert back == pytest.approx(value, rel=1e-9, abs=1e-9 * width)
    assert space.parse(space.render({"p": value})) == {"p": value}


# --- grid -----------------------------------------------------------------------------------------


def test_grid_is_the_cartesian_product_in_declaration_order() -> None:
    space = SearchSpace((CategoricalParameter("a", ("1", "2")), CategoricalParameter("b", ("x", "y", "z"))))
    grid = list(space.grid())
    assert space.grid_size() == 6 == len(grid)
    assert grid[:4] == [{"a": "1", "b": "x"}, {"a": "1", "b": "y"}, {"a": "1", "b": "z"}, {"a": "2", "b": "x"}]
    assert len({tuple(c.items()) for c in grid}) == 6


@pytest.mark.parametrize("method", ["grid", "grid_size"])
def test_grid_needs_categorical_parameters_only(method: str) -> None:
    space = SearchSpace((CategoricalParameter("a", ("1",)), IntegerParameter("n", 1, 3)))
    with pytest.raises(ConfigError, match="categorical"):
        result = getattr(space, method)()
        list(result)


# --- render and parse -----------------------------------------------------------------------------


def test_render_formats() -> None:
    space = SearchSpace(
        (
            ContinuousParameter("lr", 1e-6, 1.0),
            IntegerParameter("units", 1, 1000),
            CategoricalParameter("act", ("relu",)),
        )
    )
    assert space.render({"lr": 0.001, "units": 12, "act": "relu"}) == {"lr": "0.001", "units": "12", "act": "relu"}
    numpy_values: dict[str, Any] = {"lr": 1e-05, "units": np.int64(3), "act": "relu"}
    assert space.render(numpy_values) == {"lr": "1e-05", "units": "3", "act": "relu"}
    assert space.render({"lr": np.float64(0.5), "units": 3, "act": "relu"}) == {
        "lr": "0.5",
        "units": "3",
        "act": "relu",
    }


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_render_parse_round_trip(seed: int) -> None:
    hps = SPACE.sample(np.random.default_rng(seed))
    rendered = SPACE.render(hps)
    assert all(isinstance(text, str) for text in rendered.values())
    assert SPACE.parse(rendered) == hps


@pytest.mark.parametrize(
    ("strings", "fragment"),
    [
        ({"lr": "abc", "n": "3", "c": "a"}, "HyperParameters.lr"),
        ({"lr": "0.5", "n": "3.5", "c": "a"}, "HyperParameters.n"),
        ({"lr": "2.0", "n": "3", "c": "a"}, "0.0 <= lr <= 1.0"),
        ({"lr": "nan", "n": "3", "c": "a"}, "finite"),
        ({"lr": "0.5", "n": "11", "c": "a"}, "1 <= n <= 10"),
        ({"lr": "0.5", "n": "3", "c": "z"}, "HyperParameters.c"),
        ({"lr": "0.5", "n": "3"}, "HyperParameters.c"),
        ({"lr": "0.5", "n": "3", "c": "a", "extra": "1"}, "HyperParameters.extra"),
        ({"lr": 0.5, "n": "3", "c": "a"}, "a string"),
    ],
)
def test_parse_rejects_bad_strings(strings: dict[str, Any], fragment: str) -> None:
    space = SearchSpace(
        (ContinuousParameter("lr", 0.0, 1.0), IntegerParameter("n", 1, 10), CategoricalParameter("c", ("a", "b")))
    )
    assert space.parse({"lr": "0.5", "n": "3.0", "c": "a"}) == {"lr": 0.5, "n": 3, "c": "a"}
    with pytest.raises(ConfigError) as raised:
        space.parse(strings)
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("hps", "inside"),
    [
        ({"lr": 0.5, "n": 3, "c": "a"}, True),
        ({"lr": 1, "n": np.int32(10), "c": "b"}, True),
        ({"lr": 1.5, "n": 3, "c": "a"}, False),
        ({"lr": 0.5, "n": 0, "c": "a"}, False),
        ({"lr": 0.5, "n": 3, "c": "z"}, False),
        ({"lr": "0.5", "n": 3, "c": "a"}, False),
        ({"lr": 0.5, "n": True, "c": "a"}, False),
        ({"lr": 0.5, "n": 3}, False),
        ({"lr": 0.5, "n": 3, "c": "a", "d": 1}, False),
        ({"lr": float("nan"), "n": 3, "c": "a"}, False),
        (["lr"], False),
    ],
)
def test_contains(hps: Any, inside: bool) -> None:
    space = SearchSpace(
        (ContinuousParameter("lr", 0.0, 1.0), IntegerParameter("n", 1, 10), CategoricalParameter("c", ("a", "b")))
    )
    assert space.contains(hps) is inside


def test_render_and_encode_reject_invalid_values() -> None:
    space = SearchSpace((IntegerParameter("n", 1, 10),))
    with pytest.raises(ConfigError, match=r"HyperParameters\.n"):
        space.render({"n": 11})
    with pytest.raises(ConfigError, match=r"HyperParameters\.n"):
        space.encode({"n": "3"})


# --- the AMT layout -------------------------------------------------------------------------------


def test_from_dict_reads_the_amt_layout() -> None:
    space = SearchSpace.from_dict(amt_ranges())
    assert space.names == ("lr", "momentum", "units", "batch", "act")
    assert space.parameters[0] == ContinuousParameter("lr", 1e-4, 0.1, ScalingType.LOGARITHMIC)
    assert space.parameters[2] == IntegerParameter("units", 10, 1000, ScalingType.AUTO)
    assert space.parameters[3] == IntegerParameter("batch", 10, 200, ScalingType.AUTO)  # ScalingType absent
    assert space.parameters[4] == CategoricalParameter("act", ("relu", "tanh"))


def test_to_dict_round_trips_with_numbers_as_strings() -> None:
    space = SearchSpace.from_dict(amt_ranges())
    data = space.to_dict()
    assert data["IntegerParameterRanges"][0] == {
        "Name": "units",
        "MinValue": "10",
        "MaxValue": "1000",
        "ScalingType": "Auto",
    }
    assert data["ContinuousParameterRanges"][0]["MinValue"] == "0.0001"
    assert SearchSpace.from_dict(data) == space
    assert SearchSpace.from_dict(SPACE.to_dict()) == SPACE


def test_numbers_may_be_json_numbers_and_integral_floats() -> None:
    ranges = {
        "IntegerParameterRanges": [{"Name": "n", "MinValue": 1, "MaxValue": "5.0"}],
        "ContinuousParameterRanges": [{"Name": "x", "MinValue": 0, "MaxValue": 2.5}],
        "CategoricalParameterRanges": [{"Name": "k", "Values": [3, 0.5, "a"]}],
    }
    space = SearchSpace.from_dict(ranges)
    assert space.parameters[0] == ContinuousParameter("x", 0.0, 2.5)
    assert space.parameters[1] == IntegerParameter("n", 1, 5)
    assert space.parameters[2] == CategoricalParameter("k", ("3", "0.5", "a"))


def _reverse_log(lo: str, hi: str) -> dict[str, str]:
    return {"Name": "momentum", "MinValue": lo, "MaxValue": hi, "ScalingType": "ReverseLogarithmic"}


def _set(ranges: dict[str, Any], kind: str, i: int, key: str, value: Any) -> dict[str, Any]:
    """A copy of ``ranges`` with one key of one range changed (DELETE removes it, key "*" replaces the range)."""
    changed = copy.deepcopy(ranges)
    if key == "*":
        changed[kind][i] = value
    elif value is DELETE:
        changed[kind][i].pop(key, None)
    else:
        changed[kind][i][key] = value
    return changed


DELETE = object()
C, I, K = "ContinuousParameterRanges", "IntegerParameterRanges", "CategoricalParameterRanges"  # noqa: E741 (the three range kinds by initial, as the table below reads)

# (id, mutation (kind, index, key, bad value), path fragment, rule fragment, a good value for the same key)
# fmt: off
RANGE_RULES = [
    ("name-empty", (C, 0, "Name", ""), f"{C}[0].Name", "1 <= len(Name) <= 256", "lr2"),
    ("name-too-long", (C, 0, "Name", "x" * 257), f"{C}[0].Name", "<= 256", "x" * 256),
    ("name-whitespace", (I, 1, "Name", "batch size"), f"{I}[1].Name", "matches", "batch_size"),
    ("name-not-string", (I, 1, "Name", 5), f"{I}[1].Name", "is a string", "b5"),
    ("name-missing", (I, 1, "Name", DELETE), f"{I}[1].Name", "Name is given", "batch-size"),
    ("name-duplicate", (K, 0, "Name", "lr"), f"{K}[0].Name", "unique", "activation"),
    ("min-not-number", (I, 1, "MinValue", "ten"), f"{I}[1].MinValue", "is an integer", "11"),
    ("min-not-integral", (I, 1, "MinValue", "10.5"), f"{I}[1].MinValue", "is an integer", "10.0"),
    ("min-bool", (I, 1, "MinValue", True), f"{I}[1].MinValue", "is an integer", 1),
    ("min-list", (C, 0, "MinValue", [1]), f"{C}[0].MinValue", "finite number", 0.001),
    ("min-nan", (C, 0, "MinValue", "NaN"), f"{C}[0].MinValue", "finite number", "1e-3"),
    ("min-inf", (C, 0, "MinValue", float("inf")), f"{C}[0].MinValue", "finite number", "1E-3"),
    ("min-above-max", (I, 1, "MinValue", "201"), f"{I}[1].MinValue", "MinValue <= MaxValue", "200"),
    ("continuous-min-equals-max", (C, 1, "MinValue", "0.99"), f"{C}[1].MinValue", "MinValue < MaxValue", "0.5"),
    ("integer-too-large", (I, 1, "MaxValue", str(10**12 + 1)), f"{I}[1].MaxValue", "10**12", str(10**12)),
    ("max-missing", (C, 0, "MaxValue", DELETE), f"{C}[0].MaxValue", "MaxValue is given", "0.2"),
    ("log-indistinct", (C, 0, "MaxValue", "1.0000000000000002e-4"), f"{C}[0].MaxValue", "differ on the Logarithmic scale", "1.01e-4"),
    ("reverse-log-indistinct", (C, 1, "*", _reverse_log("0.43276706790505337", "0.4327670679050534")), f"{C}[1].MaxValue", "differ on the ReverseLogarithmic", _reverse_log("0.4", "0.5")),
    ("log-needs-positive-min", (C, 0, "MinValue", "0"), f"{C}[0].MinValue", "MinValue > 0", "1e-9"),
    ("reverse-log-integer", (I, 1, "ScalingType", "ReverseLogarithmic"), f"{I}[1].ScalingType", "continuous", "Logarithmic"),
    ("reverse-log-max-1", (C, 1, "MaxValue", "1"), f"{C}[1].MinValue", "0 <= MinValue < MaxValue < 1", "0.999"),
    ("reverse-log-negative", (C, 1, "MinValue", "-0.1"), f"{C}[1].MinValue", "0 <= MinValue", "0"),
    ("scaling-unknown", (C, 0, "ScalingType", "Exponential"), f"{C}[0].ScalingType", "is one of Auto", "Linear"),
    ("scaling-case", (C, 0, "ScalingType", "logarithmic"), f"{C}[0].ScalingType", "Did you mean", "Logarithmic"),
    ("unknown-key", (C, 0, "Step", "0.1"), f"{C}[0].Step", "key is one of", DELETE),
    ("values-empty", (K, 0, "Values", []), f"{K}[0].Values", "1 <= len(Values) <= 30", ["relu"]),
    ("values-too-many", (K, 0, "Values", [str(i) for i in range(31)]), f"{K}[0].Values", "<= 30", [str(i) for i in range(30)]),
    ("values-duplicate", (K, 0, "Values", ["a", "b", "a"]), f"{K}[0].Values[2]", "distinct", ["a", "b", "c"]),
    ("value-too-long", (K, 0, "Values", ["a" * 257]), f"{K}[0].Values[0]", "<= 256", ["a" * 256]),
    ("value-bool", (K, 0, "Values", [True]), f"{K}[0].Values[0]", "is a string", ["true"]),
    ("values-not-list", (K, 0, "Values", "relu"), f"{K}[0].Values", "is a list", ["relu", ""]),
    ("values-missing", (K, 0, "Values", DELETE), f"{K}[0].Values", "Values is given", ["x"]),
]
# fmt: on


@pytest.mark.parametrize(
    ("mutation", "path", "rule", "good"), [r[1:] for r in RANGE_RULES], ids=[r[0] for r in RANGE_RULES]
)
def test_range_rules(mutation: tuple[str, int, str, Any], path: str, rule: str, good: Any) -> None:
    kind, i, key, bad = mutation
    with pytest.raises(ConfigError) as raised:
        SearchSpace.from_dict(_set(amt_ranges(), kind, i, key, bad))
    message = str(raised.value)
    assert message.startswith(f"{RANGES}.{path}: "), message
    assert rule in message and "must hold, but got" in message
    SearchSpace.from_dict(_set(amt_ranges(), kind, i, key, good))


@pytest.mark.parametrize(
    ("ranges", "fragment"),
    [
        ({}, "1 <= number of parameters <= 30"),
        ({C: []}, "1 <= number of parameters <= 30"),
        ({C: [{"Name": f"p{i}", "MinValue": "0", "MaxValue": "1"} for i in range(31)]}, "got 31"),
        ({"AutoParameters": []}, f"{RANGES}.AutoParameters"),
        ({C: {"Name": "x"}}, "is a list"),
        ({C: ["x"]}, f"{RANGES}.{C}[0]: `{C}[0] is an object"),
        ([], "is an object"),
    ],
)
def test_space_level_rules(ranges: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SearchSpace.from_dict(ranges)
    assert fragment in str(raised.value)


def test_thirty_parameters_are_allowed() -> None:
    ranges = {C: [{"Name": f"p{i}", "MinValue": "0", "MaxValue": "1"} for i in range(30)]}
    assert len(SearchSpace.from_dict(ranges).parameters) == 30


def test_from_dict_uses_the_given_path() -> None:
    with pytest.raises(
        ConfigError, match=r"^TrainingJobDefinitions\[0\]\.HyperParameterRanges\.IntegerParameterRanges"
    ):
        SearchSpace.from_dict(
            {I: [{"Name": "n", "MinValue": "a", "MaxValue": "2"}]}, "TrainingJobDefinitions[0].HyperParameterRanges"
        )


@pytest.mark.parametrize(
    "build",
    [
        lambda: ContinuousParameter("x", 1.0, 0.0),
        lambda: ContinuousParameter("x", 0.0, 1.0, "Cubic"),  # type: ignore[arg-type]
        lambda: ContinuousParameter("x", -1e308, 1e308),
        lambda: IntegerParameter("n", 0, 10, ScalingType.LOGARITHMIC),
        lambda: IntegerParameter("n", 0, 1, ScalingType.REVERSE_LOGARITHMIC),
        lambda: IntegerParameter("n", 0.5, 1),  # type: ignore[arg-type]
        lambda: CategoricalParameter("c", ()),
        lambda: CategoricalParameter("", ("a",)),
        lambda: SearchSpace(()),
        lambda: SearchSpace((IntegerParameter("n", 0, 1), CategoricalParameter("n", ("a",)))),
        lambda: SearchSpace(("not a parameter",)),  # type: ignore[arg-type]
    ],
)
def test_constructors_check_the_same_rules(build: Any) -> None:
    with pytest.raises(ConfigError):
        build()


def test_spaces_are_hashable_values() -> None:
    a = SearchSpace((CategoricalParameter("c", ["a", "b"]), ContinuousParameter("x", 0, 1)))  # type: ignore[arg-type]
    b = SearchSpace((CategoricalParameter("c", ("a", "b")), ContinuousParameter("x", 0.0, 1.0)))
    assert a == b and hash(a) == hash(b)
    assert a.parameters[0] == CategoricalParameter("c", ("a", "b"))
