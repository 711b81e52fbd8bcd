"""Every backend the core ships satisfies :class:`hb_core.protocols.Backend`, price and model included."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from hb_core.backends.clock import VirtualClock
from hb_core.backends.local import LocalBackend
from hb_core.backends.simulated import SimulatedBackend
from hb_core.config import TuningConfig
from hb_core.curves import make_curve
from hb_core.protocols import Backend
from tests.hb_core.backends.test_local import request


async def test_local_and_simulated_backends_are_backends_with_a_price_and_a_model_place(tmp_path: Path) -> None:
    tuning = TuningConfig.from_dict(request())
    local = LocalBackend(tuning, tmp_path / "job", job_name="job")
    curve, cost = make_curve("quadratic", tuning.space)
    simulated = SimulatedBackend(curve, VirtualClock(), cost=cost, price_per_second=0.25)
    assert isinstance(local, Backend) and isinstance(simulated, Backend)
    assert local.price_per_second() is None and simulated.price_per_second() == 0.25
    assert await local.model_uri("0003", 2) == str(local.model_dir("0003", 2))
    assert await cast(Backend, simulated).model_uri("0003", 2) is None  # through the protocol: str | None
