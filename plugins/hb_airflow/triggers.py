"""Triggers: the Hyperband controller loop, and a watcher of a tuning job's state.

Both hold only JSON-able kwargs and serialize their own class path, so the
triggerer can rebuild them after a restart. The controller trigger runs the one
loop of :class:`hb_core.runner.Tuner`: reload the state, reconcile with the
backend, then poll -> decide -> checkpoint -> act -> sleep until the tuning job
ends, and yields a single event. Decisions run in a worker thread so the
triggerer's event loop is never blocked.

Restarts and duplicates: ``cleanup`` (every exit, including a triggerer
restart) only releases local resources; training jobs keep running and the
next trigger instance adopts them. Two instances at once (an HA failover)
serialise through the state store's compare-and-set; launches and stops are
idempotent, so no job is doubled. Only ``on_kill`` (a user marked or cleared
the task) stops the training jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from hb_airflow.spec import TuningSpec, build_store, build_tuner
from hb_core.errors import HyperbandError
from hb_core.report import summary
from hb_core.state import TuningState

__all__ = ["HyperbandControllerTrigger", "TuningStateTrigger", "condition_met"]

KILL_REASON = "the Airflow task was killed by a user"


class HyperbandControllerTrigger(BaseTrigger):
    """Runs a tuning job's controller in the triggerer until the job ends.

    The event is ``{"status", "tuning_job_name", "spec", "summary"}`` when the
    job ended (Completed or Failed), or ``{"status": "error", "message", ...}``
    when the controller itself could not go on.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self.spec = spec

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {"spec": self.spec}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        spec = TuningSpec.from_dict(self.spec)
        tuner = build_tuner(spec)
        try:
            state = await tuner.run()
        except HyperbandError as exc:
            self.log.error("tuning job %s: controller error: %s", spec.job_name, exc)
            event = {"status": "error", "message": str(exc), "tuning_job_name": spec.job_name, "spec": self.spec}
        else:
            event = completion_event(spec, state)
        finally:
            await tuner.backend.close()
        yield TriggerEvent(event)

    async def on_kill(self) -> None:
        spec = TuningSpec.from_dict(self.spec)
        tuner = build_tuner(spec)
        try:
            await tuner.abort(KILL_REASON)
        finally:
            await tuner.backend.close()


def completion_event(spec: TuningSpec, state: TuningState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "tuning_job_name": spec.job_name,
        "spec": spec.to_dict(),
        "summary": summary(state),
    }


def condition_met(state: TuningState | None, condition: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Whether a watched condition holds, and what to report.

    ``{"kind": "job_done"}``: the tuning job ended.
    ``{"kind": "trial_rung", "trial_id": ..., "rung": r}``: the trial reached
    resource r, or ended before it.
    """
    if state is None:
        return False, {"status": "missing"}
    if condition.get("kind") == "job_done":
        return state.done, {"status": state.status.value, "summary": summary(state)}
    if condition.get("kind") == "trial_rung":
        trial = state.trial(str(condition["trial_id"]))
        if trial is None:
            return state.done, {"status": "unknown_trial", "job_status": state.status.value}
        reached = trial.resource >= int(condition["rung"])
        ended = trial.status.ended or state.done
        payload = {"status": trial.status.value, "resource": trial.resource, "value": trial.last_value,
                   "reached": reached}
        return reached or ended, payload
    raise ValueError(f"condition kind must be job_done or trial_rung, but got {condition.get('kind')!r}")


class TuningStateTrigger(BaseTrigger):
    """Polls a tuning job's state store until a condition holds (for the deferrable sensors)."""

    def __init__(self, spec: dict[str, Any], condition: dict[str, Any], poll_interval: float = 30.0) -> None:
        super().__init__()
        self.spec = spec
        self.condition = condition
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = {"spec": self.spec, "condition": self.condition, "poll_interval": self.poll_interval}
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        store = build_store(TuningSpec.from_dict(self.spec))
        while True:
            met, payload = condition_met(await store.load(), self.condition)
            if met:
                yield TriggerEvent({**payload, "condition": self.condition})
                return
            await asyncio.sleep(self.poll_interval)
