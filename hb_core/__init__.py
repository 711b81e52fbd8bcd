"""Hyperband tuning core: config, search space, strategies, controller, state, and the tuning loop.

Pure modules here import only the standard library, numpy and scipy; what the
core asks of the outside (``Backend``, ``StateStore``, ``Clock``) is in
:mod:`hb_core.protocols`, I/O in :mod:`hb_core.backends`, Airflow in
``hb_airflow``; the SageMaker emulator (a test and demo tool) is the separate
package ``hb_emulator``, which nothing here imports.
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
