"""Strategies: how configurations are proposed (the scheduler, :mod:`hb_core.controller`, decides their fate).

One module per concern, each importing only those above it in this list (no
circles, :file:`tests/test_import_graph.py`):

- :mod:`~hb_core.strategies.base`: the :class:`Sampler` protocol, :func:`trial_rng`
  and its streams, :class:`RandomSampler`, :class:`GridSampler`, :class:`Fallbacks`.
- :mod:`~hb_core.strategies.gp`: Gaussian-process maths (kernel, fit, fit memo,
  expected improvement and its maximizer).
- :mod:`~hb_core.strategies.bayesian`: :class:`BayesianSampler` (``Strategy: Bayesian``).
- :mod:`~hb_core.strategies.model_based`: the model-based Hyperband sampler on one
  rung level (:class:`RungGPSampler`) and the base class of both model-based ones.
- :mod:`~hb_core.strategies.multi_fidelity`: :class:`JointGPSampler`, one GP over
  every rung level.
- :mod:`~hb_core.strategies.warm_start`: what warm-start parents teach a new job
  (:func:`prior_observations`, :func:`warm_prior`, :func:`seed_rungs`).
- :mod:`~hb_core.strategies.factory`: :func:`make_sampler`, the sampler a config asks for.
"""

from hb_core.state import PriorObservation
from hb_core.strategies.base import Fallbacks, GridSampler, RandomSampler, Sampler, trial_rng
from hb_core.strategies.bayesian import BayesianSampler
from hb_core.strategies.factory import make_sampler
from hb_core.strategies.model_based import RungGPSampler
from hb_core.strategies.multi_fidelity import JointGPSampler
from hb_core.strategies.warm_start import prior_observations, seed_rungs, warm_prior

__all__ = [
    "BayesianSampler",
    "Fallbacks",
    "GridSampler",
    "JointGPSampler",
    "PriorObservation",
    "RandomSampler",
    "RungGPSampler",
    "Sampler",
    "make_sampler",
    "prior_observations",
    "seed_rungs",
    "trial_rng",
    "warm_prior",
]
