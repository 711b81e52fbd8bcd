"""The tuning configuration: the body of a SageMaker ``CreateHyperParameterTuningJob`` request.

A request users already wrote for SageMaker Automatic Model Tuning (AMT) works
here unchanged. ``TuningConfig.from_dict`` reads it, checks every rule and
raises :class:`~hb_core.errors.ConfigError` naming the JSON path, the rule and
the value found; ``to_dict`` writes the AMT layout back (numbers as strings
where the API uses strings, JSON numbers where it uses numbers), and
``TuningConfig.from_dict(c.to_dict()) == c``.

Terms:

- *request*: the JSON object with top-level keys ``HyperParameterTuningJobName``,
  ``HyperParameterTuningJobConfig``, ``TrainingJobDefinition`` (or a one-item
  ``TrainingJobDefinitions`` list), ``WarmStartConfig``, ``Tags``, ``Autotune``
  and our extension key ``TuningJobExtensions``.
- *resource*: what a trial is trained in (epochs by default). With AMT
  semantics a trial's resource is the count of objective values it reported;
  ``ResourceMetricName`` names a metric that reports it explicitly instead.
- *rung*: a resource at which Hyperband judges trials (see ``hb_core.rungs``).
- *reduction factor* (eta): Hyperband keeps the top 1/eta of a rung.
- *bracket*: a sequence of rungs starting at a later rung; more brackets hedge
  against judging slow starters too early.
- *variant*: ``Stopping`` (AMT: a trial runs to MaxResource unless stopped at a
  rung) or ``Promotion`` (a trial pauses at a rung and resumes from its
  checkpoint when promoted).
- *absent*: a key that is missing or ``null``; an absent optional field takes
  its default.

Our extensions, in AMT's CamelCase style:

- ``HyperParameterTuningJobConfig.StrategyConfig.HyperbandStrategyConfig``:
  ``ReductionFactor`` (int >= 2, default 3), ``NumberOfBrackets`` (int >= 1, at
  most the number of rungs, default 1), ``Variant``, ``Sampler``,
  ``ResourceMetricName``, next to AMT's ``MinResource`` (default 1) and
  ``MaxResource``; ``Sampler`` is ``Random`` (default), ``MultiFidelityGP`` or ``Bayesian``
  (see :class:`SamplerType`; ``KDE`` is refused, :data:`REMOVED_SAMPLERS`); ``RandomFraction`` (a number in [0, 1], default
  1/3 as in BOHB) is the share of a model-based sampler's proposals drawn at
  random. ``RungBarrierTimeoutSeconds`` (a number in (0, 3600]; absent: the
  barrier is off) turns the rung barrier on: a training script that opts in
  (:mod:`hb_core.barrier`) waits at each rung of its bracket, at most that
  long, for the controller's verdict. ``MinRungResults`` (int >= 1, default 1)
  is how many values a rung must hold before it keeps or promotes a trial (the
  delayed rule, :func:`hb_core.rungs.keeps`). When ``MaxResource`` is absent it
  is read, as AMT does, from the first static hyperparameter among ``epochs``,
  ``numepochs``, ``n-epochs``, ``n_epochs``, ``num_epochs``.
- Top-level ``TuningJobExtensions``: ``MaxFailedTrainingJobs``,
  ``MaxRetriesPerTrial``, ``MaxBillableSeconds``, ``MaxCost``,
  ``EnforceAmtQuotas`` (see :class:`Extensions`).

Our choices where AMT is silent or where we differ:

- Unknown keys are errors at every level we read, and the message says where
  a misplaced key belongs. Inside ``TrainingJobDefinition`` only the fields we
  use are checked; the rest is kept verbatim for the SageMaker backend.

- ``TrainingJobDefinitions`` must hold exactly one definition. Its
  ``TuningObjective`` and ``HyperParameterRanges`` may stand in for the tuning
  config's objective and ranges (not both); ``to_dict`` writes them into
  ``HyperParameterTuningJobConfig`` and the definition as ``TrainingJobDefinition``.
- ``MaxNumberOfTrainingJobs`` is required except for Grid, where it defaults
  to the grid size.
- AMT's service quotas (750 training jobs for Hyperband, 100 in parallel) are
  not ours: the controller runs any count. :mod:`hb_core.amt` lists where a
  request exceeds them (``hb-tune validate --amt``), and
  ``TuningJobExtensions.EnforceAmtQuotas`` makes them part of validation.
- ``Autotune`` is rejected: it asks AMT to choose the strategy, which we cannot.
- ``StaticHyperParameters`` values may be JSON numbers or booleans; they are
  stored as strings (``3`` -> ``"3"``, ``0.1`` -> ``"0.1"``, ``true`` -> ``"true"``).
- ``Tags`` are kept (``TuningConfig.tags``) so backends can tag trials.
- ``ReductionFactor`` is at most 20,000 and ``RandomSeed`` and the job counts
  at most 2**31 - 1 (AMT's integers are 32-bit).
- Number formats follow ``hb_core._validate``: strings such as ``"5"`` are
  numbers, integral values such as ``"5.0"`` are integers, booleans are never
  numbers.

Layout (import every name from here): :mod:`~hb_core.config.keys` (JSON paths,
allowed keys, limits), :mod:`~hb_core.config.enums` (``Strategy``,
``SamplerType``, ...), :mod:`~hb_core.config.sections` (objective, limits,
``HyperbandStrategyConfig``, completion criteria, warm start, extensions),
:mod:`~hb_core.config.definition` (``TrainingJobDefinition``) and
:mod:`~hb_core.config.tuning` (``TuningConfig``).
"""

from __future__ import annotations

# Every public name of the submodules is importable from here, as when this was one module.
from hb_core.config.definition import (
    MetricDefinition,
    TrainingJobDefinition,
)
from hb_core.config.enums import (
    REMOVED_SAMPLERS,
    EarlyStoppingType,
    HyperbandVariant,
    ObjectiveType,
    SamplerType,
    Strategy,
    WarmStartType,
)
from hb_core.config.keys import (
    CONFIG,
    CONFIG_KEYS,
    CRITERIA,
    CRITERIA_KEYS,
    DEFINITION,
    DEFINITION_KEYS,
    EPOCH_KEYS,
    EXTENSION_KEYS,
    EXTENSIONS,
    HOMES,
    HYPERBAND,
    HYPERBAND_KEYS,
    INT_MAX,
    JOB_NAME,
    LIFTED_KEYS,
    LIMIT_KEYS,
    LIMITS,
    MAX_BARRIER_SECONDS,
    MAX_HYPERPARAMETERS,
    MAX_RESOURCE_LIMIT,
    RANGE_KEYS,
    RANGES,
    STRATEGY_CONFIG,
    TOP_KEYS,
    WARM_START_KEYS,
    resource_hyperparameter,
)
from hb_core.config.sections import (
    CompletionCriteria,
    Extensions,
    HyperbandConfig,
    Objective,
    ResourceLimits,
    WarmStartConfig,
)
from hb_core.config.tuning import (
    TuningConfig,
    stored_request,
)

__all__ = [
    "CONFIG",
    "CONFIG_KEYS",
    "CRITERIA",
    "CRITERIA_KEYS",
    "CompletionCriteria",
    "DEFINITION",
    "DEFINITION_KEYS",
    "EPOCH_KEYS",
    "EXTENSIONS",
    "EXTENSION_KEYS",
    "EarlyStoppingType",
    "Extensions",
    "HOMES",
    "HYPERBAND",
    "HYPERBAND_KEYS",
    "HyperbandConfig",
    "HyperbandVariant",
    "INT_MAX",
    "JOB_NAME",
    "LIFTED_KEYS",
    "LIMITS",
    "LIMIT_KEYS",
    "MAX_BARRIER_SECONDS",
    "MAX_HYPERPARAMETERS",
    "MAX_RESOURCE_LIMIT",
    "MetricDefinition",
    "Objective",
    "ObjectiveType",
    "RANGES",
    "RANGE_KEYS",
    "REMOVED_SAMPLERS",
    "ResourceLimits",
    "STRATEGY_CONFIG",
    "SamplerType",
    "Strategy",
    "TOP_KEYS",
    "TrainingJobDefinition",
    "TuningConfig",
    "WARM_START_KEYS",
    "WarmStartConfig",
    "WarmStartType",
    "resource_hyperparameter",
    "stored_request",
]
