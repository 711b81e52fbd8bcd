"""The one loader of a tuning request: a ``CreateHyperParameterTuningJob`` body given as a dict, JSON text or file.

``hb-tune`` (its FILE), the Airflow operator (``tuning_request``) and the
pipeline factory (:func:`hb_airflow.pipeline.load_request`) all read requests
through :func:`load_request`, so a bad one gets the same error everywhere: a
:class:`~hb_core.errors.ConfigError` naming the field (``tuning_request``, or
the caller's), the rule, and the value (the path and the reason, the JSON
error and where, or the type found). The request's own rules are
:meth:`hb_core.config.TuningConfig.from_dict`'s.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hb_core.errors import ConfigError

__all__ = ["is_json_text", "load_request", "request_path"]


def is_json_text(source: object) -> bool:
    """Whether ``source`` is a request written inline: a string starting with ``{``."""
    return isinstance(source, str) and source.lstrip().startswith("{")


def request_path(source: object, base_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The file a request ``source`` names (relative paths resolve against ``base_dir``), or None for a
    mapping or inline JSON text."""
    if isinstance(source, Mapping) or is_json_text(source) or not isinstance(source, str | os.PathLike):
        return None
    path = Path(source)
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


def load_request(source: Mapping[str, Any] | str | os.PathLike[str], *, field: str = "tuning_request",
                 base_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The request as a dict of its own (a mapping is deep-copied): ``source`` is a mapping, JSON text
    (starting with ``{``) or the path of a JSON file (:func:`request_path`). Raises ConfigError naming ``field``."""
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    path = request_path(source, base_dir)
    if path is None:
        text, where = str(source), "the text"
    else:
        try:
            text, where = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise ConfigError(field, "`the tuning request file is readable` must hold",
                              f"{path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(field, "`the tuning request is valid JSON` must hold",
                          f"{where}: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise ConfigError(field, "`the tuning request is a JSON object` must hold", type(data).__name__)
    return data
