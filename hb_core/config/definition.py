"""``TrainingJobDefinition``: the fields of the training job the tuner reads; the rest is kept verbatim.

Part of :mod:`hb_core.config` (its docstring has the terms and the rules); import from there."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hb_core import _validate as v
from hb_core.config.keys import (
    DEFINITION,
    DEFINITION_KEYS,
    INT_MAX,
    LIFTED_KEYS,
    _fields,
)
from hb_core.errors import ConfigError
from hb_core.latency import MAX_KEEP_ALIVE_SECONDS


@dataclass(frozen=True)
class MetricDefinition:
    """A metric the training job prints: SageMaker applies ``regex`` to each log line, group 1 is the value."""

    name: str
    regex: str

    @classmethod
    def from_dict(cls, raw: object, path: str) -> MetricDefinition:
        f = _fields(raw, path, ("Name", "Regex"))
        name = f.string("Name", max_len=255)
        return cls(name, v.regex(f.need("Regex"), f.at("Regex"), max_len=500))

    def to_dict(self) -> dict[str, str]:
        return {"Name": self.name, "Regex": self.regex}


def _static_hyperparameters(raw: object, path: str) -> dict[str, str]:
    """``StaticHyperParameters``: keys of 1-256 characters, values made strings of at most 256."""
    obj = v.mapping(raw, path)
    for key in obj:
        v.string(key, v.at(path, key), max_len=256)
    return {key: v.hyperparameter_text(value, v.at(path, key), max_len=256) for key, value in obj.items()}


def _metric_definitions(raw: object, path: str) -> tuple[MetricDefinition, ...]:
    """At most 40 ``MetricDefinitions`` with distinct names."""
    metrics: list[MetricDefinition] = []
    for i, item in enumerate(v.sequence(raw, path, max_len=40)):
        metric = MetricDefinition.from_dict(item, v.index(path, i))
        if any(m.name == metric.name for m in metrics):
            raise ConfigError(v.at(v.index(path, i), "Name"), "`metric names are distinct` must hold", metric.name)
        metrics.append(metric)
    return tuple(metrics)


def _canonical_raw(
    raw: Mapping[str, Any], static: Mapping[str, str], metrics: tuple[MetricDefinition, ...], max_runtime: int | None
) -> dict[str, Any]:
    """``raw`` as JSON, with the typed fields written over their places and the lifted keys dropped."""
    out: dict[str, Any] = v.json_copy(raw, DEFINITION)
    for key in (*LIFTED_KEYS, "StaticHyperParameters"):
        out.pop(key, None)
    if static:
        out["StaticHyperParameters"] = dict(static)
    algorithm = out.get("AlgorithmSpecification")
    algorithm = algorithm if isinstance(algorithm, dict) else {}
    algorithm.pop("MetricDefinitions", None)
    if metrics:
        out["AlgorithmSpecification"] = {**algorithm, "MetricDefinitions": [m.to_dict() for m in metrics]}
    stopping = out.get("StoppingCondition")
    stopping = stopping if isinstance(stopping, dict) else {}
    stopping.pop("MaxRuntimeInSeconds", None)
    if max_runtime is not None:
        out["StoppingCondition"] = {**stopping, "MaxRuntimeInSeconds": max_runtime}
    return out


@dataclass(frozen=True, eq=False)
class TrainingJobDefinition:
    """The training job every trial runs (AMT's ``HyperParameterTrainingJobDefinition``).

    Only the fields the tuner reads are typed; ``raw`` is the whole definition
    as JSON, kept for the SageMaker backend, with the typed fields written into
    it. Treat ``raw`` as read-only; ``to_dict`` returns a copy. Two definitions
    are equal when their ``raw`` JSON is.

    - ``static_hyperparameters``: ``StaticHyperParameters``, passed to every trial.
    - ``metric_definitions``: ``AlgorithmSpecification.MetricDefinitions``.
    - ``max_runtime_in_seconds``: ``StoppingCondition.MaxRuntimeInSeconds`` of one trial.
    """

    static_hyperparameters: Mapping[str, str]
    metric_definitions: tuple[MetricDefinition, ...]
    max_runtime_in_seconds: int | None
    raw: Mapping[str, Any]

    def __post_init__(self) -> None:
        static = {key: self.static_hyperparameters[key] for key in sorted(self.static_hyperparameters)}
        metrics = tuple(self.metric_definitions)
        object.__setattr__(self, "static_hyperparameters", MappingProxyType(static))
        object.__setattr__(self, "metric_definitions", metrics)
        object.__setattr__(self, "raw", _canonical_raw(self.raw, static, metrics, self.max_runtime_in_seconds))

    def _key(self) -> str:
        return json.dumps(self.raw, sort_keys=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrainingJobDefinition) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @classmethod
    def from_dict(cls, raw: object, path: str = DEFINITION) -> TrainingJobDefinition:
        """Read a definition; the keys in ``LIFTED_KEYS`` are left to :meth:`TuningConfig.from_dict`."""
        f = _fields(raw, path, DEFINITION_KEYS)
        static_raw = f.get("StaticHyperParameters")
        static = {} if static_raw is None else _static_hyperparameters(static_raw, f.at("StaticHyperParameters"))
        algorithm = f.section("AlgorithmSpecification", None)
        metrics_raw = algorithm.get("MetricDefinitions")
        metrics = () if metrics_raw is None else _metric_definitions(metrics_raw, algorithm.at("MetricDefinitions"))
        runtime = f.section("StoppingCondition", None).integer("MaxRuntimeInSeconds", lo=1, hi=INT_MAX, default=None)
        return cls(static, metrics, runtime, f.obj)

    @property
    def keep_alive_requested(self) -> int | None:
        """``ResourceConfig.KeepAlivePeriodInSeconds`` as the request gives it (None: not given)."""
        resource = self.raw.get("ResourceConfig")
        value = resource.get("KeepAlivePeriodInSeconds") if isinstance(resource, Mapping) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def to_dict(self) -> dict[str, Any]:
        """A mutable copy of the definition in the AMT layout."""
        return copy.deepcopy(dict(self.raw))

    def require_sagemaker_fields(self, path: str = DEFINITION, *, objective_metric: str | None = None) -> None:
        """Check what CreateTrainingJob needs; called by the SageMaker backend only.

        With ``objective_metric``, a definition that has MetricDefinitions must define it.
        """
        f = _fields(self.raw, path, None)
        algorithm = _fields(f.get("AlgorithmSpecification"), f.at("AlgorithmSpecification"), None)
        if not (algorithm.get("TrainingImage") or algorithm.get("AlgorithmName")):
            rule = "`TrainingImage or AlgorithmName is given` must hold"
            raise ConfigError(algorithm.at("TrainingImage"), rule, v.MISSING)
        f.string("RoleArn", max_len=2048)
        f.section("OutputDataConfig", None).string("S3OutputPath", max_len=1024)
        if not (f.get("HyperParameterTuningResourceConfig") or f.section("ResourceConfig", None).get("InstanceType")):
            rule = "`ResourceConfig.InstanceType or HyperParameterTuningResourceConfig is given` must hold"
            raise ConfigError(v.at(path, "ResourceConfig.InstanceType"), rule, v.MISSING)
        if f.get("ResourceConfig") is not None:
            f.section("ResourceConfig", None).integer("KeepAlivePeriodInSeconds", lo=0, hi=MAX_KEEP_ALIVE_SECONDS,
                                                      default=None)
        _fields(f.get("StoppingCondition"), f.at("StoppingCondition"), None)
        if objective_metric is not None and self.metric_definitions:
            self._require_metric(objective_metric, path)

    def require_local_fields(
        self, objective_metric: str, path: str = DEFINITION, *, resource_metric: str | None = None
    ) -> None:
        """Check what the local backend needs: the entry point and the metrics it parses from stdout."""
        if "sagemaker_program" not in self.static_hyperparameters:
            rule = "`sagemaker_program names the entry point script` must hold"
            raise ConfigError(v.at(path, "StaticHyperParameters.sagemaker_program"), rule, v.MISSING)
        self.require_metric_definitions(objective_metric, path, resource_metric=resource_metric)

    def require_metric_definitions(
        self, objective_metric: str, path: str = DEFINITION, *, resource_metric: str | None = None
    ) -> None:
        """Check that the objective (and the resource metric) have a ``MetricDefinitions`` regex to parse lines."""
        self._require_metric(objective_metric, path)
        if resource_metric is not None:
            self._require_metric(resource_metric, path)

    def _require_metric(self, name: str, path: str) -> None:
        names = [m.name for m in self.metric_definitions]
        if name not in names:
            rule = f"`a MetricDefinition is named {name!r}` must hold"
            raise ConfigError(v.at(path, "AlgorithmSpecification.MetricDefinitions"), rule, names)
