""":class:`TuningConfig`: the whole request, read from JSON or a dict, checked, and written back.

Part of :mod:`hb_core.config` (its docstring has the terms and the rules); import from there."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hb_core import _validate as v
from hb_core import amt
from hb_core.config.definition import (
    TrainingJobDefinition,
)
from hb_core.config.enums import (
    EarlyStoppingType,
    HyperbandVariant,
    SamplerType,
    Strategy,
    removed_sampler,
)
from hb_core.config.keys import (
    CONFIG,
    CONFIG_KEYS,
    CRITERIA_KEYS,
    DEFINITION,
    EXTENSIONS,
    HOMES,
    HYPERBAND,
    INT_MAX,
    JOB_NAME,
    LIMIT_KEYS,
    LIMITS,
    MAX_HYPERPARAMETERS,
    RANGE_KEYS,
    STRATEGY_CONFIG,
    TOP_KEYS,
    _fields,
    _without_none,
)
from hb_core.config.sections import (
    CompletionCriteria,
    Extensions,
    HyperbandConfig,
    Objective,
    ResourceLimits,
    WarmStartConfig,
    _inferred_max_resource,
    _tags,
)
from hb_core.errors import ConfigError
from hb_core.latency import keep_alive_seconds
from hb_core.space import CategoricalParameter, SearchSpace


@dataclass(frozen=True)
class TuningConfig:
    """A checked tuning request: what to tune, how, and within which limits.

    - ``name``: ``HyperParameterTuningJobName`` (1-32 characters of
      ``[a-zA-Z0-9](-*[a-zA-Z0-9])*``), or None.
    - ``hyperband``: set exactly when ``strategy`` is Hyperband.
    - ``early_stopping_type``: AMT's ``TrainingJobEarlyStoppingType`` (``Off``
      when absent; must be ``Off`` with Hyperband).
    - ``training_job_definition``: None for a simulated run, which needs none.
    - ``tags``: the request's ``Tags`` as (Key, Value) pairs, for the backend.
    """

    name: str | None
    strategy: Strategy
    objective: Objective
    resource_limits: ResourceLimits
    space: SearchSpace
    hyperband: HyperbandConfig | None
    completion: CompletionCriteria
    random_seed: int | None
    early_stopping_type: EarlyStoppingType
    training_job_definition: TrainingJobDefinition | None
    warm_start: WarmStartConfig | None
    extensions: Extensions
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if (self.hyperband is not None) != (self.strategy == Strategy.HYPERBAND):
            rule = "`HyperbandStrategyConfig is set exactly when Strategy is Hyperband` must hold"
            raise ConfigError(HYPERBAND, rule, v.Shown(f"Strategy={self.strategy}, hyperband={self.hyperband}"))

    @property
    def max_resource(self) -> int | None:
        """The resource a trial trains for at most: MaxResource, else an epochs static hyperparameter, else None."""
        if self.hyperband is not None:
            return self.hyperband.max_resource
        static = {} if self.training_job_definition is None else self.training_job_definition.static_hyperparameters
        try:
            return _inferred_max_resource(static, HYPERBAND)
        except ConfigError:
            return None

    def keep_alive_seconds(self, *, startup_seconds: float | None = None,
                           first_rung_seconds: float | None = None) -> int:
        """The ``KeepAlivePeriodInSeconds`` of every trial's training job: the request's, else the product's
        default for this strategy (:func:`hb_core.latency.keep_alive_seconds`, the one rule of warm pools)."""
        hb = self.hyperband
        requested = None if self.training_job_definition is None else self.training_job_definition.keep_alive_requested
        return keep_alive_seconds(requested, hyperband=hb is not None,
                                  promotion=hb is not None and hb.variant is HyperbandVariant.PROMOTION,
                                  startup_seconds=startup_seconds, first_rung_seconds=first_rung_seconds)

    @classmethod
    def from_json(cls, text: str) -> TuningConfig:
        """:meth:`from_dict` of a JSON text; bad JSON is a ConfigError at path ``<json>``."""
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as error:
            found = v.Shown(f"{error.msg} at line {error.lineno}, column {error.colno}")
            raise ConfigError("<json>", "`the text is valid JSON` must hold", found) from None
        except RecursionError:
            raise ConfigError("<json>", "`the JSON nests at most a few hundred levels` must hold", v.MISSING) from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, request: Mapping[str, Any]) -> TuningConfig:
        """Check a ``CreateHyperParameterTuningJob`` request body; see the module docstring."""
        top = _fields(v.mapping(request, "<request>"), "", TOP_KEYS)
        if top.get("Autotune") is not None:
            hint = "Autotune lets AMT choose the strategy; set Strategy and ParameterRanges yourself"
            raise ConfigError("Autotune", "`Autotune is absent` must hold", v.brief(top.get("Autotune")), hint=hint)
        name = top.string("HyperParameterTuningJobName", max_len=32, pattern=JOB_NAME, default=None)
        definition = _definition(top)
        config = _tuning_job_config(top.need(CONFIG))
        strategy = config.choice("Strategy", Strategy)
        limits = ResourceLimits.from_dict(config.need("ResourceLimits"))
        objective = Objective.from_dict(
            *_lifted(config, "HyperParameterTuningJobObjective", definition, "TuningObjective")
        )
        ranges, ranges_path = _lifted(config, "ParameterRanges", definition, "HyperParameterRanges")
        space = SearchSpace.from_dict(v.mapping(ranges, ranges_path), ranges_path, homes=HOMES)
        job = None if definition is None else TrainingJobDefinition.from_dict(definition.obj, definition.path)
        _check_static(space, job)
        warm_start = top.get("WarmStartConfig")
        tuning = cls(
            name=name,
            strategy=strategy,
            objective=objective,
            resource_limits=_completed_limits(limits, strategy, space, ranges_path),
            space=space,
            hyperband=_hyperband(config, strategy, job),
            completion=CompletionCriteria.from_dict(config.get("TuningJobCompletionCriteria")),
            random_seed=config.integer("RandomSeed", lo=0, hi=INT_MAX, default=None),
            early_stopping_type=_early_stopping(config, strategy),
            training_job_definition=job,
            warm_start=None if warm_start is None else WarmStartConfig.from_dict(warm_start),
            extensions=Extensions.from_dict(top.get(EXTENSIONS)),
            tags=() if top.get("Tags") is None else _tags(top.get("Tags")),
        )
        if tuning.extensions.enforce_amt_quotas:
            for finding in tuning.amt_quota_findings():
                raise finding
        return tuning

    def amt_quota_findings(self) -> tuple[ConfigError, ...]:
        """Where this request exceeds AMT's own quotas (:func:`hb_core.amt.quota_findings`)."""
        limits = self.resource_limits
        return amt.quota_findings(hyperband=self.strategy is Strategy.HYPERBAND, limits_path=LIMITS,
                                  max_jobs=limits.max_number_of_training_jobs,
                                  max_parallel=limits.max_parallel_training_jobs)

    def amt_findings(self) -> tuple[ConfigError, ...]:
        """Everything AMT would refuse in this request: its quotas, then our extension keys."""
        return self.amt_quota_findings() + amt.extension_findings(self.to_dict(), HYPERBAND, EXTENSIONS)

    def to_dict(self) -> dict[str, Any]:
        """The request in the AMT layout; ``TuningConfig.from_dict(c.to_dict()) == c``."""
        hyperband = None if self.hyperband is None else {"HyperbandStrategyConfig": self.hyperband.to_dict()}
        config = {
            "Strategy": self.strategy.value,
            "StrategyConfig": hyperband,
            "HyperParameterTuningJobObjective": self.objective.to_dict(),
            "ResourceLimits": self.resource_limits.to_dict(),
            "ParameterRanges": self.space.to_dict(),
            "TrainingJobEarlyStoppingType": self.early_stopping_type.value,
            "TuningJobCompletionCriteria": self.completion.to_dict() or None,
            "RandomSeed": self.random_seed,
        }
        job, warm = self.training_job_definition, self.warm_start
        request = {
            "HyperParameterTuningJobName": self.name,
            CONFIG: _without_none(config),
            DEFINITION: None if job is None else job.to_dict(),
            "WarmStartConfig": None if warm is None else warm.to_dict(),
            "Tags": [{"Key": key, "Value": value} for key, value in self.tags] or None,
            EXTENSIONS: self.extensions.to_dict() or None,
        }
        return _without_none(request)


def stored_request(request: Any) -> tuple[Any, str | None]:
    """A request read back from a checkpoint, with a removed ``Sampler`` read as Random; and the removed name.

    A new request naming a removed sampler is refused (:data:`REMOVED_SAMPLERS`); a tuning job saved before
    the removal still loads, so that it can be shown, stopped, or finished with Random from then on. Anything
    else passes through unchanged (and is checked by :meth:`TuningConfig.from_dict`).
    """
    try:
        config = request[CONFIG]
        strategy = config["StrategyConfig"]
        removed = removed_sampler(strategy["HyperbandStrategyConfig"].get("Sampler"))
    except (KeyError, TypeError, AttributeError):
        return request, None
    if removed is None:
        return request, None
    hyperband = {**strategy["HyperbandStrategyConfig"], "Sampler": SamplerType.RANDOM.value}
    return {**request, CONFIG: {**config, "StrategyConfig": {**strategy, "HyperbandStrategyConfig": hyperband}}}, removed


def _reject_constant(name: str) -> None:
    raise ConfigError("<json>", "`numbers are finite` must hold", v.Shown(name))


def _tuning_job_config(raw: object) -> v.Fields:
    """``HyperParameterTuningJobConfig``, with the keys of it and its objects checked before anything else.

    So a request in the wrong layout (the seed article's MinResource beside
    MaxParallelTrainingJobs) first gets the hint where the key belongs.
    """
    config = _fields(raw, CONFIG, CONFIG_KEYS)
    nested = {
        "ResourceLimits": LIMIT_KEYS,
        "ParameterRanges": RANGE_KEYS,
        "StrategyConfig": ("HyperbandStrategyConfig",),
        "TuningJobCompletionCriteria": CRITERIA_KEYS,
    }
    for key, allowed in nested.items():
        if isinstance(config.get(key), Mapping):
            config.section(key, allowed)
    return config


def _definition(top: v.Fields) -> v.Fields | None:
    """The one training job definition, from ``TrainingJobDefinition`` or a one-item ``TrainingJobDefinitions``."""
    single, many = top.get(DEFINITION), top.get("TrainingJobDefinitions")
    if single is not None and many is not None:
        rule = "`TrainingJobDefinition and TrainingJobDefinitions are not both given` must hold"
        raise ConfigError("TrainingJobDefinitions", rule, v.brief(many))
    if many is None:
        return None if single is None else _fields(single, DEFINITION, None)
    items = top.items("TrainingJobDefinitions")
    if len(items) != 1:
        hint = "Only one training job definition is supported; run one tuning job per definition"
        rule = "`len(TrainingJobDefinitions) == 1` must hold"
        raise ConfigError("TrainingJobDefinitions", rule, len(items), hint=hint)
    return _fields(*items[0], None)


def _lifted(config: v.Fields, key: str, definition: v.Fields | None, definition_key: str) -> tuple[object, str]:
    """A field given in the tuning config or in the definition (exactly one), with its path."""
    if definition is None or definition.get(definition_key) is None:
        return config.need(key), config.at(key)
    there = definition.get(definition_key)
    if config.get(key) is not None:
        rule = f"`{key} is given once` must hold"
        raise ConfigError(definition.at(definition_key), rule, v.brief(there), hint=f"{config.at(key)} is given too")
    return there, definition.at(definition_key)


def _check_static(space: SearchSpace, job: TrainingJobDefinition | None) -> None:
    """Tuned names are not static, and a trial gets at most 100 hyperparameters."""
    static = {} if job is None else job.static_hyperparameters
    path = f"{DEFINITION}.StaticHyperParameters"
    for name in space.names:
        if name in static:
            raise ConfigError(v.at(path, name), "`a tuned hyperparameter is not also static` must hold", name)
    if len(static) + len(space.names) > MAX_HYPERPARAMETERS:
        rule = f"`static + tuned hyperparameters <= {MAX_HYPERPARAMETERS}` must hold"
        raise ConfigError(path, rule, v.Shown(f"{len(static)} static + {len(space.names)} tuned"))


def _hyperband(config: v.Fields, strategy: Strategy, job: TrainingJobDefinition | None) -> HyperbandConfig | None:
    """``StrategyConfig.HyperbandStrategyConfig``: given only with Hyperband, and read always then."""
    if strategy is not Strategy.HYPERBAND:
        if config.get("StrategyConfig") is not None:
            rule = "`StrategyConfig is given only when Strategy is Hyperband` must hold"
            hint = f"Strategy is {strategy.value}"
            raise ConfigError(STRATEGY_CONFIG, rule, v.brief(config.get("StrategyConfig")), hint=hint)
        return None
    outer = config.section("StrategyConfig", ("HyperbandStrategyConfig",))
    static = {} if job is None else job.static_hyperparameters
    hyperband = HyperbandConfig.from_dict(outer.get("HyperbandStrategyConfig"), static)
    metric = hyperband.resource_metric_name
    defined = [] if job is None else [m.name for m in job.metric_definitions]
    if metric is not None and defined and metric not in defined:
        rule = "`ResourceMetricName names a MetricDefinition` must hold"
        raise ConfigError(v.at(HYPERBAND, "ResourceMetricName"), rule, metric)
    return hyperband


def _early_stopping(config: v.Fields, strategy: Strategy) -> EarlyStoppingType:
    kind = config.choice("TrainingJobEarlyStoppingType", EarlyStoppingType, default=EarlyStoppingType.OFF)
    if strategy is Strategy.HYPERBAND and kind is not EarlyStoppingType.OFF:
        rule = "`TrainingJobEarlyStoppingType is Off with Hyperband` must hold"
        hint = "Hyperband stops trials itself"
        raise ConfigError(config.at("TrainingJobEarlyStoppingType"), rule, kind.value, hint=hint)
    return kind


def _completed_limits(
    limits: ResourceLimits, strategy: Strategy, space: SearchSpace, ranges_path: str
) -> ResourceLimits:
    """The strategy's rules on the limits: Grid takes categorical ranges only and defaults the job count."""
    jobs_path = v.at(LIMITS, "MaxNumberOfTrainingJobs")
    jobs = limits.max_number_of_training_jobs
    if strategy is Strategy.GRID:
        numeric = [p.name for p in space.parameters if not isinstance(p, CategoricalParameter)]
        if numeric:
            raise ConfigError(ranges_path, "`Grid takes CategoricalParameterRanges only` must hold", numeric)
        if jobs is None and space.grid_size() > INT_MAX:
            rule = f"`MaxNumberOfTrainingJobs is given when the grid has more than {INT_MAX} points` must hold"
            raise ConfigError(jobs_path, rule, v.MISSING)
        if jobs is None:
            return ResourceLimits(space.grid_size(), limits.max_parallel_training_jobs, limits.max_runtime_in_seconds)
    elif jobs is None:
        rule = "`MaxNumberOfTrainingJobs is given (it may be absent only with Grid)` must hold"
        raise ConfigError(jobs_path, rule, v.MISSING)
    return limits
