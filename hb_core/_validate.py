"""Checks that turn untrusted JSON-like input into typed values, or raise ConfigError.

Terms:

- *path*: where a value sits in the request, written the way the AMT docs
  write it: ``HyperParameterTuningJobConfig.ResourceLimits.MaxParallelTrainingJobs``
  or ``...IntegerParameterRanges[1].MinValue``. The last segment is the
  *field* named in the rule of an error message.
- *JSON-like*: what ``json.loads`` returns (dict, list, str, int, float, bool,
  None), or the same built in Python.
- *absent*: a key that is missing or whose value is ``null``/``None``; an
  optional field that is absent takes its default.

Number rules, the same for every field: a number may arrive as a JSON number or
as a numeric string (``"5"``, ``"1e-4"``), as in the AMT API. Booleans are never
numbers. NaN and infinities are rejected. An integer field also accepts an
integral float or string (``5.0``, ``"5.0"``) and reads it as the integer.

Every check raises :class:`~hb_core.errors.ConfigError` whose message reads
"PATH: `rule` must hold, but got VALUE".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from hb_core.errors import ConfigError

__all__ = [
    "MISSING",
    "REQUIRED",
    "Fields",
    "Shown",
    "at",
    "brief",
    "check_keys",
    "choice",
    "hyperparameter_text",
    "index",
    "integer",
    "json_copy",
    "mapping",
    "number",
    "number_text",
    "regex",
    "sequence",
    "string",
]

E = TypeVar("E", bound=StrEnum)

_INT_TEXT = re.compile(r"[+-]?\d+")
_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BRIEF_CHARS = 120


class Shown:
    """A value for an error message that shows ``text`` without quotes."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


MISSING = Shown("<missing>")


def brief(value: object) -> object:
    """``value`` itself, or a shortened stand-in when its repr is long."""
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python prints
        return Shown("<a number too long to print>")
    return value if len(text) <= _BRIEF_CHARS else Shown(text[:_BRIEF_CHARS] + "...")


def at(path: str, key: str) -> str:
    """The path of ``key`` inside the object at ``path`` ("" is the request itself)."""
    return f"{path}.{key}" if path else key


def index(path: str, i: int) -> str:
    """The path of item ``i`` of the list at ``path``."""
    return f"{path}[{i}]"


def _field(path: str) -> str:
    return path.rsplit(".", 1)[-1] or "value"


def _type_error(value: object, path: str, what: str) -> ConfigError:
    return ConfigError(path, f"`{_field(path)} is {what}` must hold", brief(value))


def mapping(value: object, path: str) -> Mapping[str, object]:
    """``value`` as a JSON object with string keys."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _type_error(value, path, "an object with string keys")
    return value


def sequence(value: object, path: str, *, min_len: int = 0, max_len: int | None = None) -> Sequence[object]:
    """``value`` as a JSON list whose length lies in [min_len, max_len]."""
    if not isinstance(value, (list, tuple)):
        raise _type_error(value, path, "a list")
    if len(value) < min_len or (max_len is not None and len(value) > max_len):
        upper = "" if max_len is None else f" <= {max_len}"
        raise ConfigError(path, f"`{min_len} <= len({_field(path)}){upper}` must hold", len(value))
    return value


def check_keys(obj: Mapping[str, object], path: str, allowed: Iterable[str], homes: Mapping[str, str]) -> None:
    """Reject keys outside ``allowed``; ``homes`` maps a misplaced key to the path it belongs under."""
    known = tuple(allowed)
    for key in obj:
        if key in known:
            continue
        home = homes.get(key)
        hint = None
        if home is not None:
            hint = f"`{key}` belongs under `{home}`" if home else f"`{key}` belongs at the top level of the request"
        where = path or "the request"
        raise ConfigError(
            at(path, key), f"`key is one of the keys of {where}: {', '.join(known)}` must hold", brief(key), hint=hint
        )


def _bounds_rule(field: str, lo: float | None, hi: float | None, strict_lo: bool) -> str:
    left = "" if lo is None else f"{lo} {'<' if strict_lo else '<='} "
    right = "" if hi is None else f" <= {hi}"
    return f"`{left}{field}{right}` must hold"


def _check_bounds(x: float, path: str, lo: float | None, hi: float | None, strict_lo: bool = False) -> None:
    too_low = lo is not None and (x <= lo if strict_lo else x < lo)
    if too_low or (hi is not None and x > hi):
        raise ConfigError(path, _bounds_rule(_field(path), lo, hi, strict_lo), brief(x))


def _to_float(value: object, path: str, what: str) -> float:
    if isinstance(value, bool):
        raise _type_error(value, path, what)
    if isinstance(value, str):
        if not _FLOAT_TEXT.fullmatch(value.strip()):
            raise _type_error(value, path, what)
        value = value.strip()
    if not isinstance(value, (int, float, str)):
        raise _type_error(value, path, what)
    try:
        x = float(value)
    except (OverflowError, ValueError):
        raise _type_error(value, path, what) from None
    if not math.isfinite(x):
        raise _type_error(value, path, what)
    return x


def number(
    value: object, path: str, *, lo: float | None = None, hi: float | None = None, strict_lo: bool = False
) -> float:
    """``value`` as a finite float in [lo, hi] (or (lo, hi] with ``strict_lo``)."""
    x = _to_float(value, path, "a finite number")
    _check_bounds(x, path, lo, hi, strict_lo)
    return x


def integer(value: object, path: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int in [lo, hi]; integral floats and strings such as ``"5.0"`` count."""
    what = "an integer"
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        try:
            n = int(value.strip())
        except ValueError:  # more digits than Python converts
            raise _type_error(value, path, what) from None
    else:
        x = _to_float(value, path, what)
        if not x.is_integer():
            raise _type_error(value, path, what)
        n = int(x)
    _check_bounds(n, path, lo, hi)
    return n


def string(
    value: object, path: str, *, min_len: int = 1, max_len: int | None = None, pattern: re.Pattern[str] | None = None
) -> str:
    """``value`` as a string of ``min_len``..``max_len`` characters matching ``pattern``."""
    if not isinstance(value, str):
        raise _type_error(value, path, "a string")
    field = _field(path)
    if len(value) < min_len or (max_len is not None and len(value) > max_len):
        upper = "" if max_len is None else f" <= {max_len}"
        raise ConfigError(path, f"`{min_len} <= len({field}){upper}` must hold", brief(value))
    if pattern is not None and not pattern.fullmatch(value):
        raise ConfigError(path, f"`{field} matches {pattern.pattern}` must hold", brief(value))
    return value


def choice(value: object, path: str, enum: type[E]) -> E:
    """``value`` as a member of the string enum ``enum`` (case-sensitive, as in AMT)."""
    names = ", ".join(member.value for member in enum)
    if isinstance(value, str):
        for member in enum:
            if member.value == value:
                return member
        for member in enum:
            if member.value.casefold() == value.casefold():
                raise ConfigError(
                    path, f"`{_field(path)} is one of {names}` must hold", value, hint=f"Did you mean {member.value!r}?"
                )
    raise ConfigError(path, f"`{_field(path)} is one of {names}` must hold", brief(value))


def json_copy(value: object, path: str) -> Any:
    """A deep copy of JSON-like ``value``, or ConfigError when it is not JSON (NaN, sets, ...)."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        raise ConfigError(path, f"`{_field(path)} is JSON` must hold", brief(value)) from None


def regex(value: object, path: str, *, max_len: int) -> str:
    """A Python regular expression of 1..max_len characters with at least one group."""
    text = string(value, path, max_len=max_len)
    try:
        groups = re.compile(text).groups
    except (re.error, OverflowError, RecursionError, ValueError) as error:
        raise ConfigError(path, f"`{_field(path)} compiles` must hold", brief(text), hint=str(error)) from None
    if groups < 1:
        raise ConfigError(path, f"`{_field(path)} has a capturing group for the value` must hold", brief(text))
    return text


def number_text(value: float, path: str) -> str:
    """The text of a JSON number: ``3`` -> ``"3"``, ``0.1`` -> ``"0.1"`` (shortest round-trip form)."""
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more digits than Python prints
            raise _type_error(brief(value), path, "a number of at most 4300 digits") from None
    return repr(number(value, path))


def hyperparameter_text(value: object, path: str, *, max_len: int) -> str:
    """A static hyperparameter value as its string: numbers by their text, booleans as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        value = number_text(value, path)
    elif not isinstance(value, str):
        raise _type_error(value, path, "a string, number or boolean")
    return string(value, path, min_len=0, max_len=max_len)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
D = TypeVar("D")


class Fields:
    """The fields of one JSON object at ``path``, read one rule at a time.

    Creating it checks that ``raw`` is an object whose keys are all in
    ``allowed`` (any key when ``allowed`` is None); ``homes`` names where a
    misplaced key belongs; with ``absent_ok`` a None ``raw`` reads as ``{}``.
    Each reader takes a ``default``: without one the field is required, with
    one an absent field gives the default.
    """

    def __init__(
        self,
        raw: object,
        path: str,
        allowed: Iterable[str] | None,
        homes: Mapping[str, str],
        *,
        absent_ok: bool = False,
    ) -> None:
        self.obj: Mapping[str, object] = {} if raw is None and absent_ok else mapping(raw, path)
        self.path = path
        self.homes = homes
        if allowed is not None:
            check_keys(self.obj, path, allowed, homes)

    def at(self, key: str) -> str:
        """The path of ``key``."""
        return at(self.path, key)

    def get(self, key: str) -> object | None:
        """The raw value at ``key``, or None when absent."""
        return self.obj.get(key)

    def _raw(self, key: str, default: object) -> object | None:
        """The raw value, or None when absent with a default; absent without one is an error."""
        return self.need(key) if default is REQUIRED else self.obj.get(key)

    def need(self, key: str) -> object:
        """The raw value at ``key``; absent is an error."""
        value = self.obj.get(key)
        if value is None:
            raise ConfigError(self.at(key), f"`{key} is given` must hold", MISSING)
        return value

    def integer(self, key: str, *, lo: int | None = None, hi: int | None = None, default: D = REQUIRED) -> int | D:
        raw = self._raw(key, default)
        return default if raw is None else integer(raw, self.at(key), lo=lo, hi=hi)

    def number(self, key: str, *, lo: float | None = None, strict_lo: bool = False, default: D = REQUIRED) -> float | D:
        raw = self._raw(key, default)
        return default if raw is None else number(raw, self.at(key), lo=lo, strict_lo=strict_lo)

    def string(
        self,
        key: str,
        *,
        max_len: int | None,
        min_len: int = 1,
        pattern: re.Pattern[str] | None = None,
        default: D = REQUIRED,
    ) -> str | D:
        raw = self._raw(key, default)
        return default if raw is None else string(raw, self.at(key), min_len=min_len, max_len=max_len, pattern=pattern)

    def choice(self, key: str, enum: type[E], *, default: D = REQUIRED) -> E | D:
        raw = self._raw(key, default)
        return default if raw is None else choice(raw, self.at(key), enum)

    def section(self, key: str, allowed: Iterable[str] | None) -> Fields:
        """The optional object at ``key`` (empty when absent)."""
        return Fields(self.obj.get(key), self.at(key), allowed, self.homes, absent_ok=True)

    def items(
        self, key: str, *, min_len: int = 0, max_len: int | None = None, required: bool = True
    ) -> list[tuple[object, str]]:
        """The list at ``key`` as (item, item path) pairs; ``[]`` when absent and not ``required``."""
        raw = self._raw(key, REQUIRED if required else None)
        items = sequence([] if raw is None else raw, self.at(key), min_len=min_len, max_len=max_len)
        return [(item, index(self.at(key), i)) for i, item in enumerate(items)]
