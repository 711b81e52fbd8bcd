"""Human-readable views of a tuning state: the rung table and the end-of-job summary.

Pure functions of a :class:`~hb_core.state.TuningState`; the CLI, the runner's
log and the Airflow task log all print these.
"""

from __future__ import annotations

from typing import Any

from hb_core.config import REMOVED_SAMPLERS
from hb_core.state import PRICE_KEY, REMOVED_SAMPLER_KEY, TuningState

__all__ = ["format_summary", "rung_table", "summary", "summary_text"]


def rung_table(state: TuningState) -> str:
    """One line per (bracket, rung): trials recorded there and the current cutoff."""
    hb = state.config.hyperband
    if hb is None or not state.rungs:
        return "(no rungs: this strategy runs every trial to its full budget)"
    objective = state.config.objective
    lines = [f"{'bracket':>7} {'rung':>6} {'trials':>6} {'best':>10} {'cutoff':>10}"]
    for b, bracket in enumerate(state.rungs):
        for rung in bracket:
            n = len(rung.keys)
            cutoff = rung.cutoff(hb.reduction_factor)
            if cutoff is not None:
                best, cutoff = objective.value(rung.keys[0]), objective.value(cutoff)
                lines.append(f"{b:>7} {rung.level:>6} {n:>6} {best:>10.4g} {cutoff:>10.4g}")
            else:
                lines.append(f"{b:>7} {rung.level:>6} {0:>6} {'-':>10} {'-':>10}")
    return "\n".join(lines)


def summary(state: TuningState) -> dict[str, Any]:
    """A JSON-able summary: status, best trial, counts, resource trained and saved, billed seconds.

    Resource, two ways: ``total_resource`` is what the trials' jobs trained
    (and were billed for), values printed after their stop included (a stop
    takes a metric delay and a stop delay to land, and the job trains
    meanwhile; :class:`~hb_core.state.Trial`); ``judged_resource`` is what the
    controller had seen when it decided each stop; their difference is the
    stops' overshoot. ``resource_saved_fraction`` compares the trained
    resource with every trial run to MaxResource: like with like.
    ``billable_seconds`` is the jobs' billed time plus the warm-pool time
    retained (``retained_seconds``), and ``cost`` prices it.
    """
    best = state.best_trial()
    max_resource = state.config.max_resource
    spent = state.total_resource()
    full = max_resource * len(state.trials) if max_resource else None
    billed = state.billed_seconds
    return {
        "tuning_job_name": state.job_name,
        "status": state.status.value,
        "reason": (state.finish.reason if state.finish else None) or state.completion_reason,
        "strategy": state.config.strategy.value,
        "objective": state.config.objective.metric_name,
        "best_trial_id": best.trial_id if best else None,
        "best_hyperparameters": dict(best.hyperparameters) if best else None,
        "best_objective": best.last_value if best else None,
        "best_resource": best.resource if best else None,
        "trial_counts": state.counts(),
        "trials": len(state.trials),
        "total_resource": spent,
        "judged_resource": state.judged_resource(),
        "full_budget_resource": full,
        "resource_saved_fraction": (1 - spent / full) if full else None,
        "billable_seconds": round(billed, 3),
        "retained_seconds": round(state.retained_billable_seconds, 3),
        "cost": round(billed * state.extra[PRICE_KEY], 4) if PRICE_KEY in state.extra else None,
        "decisions": state.decision_count,
        "notes": _notes(state),
    }


def _notes(state: TuningState) -> list[str]:
    """What a reader of the summary must be told about the job itself (a sampler removed since it was saved)."""
    removed = state.extra.get(REMOVED_SAMPLER_KEY)
    if removed not in REMOVED_SAMPLERS:
        return []
    return [f"{REMOVED_SAMPLERS[removed]}; this job was saved with Sampler {removed} and reads on with Random"]


def summary_text(state: TuningState) -> str:
    """The summary as a few aligned lines for a terminal or a task log."""
    return format_summary(summary(state))


def format_summary(s: dict[str, Any]) -> str:
    """Format a :func:`summary` dict (e.g. pulled from XCom) as aligned lines."""
    lines = [
        f"Tuning job {s['tuning_job_name']}: {s['status']} ({s['reason']})",
        f"  strategy        {s['strategy']}, objective {s['objective']}",
    ]
    if s["best_trial_id"] is not None:
        hps = ", ".join(f"{k}={_fmt(v)}" for k, v in s["best_hyperparameters"].items())
        lines.append(f"  best trial      {s['best_trial_id']}: {s['objective']}={s['best_objective']:.6g} "
                     f"at resource {s['best_resource']}")
        lines.append(f"  hyperparameters {hps}")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(s["trial_counts"].items()))
    lines.append(f"  trials          {s['trials']} ({counts})")
    resource = f"  resource        {s['total_resource']} trained (billed)"
    if s["full_budget_resource"]:
        resource += (f" of {s['full_budget_resource']} if every trial ran to MaxResource "
                     f"({100 * s['resource_saved_fraction']:.0f}% saved)")
    judged = s.get("judged_resource")
    if judged is not None:
        resource += f"; {judged} judged ({s['total_resource'] - judged} trained while stops landed)"
    lines.append(resource)
    cost = f", cost {s['cost']:.2f}" if s.get("cost") is not None else ""
    retained = f" ({s['retained_seconds']:.1f} s warm pools)" if s.get("retained_seconds") else ""
    lines.append(f"  billable time   {s['billable_seconds']:.1f} s{retained}{cost}, {s['decisions']} decisions")
    lines += [f"  note            {note}" for note in s.get("notes", ())]
    return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
