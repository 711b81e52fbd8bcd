"""The proposal-time benchmark builds an ASHA-shaped state of the asked size and measures every sampler on it."""

from __future__ import annotations

from pathlib import Path

import sampler_cost

from hb_core.strategies import make_sampler


def test_the_state_holds_the_asked_rung_observations_and_running_trials() -> None:
    cfg = sampler_cost.config("MultiFidelityGP", workers=4)
    state = sampler_cost.state_with(cfg, 120, workers=4)
    data = make_sampler(cfg).joint_data(state)  # type: ignore[attr-defined]
    assert 120 <= len(data.y) < 120 + len(sampler_cost.LEVELS)
    assert len(state.active) >= 1 and len(data.pending) == len(state.active)


def test_measure_reports_warm_and_cold_proposals(tmp_path: Path) -> None:
    out = tmp_path / "cost.md"
    assert sampler_cost.main(["--observations", "60", "--repeats", "1", "--samplers", "MultiFidelityGP,Bayesian",
                              "--out", str(out)]) == 0
    text = out.read_text()
    assert "| MultiFidelityGP | 60 |" in text and "| Bayesian | 60 |" in text
