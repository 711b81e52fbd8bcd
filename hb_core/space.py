"""The search space: the hyperparameters a tuning job varies, in the AMT layout.

Terms:

- *parameter*: one tuned hyperparameter. Continuous parameters take floats in
  [MinValue, MaxValue], integer parameters take ints in [MinValue, MaxValue],
  categorical parameters take one of their string Values.
- *typed value*: the Python value of a parameter: ``float``, ``int`` or ``str``.
  *Rendered value*: the string SageMaker passes to a training job.
- *unit cube*: the encoding model-based samplers work in. A numeric parameter
  is one coordinate in [0, 1] on its warped scale; a categorical one is a
  one-hot block of ``len(values)`` coordinates. ``SearchSpace.dimensions`` is
  the total.
- *scaling type* (warping): how a numeric range maps to [0, 1].

  - ``Linear``: uniformly.
  - ``Logarithmic``: uniformly in ``log(v)``; needs MinValue > 0.
  - ``ReverseLogarithmic``: uniformly in ``log(1 - v)``, for continuous ranges
    with 0 <= MinValue < MaxValue < 1; dense near 1 (momentum, decay rates).
  - ``Auto``: our rule, since AMT does not publish its own: ``Logarithmic``
    when MinValue > 0 and MaxValue / MinValue >= 100, else ``Linear``.

  Integers are warped over [MinValue - 0.5, MaxValue + 0.5], then rounded
  half up and clipped, so every integer of the range is reachable and gets its
  share of the warped interval. Sampling, encoding and decoding use the same
  warping, so ``decode(encode(x))`` gives back ``x`` (exactly for integer and
  categorical values, up to float rounding for continuous ones).

Range rules, checked by :meth:`SearchSpace.from_dict` (each names the JSON path)
and by the constructors:

- ``Name``: 1-256 characters, no whitespace or control characters; unique
  across all range types; at most 30 parameters in all, at least one.
- Continuous: MinValue < MaxValue, both finite, MaxValue - MinValue finite.
- Integer: MinValue <= MaxValue (a single value is allowed), integral, and
  ``|value| <= 10**12`` so every integer survives the float warping exactly.
- ``Values``: 1-30 distinct strings of at most 256 characters. JSON numbers
  are accepted and kept as their string (``1`` becomes ``"1"``).
- Numbers may be strings, as in the AMT API (see ``hb_core._validate``).

Size: about 520 lines, the three AMT parameter types and the space; each
type's validation, rendering and unit-cube encoding sit together so that a
rule of a type has one place (splitting by type would leave each its own
copy of the shared warping helpers' imports and nothing else).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from hb_core import _validate as v
from hb_core.errors import ConfigError

__all__ = [
    "CategoricalParameter",
    "ContinuousParameter",
    "HyperparameterValue",
    "IntegerParameter",
    "Parameter",
    "ScalingType",
    "SearchSpace",
]

HyperparameterValue = float | int | str

MAX_PARAMETERS = 30
MAX_CATEGORIES = 30
MAX_TEXT = 256
INTEGER_LIMIT = 10**12
AUTO_LOG_RATIO = 100.0
NAME_PATTERN = re.compile(r"[^\s\x00-\x1f\x7f]+")
DEFAULT_PATH = "HyperParameterTuningJobConfig.ParameterRanges"
VALUES_PATH = "HyperParameters"

PathOf = Callable[[str], str]


class ScalingType(StrEnum):
    """How a numeric range is warped onto [0, 1]; see the module docstring."""

    AUTO = "Auto"
    LINEAR = "Linear"
    LOGARITHMIC = "Logarithmic"
    REVERSE_LOGARITHMIC = "ReverseLogarithmic"


def _pair(lo: float, hi: float) -> v.Shown:
    return v.Shown(f"MinValue={lo!r}, MaxValue={hi!r}")


def _check_numeric(integral: bool, lo: float, hi: float, scaling: ScalingType, path_of: PathOf) -> None:
    """The range rules shared by continuous and integer parameters."""
    if integral:
        for key, x in (("MinValue", lo), ("MaxValue", hi)):
            if abs(x) > INTEGER_LIMIT:
                raise ConfigError(path_of(key), f"`|{key}| <= 10**12` must hold", v.brief(x))
        if lo > hi:
            raise ConfigError(path_of("MinValue"), "`MinValue <= MaxValue` must hold", _pair(lo, hi))
    else:
        if not lo < hi:
            raise ConfigError(path_of("MinValue"), "`MinValue < MaxValue` must hold", _pair(lo, hi))
        if not math.isfinite(hi - lo):
            raise ConfigError(path_of("MaxValue"), "`MaxValue - MinValue is finite` must hold", _pair(lo, hi))
    if scaling is ScalingType.LOGARITHMIC and lo <= 0:
        raise ConfigError(path_of("MinValue"), "`MinValue > 0 for Logarithmic scaling` must hold", lo)
    if scaling is ScalingType.REVERSE_LOGARITHMIC:
        if integral:
            raise ConfigError(
                path_of("ScalingType"),
                "`ReverseLogarithmic is used on continuous ranges only` must hold",
                scaling.value,
            )
        if not (0 <= lo and hi < 1):
            raise ConfigError(
                path_of("MinValue"),
                "`0 <= MinValue < MaxValue < 1 for ReverseLogarithmic scaling` must hold",
                _pair(lo, hi),
            )
    resolved = _resolve(scaling, lo, hi)
    bottom, top = (lo - 0.5, hi + 0.5) if integral else (lo, hi)
    if not _warp(bottom, resolved) < _warp(top, resolved):
        rule = f"`MinValue and MaxValue differ on the {resolved.value} scale` must hold"
        raise ConfigError(path_of("MaxValue"), rule, _pair(lo, hi))


def _warp(x: float, scaling: ScalingType) -> float:
    """``x`` on the warped scale, where the scaling type makes it uniform: x, log(x) or -log(1 - x)."""
    if scaling is ScalingType.LOGARITHMIC:
        return math.log(x)
    if scaling is ScalingType.REVERSE_LOGARITHMIC:
        return -math.log1p(-x)
    return x


def _unwarp(y: float, scaling: ScalingType) -> float:
    """The inverse of :func:`_warp`."""
    if scaling is ScalingType.LOGARITHMIC:
        return math.exp(y)
    if scaling is ScalingType.REVERSE_LOGARITHMIC:
        return -math.expm1(-y)
    return y


def _resolve(scaling: ScalingType, lo: float, hi: float) -> ScalingType:
    """The concrete scaling: ``Auto`` becomes Logarithmic or Linear by our rule."""
    if scaling is not ScalingType.AUTO:
        return scaling
    if lo > 0 and hi / lo >= AUTO_LOG_RATIO:
        return ScalingType.LOGARITHMIC
    return ScalingType.LINEAR


def _to_unit(x: float, lo: float, hi: float, scaling: ScalingType) -> float:
    """Where ``x`` in [lo, hi] lies on the warped scale, in [0, 1]."""
    bottom, top = _warp(lo, scaling), _warp(hi, scaling)
    return (_warp(x, scaling) - bottom) / (top - bottom)


def _from_unit(u: float, lo: float, hi: float, scaling: ScalingType) -> float:
    """The inverse of :func:`_to_unit`."""
    bottom, top = _warp(lo, scaling), _warp(hi, scaling)
    return _unwarp(bottom + u * (top - bottom), scaling)


def _numeric_input(value: object, path: str) -> object:
    """Reject strings and unwrap numpy scalars: typed numeric values are Python or numpy numbers."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str):
        raise ConfigError(path, f"`{path.rsplit('.', 1)[-1]} is a number, not a string` must hold", value)
    return value


@dataclass(frozen=True)
class ContinuousParameter:
    """A float hyperparameter in [min_value, max_value] (``ContinuousParameterRanges``)."""

    name: str
    min_value: float
    max_value: float
    scaling_type: ScalingType = ScalingType.AUTO

    kind: ClassVar[str] = "ContinuousParameterRanges"
    dimensions: ClassVar[int] = 1

    def __post_init__(self) -> None:
        where = f"ContinuousParameter({self.name!r})"
        v.string(self.name, f"{where}.Name", max_len=MAX_TEXT, pattern=NAME_PATTERN)
        object.__setattr__(self, "min_value", v.number(self.min_value, f"{where}.MinValue"))
        object.__setattr__(self, "max_value", v.number(self.max_value, f"{where}.MaxValue"))
        object.__setattr__(self, "scaling_type", v.choice(self.scaling_type, f"{where}.ScalingType", ScalingType))
        _check_numeric(False, self.min_value, self.max_value, self.scaling_type, lambda key: f"{where}.{key}")

    @property
    def scaling(self) -> ScalingType:
        """The concrete scaling type (never Auto)."""
        return _resolve(self.scaling_type, self.min_value, self.max_value)

    def check(self, value: object, path: str) -> float:
        """``value`` as a float inside the range, or ConfigError."""
        return v.number(_numeric_input(value, path), path, lo=self.min_value, hi=self.max_value)

    def to_unit(self, value: float) -> list[float]:
        return [_to_unit(value, self.min_value, self.max_value, self.scaling)]

    def from_unit(self, u: np.ndarray) -> float:
        x = _from_unit(float(u[0]), self.min_value, self.max_value, self.scaling)
        return min(max(x, self.min_value), self.max_value)

    def sample(self, rng: np.random.Generator) -> float:
        return self.from_unit(np.array([rng.random()]))

    def render(self, value: float) -> str:
        return repr(float(value))

    def parse(self, text: str, path: str) -> float:
        return v.number(text, path, lo=self.min_value, hi=self.max_value)

    def to_dict(self) -> dict[str, str]:
        return {
            "Name": self.name,
            "MinValue": repr(self.min_value),
            "MaxValue": repr(self.max_value),
            "ScalingType": self.scaling_type.value,
        }


@dataclass(frozen=True)
class IntegerParameter:
    """An int hyperparameter in [min_value, max_value] (``IntegerParameterRanges``)."""

    name: str
    min_value: int
    max_value: int
    scaling_type: ScalingType = ScalingType.AUTO

    kind: ClassVar[str] = "IntegerParameterRanges"
    dimensions: ClassVar[int] = 1

    def __post_init__(self) -> None:
        where = f"IntegerParameter({self.name!r})"
        v.string(self.name, f"{where}.Name", max_len=MAX_TEXT, pattern=NAME_PATTERN)
        object.__setattr__(self, "min_value", v.integer(self.min_value, f"{where}.MinValue"))
        object.__setattr__(self, "max_value", v.integer(self.max_value, f"{where}.MaxValue"))
        object.__setattr__(self, "scaling_type", v.choice(self.scaling_type, f"{where}.ScalingType", ScalingType))
        _check_numeric(True, self.min_value, self.max_value, self.scaling_type, lambda key: f"{where}.{key}")

    @property
    def scaling(self) -> ScalingType:
        """The concrete scaling type (never Auto)."""
        return _resolve(self.scaling_type, self.min_value, self.max_value)

    @property
    def _warped_bounds(self) -> tuple[float, float]:
        return self.min_value - 0.5, self.max_value + 0.5

    def check(self, value: object, path: str) -> int:
        """``value`` as an int inside the range, or ConfigError."""
        return v.integer(_numeric_input(value, path), path, lo=self.min_value, hi=self.max_value)

    def to_unit(self, value: int) -> list[float]:
        lo, hi = self._warped_bounds
        return [_to_unit(float(value), lo, hi, self.scaling)]

    def from_unit(self, u: np.ndarray) -> int:
        lo, hi = self._warped_bounds
        n = math.floor(_from_unit(float(u[0]), lo, hi, self.scaling) + 0.5)
        return min(max(n, self.min_value), self.max_value)

    def sample(self, rng: np.random.Generator) -> int:
        return self.from_unit(np.array([rng.random()]))

    def render(self, value: int) -> str:
        return str(int(value))

    def parse(self, text: str, path: str) -> int:
        return v.integer(text, path, lo=self.min_value, hi=self.max_value)

    def to_dict(self) -> dict[str, str]:
        return {
            "Name": self.name,
            "MinValue": str(self.min_value),
            "MaxValue": str(self.max_value),
            "ScalingType": self.scaling_type.value,
        }


@dataclass(frozen=True)
class CategoricalParameter:
    """A string hyperparameter taking one of ``values`` (``CategoricalParameterRanges``)."""

    name: str
    values: tuple[str, ...]

    kind: ClassVar[str] = "CategoricalParameterRanges"

    def __post_init__(self) -> None:
        where = f"CategoricalParameter({self.name!r})"
        v.string(self.name, f"{where}.Name", max_len=MAX_TEXT, pattern=NAME_PATTERN)
        items = v.sequence(self.values, f"{where}.Values", min_len=1, max_len=MAX_CATEGORIES)
        object.__setattr__(self, "values", _categories(items, f"{where}.Values"))

    @property
    def dimensions(self) -> int:
        return len(self.values)

    def check(self, value: object, path: str) -> str:
        """``value`` if it is one of the values, else ConfigError."""
        if not isinstance(value, str) or value not in self.values:
            raise ConfigError(path, f"`{self.name} is one of {list(self.values)}` must hold", v.brief(value))
        return value

    def to_unit(self, value: str) -> list[float]:
        return [1.0 if value == category else 0.0 for category in self.values]

    def from_unit(self, u: np.ndarray) -> str:
        return self.values[int(np.argmax(u))]

    def sample(self, rng: np.random.Generator) -> str:
        return self.values[int(rng.integers(len(self.values)))]

    def render(self, value: str) -> str:
        return value

    def parse(self, text: str, path: str) -> str:
        return self.check(text, path)

    def to_dict(self) -> dict[str, Any]:
        return {"Name": self.name, "Values": list(self.values)}


Parameter = ContinuousParameter | IntegerParameter | CategoricalParameter
_KINDS: tuple[type[ContinuousParameter | IntegerParameter | CategoricalParameter], ...] = (
    ContinuousParameter,
    IntegerParameter,
    CategoricalParameter,
)


def _category_text(value: object, path: str) -> str:
    """A categorical value as its string; JSON numbers are kept as their text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = v.number_text(value, path)
    return v.string(value, path, min_len=0, max_len=MAX_TEXT)


def _categories(items: object, path: str) -> tuple[str, ...]:
    """Values as a tuple of distinct strings."""
    values = tuple(_category_text(item, v.index(path, i)) for i, item in enumerate(v.sequence(items, path)))
    for i, value in enumerate(values):
        if value in values[:i]:
            raise ConfigError(v.index(path, i), "`Values are distinct` must hold", value)
    return values


def _numeric_from_dict(cls: type[ContinuousParameter | IntegerParameter], raw: object, path: str) -> Parameter:
    item = v.Fields(raw, path, ("Name", "MinValue", "MaxValue", "ScalingType"), {})
    name = item.string("Name", max_len=MAX_TEXT, pattern=NAME_PATTERN)
    read = item.integer if cls is IntegerParameter else item.number
    lo, hi = read("MinValue"), read("MaxValue")
    scaling = item.choice("ScalingType", ScalingType, default=ScalingType.AUTO)
    _check_numeric(cls is IntegerParameter, lo, hi, scaling, item.at)
    return cls(name, lo, hi, scaling)  # type: ignore[arg-type]


def _categorical_from_dict(raw: object, path: str) -> Parameter:
    item = v.Fields(raw, path, ("Name", "Values"), {})
    name = item.string("Name", max_len=MAX_TEXT, pattern=NAME_PATTERN)
    values = [value for value, _ in item.items("Values", min_len=1, max_len=MAX_CATEGORIES)]
    return CategoricalParameter(name, _categories(values, item.at("Values")))


_READERS: dict[str, Callable[[object, str], Parameter]] = {
    ContinuousParameter.kind: lambda raw, path: _numeric_from_dict(ContinuousParameter, raw, path),
    IntegerParameter.kind: lambda raw, path: _numeric_from_dict(IntegerParameter, raw, path),
    CategoricalParameter.kind: _categorical_from_dict,
}


def _check_names(parameters: tuple[Parameter, ...], paths: list[str], where: str) -> None:
    """At least one and at most 30 parameters, with distinct names; ``paths`` locate each one."""
    if not 1 <= len(parameters) <= MAX_PARAMETERS:
        raise ConfigError(where, f"`1 <= number of parameters <= {MAX_PARAMETERS}` must hold", len(parameters))
    seen: dict[str, str] = {}
    for parameter, path in zip(parameters, paths, strict=True):
        if parameter.name in seen:
            raise ConfigError(
                f"{path}.Name",
                "`parameter names are unique` must hold",
                parameter.name,
                hint=f"Also used at {seen[parameter.name]}",
            )
        seen[parameter.name] = path


@dataclass(frozen=True)
class SearchSpace:
    """The tuned hyperparameters, in declaration order.

    ``from_dict`` reads the AMT ``ParameterRanges`` object in the order
    continuous, integer, categorical; ``to_dict`` writes the same order, so a
    space built directly with the kinds interleaved round-trips up to order.
    """

    parameters: tuple[Parameter, ...]

    def __post_init__(self) -> None:
        parameters: list[Parameter] = []
        for i, parameter in enumerate(v.sequence(self.parameters, "SearchSpace.parameters")):
            if not isinstance(parameter, (ContinuousParameter, IntegerParameter, CategoricalParameter)):
                raise ConfigError(f"SearchSpace.parameters[{i}]", "`item is a Parameter` must hold", v.brief(parameter))
            parameters.append(parameter)
        _check_names(
            tuple(parameters),
            [f"SearchSpace.parameters[{i}]" for i in range(len(parameters))],
            "SearchSpace.parameters",
        )
        object.__setattr__(self, "parameters", tuple(parameters))

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in declaration order."""
        return tuple(p.name for p in self.parameters)

    @property
    def dimensions(self) -> int:
        """The number of unit-cube coordinates: 1 per numeric parameter, ``len(values)`` per categorical."""
        return sum(p.dimensions for p in self.parameters)

    def _checked(self, hps: Mapping[str, object], path: str) -> dict[str, HyperparameterValue]:
        """``hps`` with exactly this space's names and valid values, normalised to typed values."""
        values = v.Fields(hps, path, self.names, {})
        return {p.name: p.check(values.need(p.name), values.at(p.name)) for p in self.parameters}

    def sample(self, rng: np.random.Generator) -> dict[str, HyperparameterValue]:
        """One configuration drawn under each parameter's scaling; draws in declaration order."""
        return {p.name: p.sample(rng) for p in self.parameters}

    def encode(self, hps: Mapping[str, HyperparameterValue]) -> np.ndarray:
        """``hps`` as a point of the unit cube, shape ``(dimensions,)``."""
        typed = self._checked(hps, VALUES_PATH)
        return np.array([u for p in self.parameters for u in p.to_unit(typed[p.name])], dtype=float)  # type: ignore[arg-type]

    def decode(self, x: ArrayLike) -> dict[str, HyperparameterValue]:
        """The configuration at unit-cube point ``x``: clipped to [0, 1], integers rounded, categoricals by argmax."""
        try:
            point = np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            raise ConfigError("x", "`x is an array of numbers` must hold", v.brief(x)) from None
        if point.shape != (self.dimensions,) or not np.all(np.isfinite(point)):
            raise ConfigError("x", f"`x is finite with shape ({self.dimensions},)` must hold", v.brief(point))
        point = np.clip(point, 0.0, 1.0)
        result: dict[str, HyperparameterValue] = {}
        start = 0
        for p in self.parameters:
            result[p.name] = p.from_unit(point[start : start + p.dimensions])
            start += p.dimensions
        return result

    def _grid_parameters(self) -> tuple[CategoricalParameter, ...]:
        others = [p.name for p in self.parameters if not isinstance(p, CategoricalParameter)]
        if others:
            raise ConfigError("ParameterRanges", "`every parameter is categorical (Grid)` must hold", others)
        return tuple(p for p in self.parameters if isinstance(p, CategoricalParameter))

    def grid(self) -> Iterator[dict[str, HyperparameterValue]]:
        """Every combination of categorical values; the last parameter varies fastest."""
        parameters = self._grid_parameters()
        for combination in itertools.product(*(p.values for p in parameters)):
            yield dict(zip(self.names, combination, strict=True))

    def grid_size(self) -> int:
        """The number of configurations :meth:`grid` yields."""
        return math.prod(len(p.values) for p in self._grid_parameters())

    def render(self, hps: Mapping[str, HyperparameterValue], path: str = VALUES_PATH) -> dict[str, str]:
        """The strings a training job receives: ints as ``"12"``, floats as their shortest round-trip text."""
        typed = self._checked(hps, path)
        return {p.name: p.render(typed[p.name]) for p in self.parameters}  # type: ignore[arg-type]

    def parse(self, strings: Mapping[str, str], path: str = VALUES_PATH) -> dict[str, HyperparameterValue]:
        """The typed values of rendered ``strings``; the inverse of :meth:`render`."""
        texts = v.Fields(strings, path, self.names, {})
        return {
            p.name: p.parse(texts.string(p.name, min_len=0, max_len=None), texts.at(p.name)) for p in self.parameters
        }

    def contains(self, hps: Mapping[str, object]) -> bool:
        """Whether ``hps`` names exactly this space's parameters, each with a valid value."""
        try:
            self._checked(hps, VALUES_PATH)
        except ConfigError:
            return False
        return True

    @classmethod
    def from_dict(
        cls, parameter_ranges: Mapping[str, Any], path: str = DEFAULT_PATH, *, homes: Mapping[str, str] | None = None
    ) -> SearchSpace:
        """A space from an AMT ``ParameterRanges`` object; ``homes`` maps misplaced keys to where they belong."""
        ranges = v.Fields(parameter_ranges, path, tuple(_READERS), homes or {})
        parameters: list[Parameter] = []
        paths: list[str] = []
        for kind, read in _READERS.items():
            for raw, item_path in ranges.items(kind, required=False):
                parameters.append(read(raw, item_path))
                paths.append(item_path)
        _check_names(tuple(parameters), paths, path)
        return cls(tuple(parameters))

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        """The AMT ``ParameterRanges`` object, numbers as strings like the API."""
        return {kind.kind: [p.to_dict() for p in self.parameters if isinstance(p, kind)] for kind in _KINDS}
