"""The request's enumerations: strategy, objective type, Hyperband variant and sampler, early stopping, warm start.

Part of :mod:`hb_core.config` (its docstring has the terms and the rules); import from there."""

from __future__ import annotations

from enum import StrEnum


class Strategy(StrEnum):
    """How configurations are chosen."""

    BAYESIAN = "Bayesian"
    RANDOM = "Random"
    HYPERBAND = "Hyperband"
    GRID = "Grid"


class ObjectiveType(StrEnum):
    """Whether larger or smaller objective values are better."""

    MAXIMIZE = "Maximize"
    MINIMIZE = "Minimize"


class HyperbandVariant(StrEnum):
    """What happens to a trial at a rung; see the module docstring."""

    STOPPING = "Stopping"
    PROMOTION = "Promotion"


class SamplerType(StrEnum):
    """How Hyperband draws new configurations (``HyperbandStrategyConfig.Sampler``).

    - ``Random``: uniform draws under each parameter's scaling (Hyperband as published).
    - ``Bayesian``: model-based: a Gaussian process with expected improvement
      over those rung values (:mod:`hb_core.strategies.model_based`, :mod:`hb_core.strategies.gp`).
    - ``MultiFidelityGP``: model-based, as MOBSTER: one Gaussian process over
      (configuration, rung level) fitted to every rung value, pending trials
      fantasised, expected improvement at the highest rung with enough values
      (:class:`hb_core.strategies.multi_fidelity.JointGPSampler`).

    The model-based samplers propose at random a share ``RandomFraction`` of
    the time, and whenever the rungs hold too few values for a model.
    """

    RANDOM = "Random"
    BAYESIAN = "Bayesian"
    MULTI_FIDELITY_GP = "MultiFidelityGP"


#: Samplers that were removed, and why: a request naming one gets a ConfigError with this hint; a checkpoint
#: saved with one is read with Random in its place (:func:`hb_core.config.stored_request`).
REMOVED_SAMPLERS = {
    "KDE": "Sampler KDE (BOHB) was removed: it was level with Random (HB-stop/HB-KDE 0.97x-1.04x over 50 seeds "
           "on NAS-Bench-201) at 9x the CPU; use Random, or MultiFidelityGP for a model-based sampler",
}


def removed_sampler(name: object) -> str | None:
    """The :data:`REMOVED_SAMPLERS` key ``name`` names (case aside), or None."""
    return next((k for k in REMOVED_SAMPLERS if str(name).casefold() == k.casefold()), None)


class EarlyStoppingType(StrEnum):
    """AMT's ``TrainingJobEarlyStoppingType``: ``Auto`` is its median rule; Hyperband needs ``Off``."""

    OFF = "Off"
    AUTO = "Auto"


class WarmStartType(StrEnum):
    """What a warm start may assume about its parent tuning jobs."""

    IDENTICAL_DATA_AND_ALGORITHM = "IdenticalDataAndAlgorithm"
    TRANSFER_LEARNING = "TransferLearning"


class _Toggle(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"
