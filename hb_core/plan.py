"""What a tuning job will do, before it runs: ``hb-tune plan`` (:func:`plan_text`).

Rung levels, brackets, trials and the total resource a job may spend, and
what the platform's latency costs a trial stopped at its first rung
(:mod:`hb_core.latency`). Pure: a function of the config.
"""

from __future__ import annotations

from collections.abc import Sequence

from hb_core.config import HyperbandVariant, Strategy, TuningConfig
from hb_core.errors import ConfigError
from hb_core.rungs import bracket_weights, rung_levels

__all__ = ["nominal_resource_per_trial", "plan_text"]


def nominal_resource_per_trial(levels: Sequence[int], eta: int) -> float:
    """Mean resource of a trial under successive halving: each rung keeps 1/eta of the one before."""
    total, previous = 0.0, 0
    for k, level in enumerate(levels):
        total += (level - previous) / eta**k
        previous = level
    return total


def plan_text(config: TuningConfig, latency: str | None = None, resource_seconds: float | None = None) -> str:
    """What a tuning job will do: rungs, brackets, trials, and the total resource it may spend.

    For Hyperband, also what the platform's latency (a profile of
    :data:`hb_core.latency.PROFILES`; default: the product's SageMaker
    defaults when the request defines a SageMaker training job, else local
    processes) costs a trial stopped at its first rung, and, given the
    seconds one resource unit trains (``resource_seconds``), a warning with a
    suggested MinResource when the first rung is shorter than that
    (:func:`hb_core.latency.first_rung_advice`).
    """
    limits = config.resource_limits
    trials = limits.max_number_of_training_jobs
    if trials is None and config.strategy is Strategy.GRID:
        trials = config.space.grid_size()
    lines = [
        f"Tuning job {config.name or '(unnamed)'}: {config.strategy.value}, objective "
        f"{config.objective.metric_name} ({config.objective.type.value})",
        f"Trials: {trials}, {limits.max_parallel_training_jobs} in parallel",
    ]
    max_resource = config.max_resource
    hb = config.hyperband if config.strategy is Strategy.HYPERBAND else None
    if hb is None:
        if max_resource is not None and trials is not None:
            lines.append(f"Every trial runs to {max_resource}: total resource {trials * max_resource}")
        return "\n".join(lines)
    levels = rung_levels(hb.min_resource, hb.max_resource, hb.reduction_factor)
    n_brackets = min(hb.number_of_brackets, len(levels))
    weights = bracket_weights(len(levels), n_brackets, hb.reduction_factor)
    lines.insert(1, f"Variant: {hb.variant.value}, reduction factor eta={hb.reduction_factor}, "
                    f"resource {hb.min_resource}..{hb.max_resource}")
    lines.append(f"Rung levels: {', '.join(map(str, levels))}")
    nominal = 0.0
    for b in range(n_brackets):
        per_trial = nominal_resource_per_trial(levels[b:], hb.reduction_factor)
        nominal += weights[b] * per_trial
        first = "launched to" if hb.variant is HyperbandVariant.PROMOTION else "first judged at"
        lines.append(f"  bracket {b}: rungs {', '.join(map(str, levels[b:]))}; {first} {levels[b]}; "
                     f"share of trials {weights[b]:.2f}; nominal resource per trial {per_trial:.2f}")
    if trials is not None:
        worst = trials * hb.max_resource
        lines.append(f"Worst-case total resource: {trials} x {hb.max_resource} = {worst} (no trial stopped)")
        lines.append(f"Nominal total resource: {trials * nominal:.0f} "
                     f"({100 * (1 - nominal / hb.max_resource):.0f}% less than running every trial to the end)")
    lines += _latency_lines(config, latency, resource_seconds)
    return "\n".join(lines)


def _latency_lines(config: TuningConfig, name: str | None, resource_seconds: float | None) -> list[str]:
    from hb_core.latency import DEFAULT_SAGEMAKER_PROFILE, first_rung_advice, profile

    hb = config.hyperband
    assert hb is not None
    if resource_seconds is not None and not resource_seconds > 0:
        raise ConfigError("--resource-seconds", "`--resource-seconds > 0` must hold", resource_seconds)
    if name is None:
        algorithm = (config.training_job_definition.raw.get("AlgorithmSpecification") or {}
                     if config.training_job_definition is not None else {})
        on_sagemaker = isinstance(algorithm, dict) and bool(algorithm.get("TrainingImage")
                                                           or algorithm.get("AlgorithmName"))
        name = DEFAULT_SAGEMAKER_PROFILE if on_sagemaker else "local"
    latency = profile(name)
    keep_alive = config.keep_alive_seconds(
        startup_seconds=latency.startup_seconds,
        first_rung_seconds=None if resource_seconds is None else hb.min_resource * resource_seconds)
    warm = keep_alive > 0 and latency.warm_startup_seconds is not None
    advice = first_rung_advice(latency, min_resource=hb.min_resource, max_resource=hb.max_resource,
                               eta=hb.reduction_factor, resource_seconds=resource_seconds or 0.0, warm=warm)
    pools = f"warm pools kept {keep_alive} s" if warm else "no warm pool"
    lines = [f"Latency ({name}): start-up {latency.startup(warm):g} s ({pools}), metric delay "
             f"{latency.metric_delay_seconds:g} s, stop delay {latency.stop_delay_seconds:g} s, rounds every "
             f"{latency.poll_interval_seconds:g} s: a trial stopped at its first rung costs about "
             f"{advice.overhead_seconds:.0f} s beyond its training"]
    if resource_seconds is None:
        lines.append("  (give --resource-seconds, the seconds one resource unit trains, to check MinResource)")
    elif advice.short:
        share = advice.overhead_seconds / (advice.overhead_seconds + advice.rung_seconds)
        lines.append(f"WARNING: training to MinResource={hb.min_resource} takes {advice.rung_seconds:.0f} s, less "
                     f"than the {advice.overhead_seconds:.0f} s a trial pays before its stop lands: "
                     f"{100 * share:.0f}% of what a trial stopped at the first rung costs is latency, and it trains "
                     f"on (billed) until the stop lands. MinResource={advice.suggested_min_resource} would make the "
                     f"first rung outweigh it, at the price of fewer trials in the same time: compare both in "
                     f"simulation before changing (on NAS-Bench-201 MinResource=1 stays faster, "
                     f"benchmarks/results/LATENCY.md); a rung barrier in the training script or a lower-latency "
                     f"metric source attack the latency itself.")
    else:
        lines.append(f"  training to MinResource={hb.min_resource} takes {advice.rung_seconds:.0f} s: "
                     f"the first rung outweighs the latency")
    restart = latency.startup(warm) + latency.metric_delay_seconds + latency.poll_interval_seconds / 2
    if hb.variant is HyperbandVariant.PROMOTION and restart >= 10:
        lines.append(f"NOTE: the promotion variant runs every rung step as a new training job: each promotion "
                     f"waits about {restart:.0f} s (the rung value's delay and a start-up). Under SageMaker "
                     f"latency the stopping variant was faster on NAS-Bench-201 CIFAR (benchmarks/results/"
                     f"LATENCY.md).")
    return lines
