"""The benchmark plan: the `bench` profile holds the issue's seed counts, and --methods narrows every part."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import run


def test_the_bench_profile_runs_the_issues_nas_plan_on_every_data_set_and_worker_count() -> None:
    profile = run.PROFILES["bench"]
    assert {plan.dataset for plan in profile.nas} == {"cifar10", "cifar100", "imagenet"}
    for plan in profile.nas:
        for method in (*run.CHEAP_OURS, *run.CHEAP_PEERS, "HB-MFGP"):
            assert plan.seeds[method] == {5: 50, 16: 50, 64: 50}, (plan.dataset, method)
        for method in ("Bayesian", *run.MODEL_PEERS):
            assert plan.seeds[method] == {5: 20, 16: 20, 64: 20}, (plan.dataset, method)
    assert profile.real_seeds >= 5 and profile.mlp_seeds >= 20
    assert "raytune-ASHA" in run.CHEAP_PEERS


def test_only_methods_narrows_every_part_and_keeps_the_seed_counts() -> None:
    narrowed = run.only_methods(run.PROFILES["bench"], {"raytune-ASHA", "HB-stop"})
    assert narrowed.real_methods == ("HB-stop",) and narrowed.mlp_methods == ("HB-stop",)
    for plan in narrowed.nas:
        assert plan.seeds == {"HB-stop": {5: 50, 16: 50, 64: 50}, "raytune-ASHA": {5: 50, 16: 50, 64: 50}}
    assert run.only_methods(run.PROFILES["quick"], {"nobody"}).nas[0].seeds == {}


def test_the_models_profile_runs_both_targets_at_5_and_16_workers_with_the_model_based_peers() -> None:
    profile = run.PROFILES["models"]
    assert profile.nas_tops == (0.01, 0.001)
    assert {plan.dataset for plan in profile.nas} == {"cifar10", "cifar100", "imagenet"}
    for plan in profile.nas:
        assert plan.seeds["HB-MFGP"] == plan.seeds["HB-stop"] and set(plan.seeds["HB-MFGP"]) == {5, 16}
        assert plan.seeds["synetune-MOBSTER"][5] >= 1 and plan.seeds["synetune-HyperTune"][16] >= 1
    narrowed = run.with_nas_seeds(profile, 1, 100, "cifar10")
    assert [p.dataset for p in narrowed.nas] == ["cifar10"] and narrowed.seed_offset == 100
    assert all(n == 1 for per in narrowed.nas[0].seeds.values() for n in per.values())


def test_the_models_profile_adds_pasha_and_the_delayed_rule_and_the_delayed_profile_runs_16_and_64_workers() -> None:
    for plan in run.PROFILES["models"].nas:
        assert plan.seeds["synetune-PASHA"] == plan.seeds["HB-delayed"] == plan.seeds["HB-stop"]
    delayed = run.PROFILES["delayed"]
    assert delayed.nas_tops == (0.01, 0.001) and {p.dataset for p in delayed.nas} == {"cifar10", "cifar100", "imagenet"}
    for plan in delayed.nas:
        assert set(plan.seeds) == set(run.DELAYED_METHODS) and {"HB-stop", "HB-delayed"} <= set(plan.seeds)
        assert all(set(per) == {16, 64} for per in plan.seeds.values())


def test_the_bench_profile_runs_every_nas_data_set_under_ideal_and_the_sagemaker_default_with_the_peers() -> None:
    import latency

    from hb_core.latency import DEFAULT_SAGEMAKER_PROFILE

    for name in ("bench", "full"):
        assert run.PROFILES[name].latency_seeds == 8
    assert run.PROFILES["quick"].latency_seeds == 0
    assert latency.BENCH_PROFILES[:2] == ("ideal", DEFAULT_SAGEMAKER_PROFILE)


def test_the_latency_part_renders_both_profiles_side_by_side_and_survives_the_raw_round_trip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    import latency
    import nasbench
    import render

    from hb_core.latency import DEFAULT_SAGEMAKER_PROFILE

    def fake(datasets: Sequence[str], profiles: Sequence[str], methods: Sequence[str], workers: int, seeds: int,
             jobs: int, peer_profiles: set[str] | None = None
             ) -> tuple[list[tuple[str, str, int, str, float, dict[str, Any]]], float]:
        assert peer_profiles is None  # the peers run under every profile
        slower = {"ideal": 1.0, DEFAULT_SAGEMAKER_PROFILE: 1.2, "target": 1.4}
        return [(d, m, s, p, 1000.0 * slower[p] * (3 if m == "Random" else 1), {"trained": 10, "judged": 9,
                 "billed": 36.0, "trials": 5, "epochs": 10})
                for d in datasets for p in profiles for m in methods for s in range(seeds)], 1.0

    monkeypatch.setattr(latency, "measure", fake)
    # the cap comes from the table's oracle; a fixed one keeps this test off the bench extra, as CI installs it
    monkeypatch.setattr(nasbench, "oracle", lambda dataset, fraction=0.01: (500.0, 0.9))
    profile = run.with_nas_seeds(run.PROFILES["bench"], None, 0, "cifar10")
    part = run.part_latency(profile, 1, 2)
    assert part["datasets"] == ["cifar10"] and part["profiles"] == list(latency.BENCH_PROFILES)
    assert part["methods"] == [*latency.OURS, *latency.PEERS] and part["workers"] == 5
    back = render.from_raw(json.loads(json.dumps(render.raw({"timings": {}, "latency": part}))))
    lines = "\n".join(render._latency_section(back["latency"], "bench"))
    assert lines.startswith("## Hyperband under latency") and "### CIFAR-10" in lines
    for p in latency.BENCH_PROFILES:
        assert f"| `{p}` |" in lines
    assert f"| `{DEFAULT_SAGEMAKER_PROFILE}` | 3,600" in lines and "1.00 vs ideal" in lines and "--latency-seeds 2" in lines
