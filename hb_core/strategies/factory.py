"""The sampler a tuning config asks for: :func:`make_sampler`, the one place that knows every strategy."""

from __future__ import annotations

from collections.abc import Sequence

from hb_core.config import SamplerType, Strategy, TuningConfig
from hb_core.state import PriorObservation
from hb_core.strategies.base import GridSampler, RandomSampler, Sampler
from hb_core.strategies.bayesian import BayesianSampler
from hb_core.strategies.model_based import RungGPSampler
from hb_core.strategies.multi_fidelity import JointGPSampler

__all__ = ["make_sampler"]


def make_sampler(config: TuningConfig, *, prior: Sequence[PriorObservation] = ()) -> Sampler:
    """The sampler a tuning config asks for.

    Grid and Random strategies get :class:`GridSampler` and :class:`RandomSampler`;
    Bayesian gets :class:`~hb_core.strategies.bayesian.BayesianSampler`; Hyperband gets the
    sampler its ``HyperbandStrategyConfig.Sampler`` names (Random,
    :class:`~hb_core.strategies.model_based.RungGPSampler` or
    :class:`~hb_core.strategies.multi_fidelity.JointGPSampler`).
    ``prior`` (warm-start observations, :func:`hb_core.strategies.warm_start.warm_prior`,
    kept in ``TuningState.prior``) seeds the model-based samplers; the others ignore it.
    """
    if config.strategy is Strategy.GRID:
        return GridSampler(config.space)
    if config.strategy is Strategy.BAYESIAN:
        return BayesianSampler(config.space, config.objective.sign, prior=prior)
    hb = config.hyperband
    if hb is not None and hb.sampler is not SamplerType.RANDOM:
        kinds: dict[SamplerType, type[RungGPSampler | JointGPSampler]] = {
            SamplerType.BAYESIAN: RungGPSampler, SamplerType.MULTI_FIDELITY_GP: JointGPSampler}
        return kinds[hb.sampler].from_config(config, prior)
    return RandomSampler(config.space)
