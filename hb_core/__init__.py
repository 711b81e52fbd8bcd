"""Hyperband tuning core: config, search space, strategies, controller, state, and the tuning loop.

Pure modules here import only the standard library, numpy and scipy; I/O lives
in :mod:`hb_core.backends`, Airflow in ``hb_airflow``.
"""

from hb_core.config import TuningConfig
from hb_core.controller import decide, new_state
from hb_core.errors import BackendError, ConfigError, HyperbandError, StateError
from hb_core.latency import Latency
from hb_core.simulate import SimulationResult, TrialRecord, simulate
from hb_core.space import SearchSpace
from hb_core.state import TuningState

__all__ = [
    "BackendError",
    "ConfigError",
    "HyperbandError",
    "Latency",
    "SearchSpace",
    "SimulationResult",
    "StateError",
    "TrialRecord",
    "TuningConfig",
    "TuningState",
    "decide",
    "new_state",
    "simulate",
]
