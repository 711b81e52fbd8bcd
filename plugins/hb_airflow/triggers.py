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
idempotent, so no job is doubled.

User actions: the triggerer calls ``on_kill`` when a user acted on the
deferred task. It asks the API server for the task's state: a task the user
ended (marked failed or success, or skipped) has its tuning job aborted (every
training job stopped, the job Failed, "killed by a user"); a task cleared for a
new try (its state reset) keeps its training jobs, which the new try's
``execute`` reattaches to. The abort runs in a task of its own, shielded from
the triggerer's cancellations (it cancels a trigger again on every loop while
the trigger is finishing, and bounds ``on_kill`` to ``[triggerer]
on_kill_timeout``), so it goes on until every training job has ended. Its first
checkpoint records the intent, so if the triggerer dies mid-abort the next
controller or reader of the state finishes it (:meth:`hb_core.runner.Tuner.abort`,
:meth:`~hb_core.runner.Tuner.settle`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from hb_airflow.spec import TuningSpec, build_store, build_tuner
from hb_core.errors import HyperbandError
from hb_core.report import summary
from hb_core.state import TuningState

__all__ = ["HyperbandControllerTrigger", "TuningStateTrigger", "condition_met"]

KILL_REASON = "the Airflow task was killed by a user"
#: Seconds an abort in the triggerer waits for the stopped training jobs to end (a SageMaker stop takes a while).
ABORT_TIMEOUT = 600.0
#: Task-instance states a user sets to end a task (as opposed to clearing it for a new try).
ENDED_STATES = frozenset({"failed", "success", "skipped", "upstream_failed", "removed"})

log = logging.getLogger(__name__)
#: Aborts in flight, kept alive here past the cancellation of the trigger that started them.
_ABORTS: set[asyncio.Task[None]] = set()


class HyperbandControllerTrigger(BaseTrigger):
    """Runs a tuning job's controller in the triggerer until the job ends.

    Built by :class:`~hb_airflow.operators.HyperbandTuningOperator` when it defers; it rebuilds
    the backend, the state store and the :class:`~hb_core.runner.Tuner` from ``spec`` in the
    triggerer (again after every triggerer restart, adopting the running training jobs).

    :param spec: :meth:`hb_airflow.spec.TuningSpec.to_dict` of the tuning job: the rendered
        request, the job's name, backend, ``state_uri``, ``base_dir``, ``aws_conn_id``,
        ``region_name``, ``poll_interval``, the warm-start parents' state URIs and the
        ``backend_options``. JSON only; credentials come from the connection.

    Yields one event: ``{"status", "tuning_job_name", "spec", "summary"}`` when the job ended
    (``status`` ``Completed`` or ``Failed``; ``summary`` as :func:`hb_core.report.summary`), or
    ``{"status": "error", "message", "tuning_job_name", "spec"}`` when the controller itself
    could not go on (the operator fails, and a retry reattaches).

    ``on_kill`` (a user marked the deferred task failed or succeeded, or cleared it) stops every
    running training job and records the tuning job as ``Failed``, "the Airflow task was killed
    by a user". Any other exit (a triggerer restart or redistribution) stops nothing.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        self.spec = spec

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {"spec": self.spec}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        spec = TuningSpec.from_dict(self.spec)
        try:
            async with build_tuner(spec) as tuner:
                state = await tuner.run()
        except HyperbandError as exc:
            self.log.error("tuning job %s: controller error: %s", spec.job_name, exc)
            event = {"status": "error", "message": str(exc), "tuning_job_name": spec.job_name, "spec": self.spec}
        else:
            event = completion_event(spec, state)
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    async def on_kill(self) -> None:
        """A user acted on the task: abort the tuning job if they ended the task, else leave it to the new try."""
        if not await self._task_ended_by_user():
            self.log.info("tuning job %s: the task was cleared for a new try; its training jobs keep running "
                          "for the new try to reattach", self.spec.get("job_name"))
            return
        task = asyncio.get_running_loop().create_task(abort_job(self.spec), name=f"abort {self.spec.get('job_name')}")
        _ABORTS.add(task)
        task.add_done_callback(_ABORTS.discard)
        await asyncio.shield(task)

    async def _task_ended_by_user(self) -> bool:
        """Whether this trigger's task is now failed, success or skipped (True when that cannot be told)."""
        ti = getattr(self, "task_instance", None)
        if ti is None:
            return True
        try:
            from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

            states = await asyncio.to_thread(RuntimeTaskInstance.get_task_states, dag_id=ti.dag_id,
                                             task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index)
        except Exception:  # no answer: stopping the training jobs is the safe side
            self.log.warning("cannot read the state of task %s; aborting its tuning job", ti.task_id, exc_info=True)
            return True
        key = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
        by_task = states.get(ti.run_id) or {}
        state = by_task.get(key, "removed")
        self.log.info("task %s is now %s", key, state)
        return state is not None and str(getattr(state, "value", state)) in ENDED_STATES


async def abort_job(spec_dict: dict[str, Any], timeout: float = ABORT_TIMEOUT) -> None:
    """Abort the tuning job of ``spec_dict`` (:meth:`hb_core.runner.Tuner.abort`) and release the backend."""
    spec = TuningSpec.from_dict(spec_dict)
    try:
        async with build_tuner(spec) as tuner:
            state = await tuner.abort(KILL_REASON, timeout=timeout)
        log.info("tuning job %s: abort done, status %s", spec.job_name, state.status.value if state else "none")
    except Exception:
        log.exception("tuning job %s: the abort failed; the next controller or reader finishes it", spec.job_name)


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
    """Polls a tuning job's state store until a condition holds (for the deferrable sensors).

    :param spec: :meth:`hb_airflow.spec.TuningSpec.to_dict` locating the store (``state_uri``,
        and ``aws_conn_id``/``region_name`` for ``s3://``); the request is not used.
    :param condition: ``{"kind": "job_done"}``, or ``{"kind": "trial_rung", "trial_id": "0007",
        "rung": 9}`` (see :func:`condition_met`).
    :param poll_interval: seconds between two reads of the state.

    Yields one event when the condition holds: what :func:`condition_met` reports (``status``, and
    ``summary`` for ``job_done``; ``resource``, ``value`` and ``reached`` for ``trial_rung``) plus
    the ``condition``. It only reads: no ``on_kill``, nothing to stop.
    """

    def __init__(self, spec: dict[str, Any], condition: dict[str, Any], poll_interval: float = 30.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
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
                yield TriggerEvent({**payload, "condition": self.condition})  # type: ignore[no-untyped-call]
                return
            await asyncio.sleep(self.poll_interval)
