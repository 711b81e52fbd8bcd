"""The checkpoint's serializer: frozen records to plain JSON and back, driven by their fields' types.

Every record of :mod:`hb_core.state` (and the :class:`~hb_core.events.Finish`
it keeps) is written by :func:`to_json` and read by :func:`read`, from the
declared type of each field, so a field is written once: in its class.

Writing: a dataclass or NamedTuple becomes an object of its fields (an action's
``kind`` tag first, as :meth:`hb_core.events._Tagged.to_dict` writes it); a
type with a ``to_dict`` of its own (:class:`~hb_core.config.TuningConfig`)
uses it; enums become their values; every sequence becomes a list.

Reading is strict, because a checkpoint holds exactly what was written (unlike a
tuning request, whose lenient rules live in :mod:`hb_core._validate`): numbers
must be JSON numbers, not numeric strings, and NaN is a value (a diverged
trial reports one). A union reads a value as the member of its JSON type
(``5`` stays an int in ``float | int | str``). A key missing from an object
takes the field's default (so checkpoints older than a field still read); a
field without a default must be there. Anything else is a
:class:`~hb_core.errors.StateError` naming the field (``state.trials[].budget``),
the rule and the value, never a crash later. Readers are built once per type.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from functools import cache
from typing import Any, Self, TypeVar

from hb_core.errors import StateError
from hb_core.pstruct import PVector, SortedItems

__all__ = ["Record", "fields_to_json", "read", "to_json"]

R = TypeVar("R")
_Reader = Callable[[Any, str], Any]


class Record:
    """Base of a frozen dataclass the checkpoint holds: ``to_dict``/``from_dict`` from its fields."""

    def to_dict(self) -> dict[str, Any]:
        return fields_to_json(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str | None = None) -> Self:
        """Read what :meth:`to_dict` wrote; ``what`` names it in errors (default: the class name)."""
        return read(cls, data, what or cls.__name__.lower())


def to_json(value: Any) -> Any:
    """``value`` as plain JSON (dicts, lists, numbers, strings, None)."""
    if value is None or isinstance(value, bool | int | float | str) and not isinstance(value, Enum):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Record):
        return fields_to_json(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        own = getattr(value, "to_dict", None)
        return own() if own is not None else fields_to_json(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return {name: to_json(item) for name, item in zip(value._fields, value, strict=True)}
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, tuple | list | PVector | SortedItems):
        return [to_json(item) for item in value]
    raise TypeError(f"cannot write {type(value).__name__} to a checkpoint")


def fields_to_json(record: Any) -> dict[str, Any]:
    """A dataclass's fields (after its ``kind`` tag, when it has one) as a JSON object."""
    body = {f.name: to_json(getattr(record, f.name)) for f in dataclasses.fields(record)}
    kind = getattr(type(record), "kind", None)
    return body if kind is None else {"kind": kind, **body}


def read(tp: type[R], value: Any, what: str) -> R:
    """``value`` (JSON) read as ``tp``; ``what`` names it in errors."""
    result: R = _reader(typing.cast(Any, tp))(value, what)
    return result


@cache
def _reader(tp: Any) -> _Reader:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return lambda value, what: value
    if tp in _SCALARS:
        return _SCALARS[tp]
    if origin in (typing.Union, types.UnionType):
        return _union([_reader(arg) for arg in args if arg is not type(None)],
                      [arg for arg in args if arg is not type(None)], type(None) in args)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return _enum(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _reader(args[0])

        def read_items(value: Any, what: str) -> tuple[Any, ...]:
            path = f"{what}[]"
            return tuple([item(x, path) for x in _sequence(value, what)])

        return read_items
    if origin is tuple:
        return _fixed([_reader(arg) for arg in args])
    if origin in (PVector, SortedItems):
        item, container = _reader(args[0]), origin

        def read_container(value: Any, what: str) -> Any:
            path = f"{what}[]"
            return container([item(x, path) for x in _sequence(value, what)])

        return read_container
    if origin in (Mapping, dict):
        item = _reader(args[1])
        return lambda value, what: {key: item(x, f"{what}.{key}") for key, x in _mapping(value, what).items()}
    if isinstance(tp, type) and (issubclass(tp, Record) or issubclass(tp, tuple) and hasattr(tp, "_fields")):
        return _record(tp)
    if hasattr(tp, "from_dict"):
        return _own(tp)
    if dataclasses.is_dataclass(tp):
        return _record(tp)
    raise TypeError(f"no checkpoint reader for {tp!r}")


def _record(cls: Any) -> _Reader:
    """Read an object into ``cls`` (a dataclass or NamedTuple) field by field."""
    hints = typing.get_type_hints(cls)
    defaults: dict[str, Callable[[], Any]] = {}
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = _constant(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory
    else:
        names = list(cls._fields)
        defaults = {name: _constant(value) for name, value in cls._field_defaults.items()}
    plan = [(name, _reader(hints[name]), defaults.get(name)) for name in names]
    paths: dict[str, list[str]] = {}  # the fields' paths under each ``what`` (items share one: ``trials[]``)

    def read_record(value: Any, what: str) -> Any:
        data = _mapping(value, what)
        field_paths = paths.get(what) or paths.setdefault(what, [f"{what}.{name}" for name in names])
        kwargs = {}
        for (name, read_field, default), path in zip(plan, field_paths, strict=True):
            if name in data:
                kwargs[name] = read_field(data[name], path)
            else:
                kwargs[name] = default() if default is not None else read_field(None, path)
        return cls(**kwargs)

    return read_record


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _own(cls: Any) -> _Reader:
    """A type that reads itself (:meth:`TuningConfig.from_dict`): its error becomes a StateError."""
    def read_own(value: Any, what: str) -> Any:
        try:
            return cls.from_dict(_mapping(value, what))
        except ValueError as exc:
            raise StateError(f"{what} is not a valid {cls.__name__}: {exc}") from exc

    return read_own


def _union(readers: list[_Reader], members: list[Any], optional: bool) -> _Reader:
    if len(readers) == 1:
        only = readers[0]
        return lambda value, what: None if value is None and optional else only(value, what)
    by_member = dict(zip(members, readers, strict=True))
    names = " or ".join(_NAMES.get(m, getattr(m, "__name__", str(m))) for m in members)

    def read_union(value: Any, what: str) -> Any:
        if value is None and optional:
            return None
        # the member of the value's JSON type: an int stays an int where the union has int
        kind = type(value)
        for member in ((int, float) if kind is int else (float,) if kind is float else (str,) if kind is str else ()):
            if member in by_member:
                return by_member[member](value, what)
        raise StateError(f"{what} must be {names}, but got {value!r:.80}")

    return read_union


def _enum(cls: type[Enum]) -> _Reader:
    def read_enum(value: Any, what: str) -> Any:
        try:
            return cls(value)
        except ValueError as exc:
            choices = ", ".join(str(member.value) for member in cls)
            raise StateError(f"{what} must be one of {choices}, but got {value!r:.80}") from exc

    return read_enum


def _fixed(readers: list[_Reader]) -> _Reader:
    def read_fixed(value: Any, what: str) -> tuple[Any, ...]:
        items = _sequence(value, what)
        if len(items) != len(readers):
            raise StateError(f"{what} must be an array of {len(readers)} items, but got {value!r:.80}")
        return tuple([read_item(x, what) for read_item, x in zip(readers, items, strict=True)])

    return read_fixed


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict) and not isinstance(value, Mapping):
        raise StateError(f"{what} must be a JSON object, but got {value!r:.80}")
    return value


def _sequence(value: Any, what: str) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise StateError(f"{what} must be a JSON array, but got {value!r:.80}")
    return value


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateError(f"{what} must be an integer, but got {value!r:.80}")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StateError(f"{what} must be a number, but got {value!r:.80}")
    return float(value)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise StateError(f"{what} must be a string, but got {value!r:.80}")
    return value


_SCALARS: dict[Any, _Reader] = {int: _integer, float: _number, str: _text}
_NAMES = {int: "an integer", float: "a number", str: "a string"}

