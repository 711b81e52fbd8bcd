"""The benchmark plan: the `bench` profile holds the issue's seed counts, and --methods narrows every part."""

from __future__ import annotations

import run


def test_the_bench_profile_runs_the_issues_nas_plan_on_every_data_set_and_worker_count():
    profile = run.PROFILES["bench"]
    assert {plan.dataset for plan in profile.nas} == {"cifar10", "cifar100", "imagenet"}
    for plan in profile.nas:
        for method in (*run.CHEAP_OURS, *run.CHEAP_PEERS, "HB-KDE"):
            assert plan.seeds[method] == {5: 50, 16: 50, 64: 50}, (plan.dataset, method)
        for method in ("Bayesian", *run.MODEL_PEERS):
            assert plan.seeds[method] == {5: 20, 16: 20, 64: 20}, (plan.dataset, method)
    assert profile.real_seeds >= 5 and profile.mlp_seeds >= 20
    assert "raytune-ASHA" in run.CHEAP_PEERS


def test_only_methods_narrows_every_part_and_keeps_the_seed_counts():
    narrowed = run.only_methods(run.PROFILES["bench"], {"raytune-ASHA", "HB-stop"})
    assert narrowed.real_methods == ("HB-stop",) and narrowed.mlp_methods == ("HB-stop",)
    for plan in narrowed.nas:
        assert plan.seeds == {"HB-stop": {5: 50, 16: 50, 64: 50}, "raytune-ASHA": {5: 50, 16: 50, 64: 50}}
    assert run.only_methods(run.PROFILES["quick"], {"nobody"}).nas[0].seeds == {}
