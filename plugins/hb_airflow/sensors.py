"""Sensors on a tuning job's state: wait for the job to end, or for a trial to reach a rung.

Both read the controller's state store (they never talk to the trials), so
they work for every backend. Written as a template method: subclasses give the
condition, the base pokes or defers to
:class:`~hb_airflow.triggers.TuningStateTrigger`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseSensorOperator, conf

from hb_airflow.operators import run_coroutine
from hb_airflow.spec import TuningSpec, build_store, local_state_uri
from hb_airflow.triggers import TuningStateTrigger, condition_met
from hb_core.errors import ConfigError

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["HyperbandTuningSensor", "TrialRungSensor"]


class _TuningStateSensor(BaseSensorOperator):
    """Base of the sensors: locate the state store, then poke (or defer) until ``condition()`` holds.

    :param tuning_job_name: the tuning job to watch (templated). Default: the
        ``tuning_job_name`` XCom of ``tuning_task_id``. One of the two is required.
    :param state_uri: its state store, a directory or ``s3://bucket/prefix`` (templated).
        Default: the ``state_uri`` XCom of ``tuning_task_id`` when given, else
        ``$AIRFLOW_HOME/hyperband/<job>`` (the local backend's default). A job on the
        SageMaker backend keeps it at ``<S3OutputPath>/<job>/hyperband``.
    :param tuning_task_id: the ``HyperbandTuningOperator`` task of the same DAG run whose
        XComs name the job; the sensor fails if that task has not pushed them yet.
    :param aws_conn_id: The Airflow connection used to read an ``s3://`` state. If this is
        ``None`` or empty then the default boto3 behaviour is used.
    :param region_name: AWS region_name. If not specified then the connection's, else the
        default boto3 behaviour is used.
    :param deferrable: wait in the triggerer (:class:`~hb_airflow.triggers.TuningStateTrigger`,
        reading the state every ``poke_interval`` seconds, up to ``timeout``). Default:
        ``[operators] default_deferrable``.

    Every other argument is ``BaseSensorOperator``'s (``poke_interval``, ``timeout``, ``mode``,
    ``soft_fail``, ...). The sensors only read the state store, on every backend: they
    never call SageMaker, and ``on_kill`` has nothing to stop.

    Return value: when the sensor deferred, the trigger's event (what
    :func:`~hb_airflow.triggers.condition_met` reports, plus the ``condition``); when the
    condition held at the first check, or in poke or reschedule mode, None.
    """

    template_fields: Sequence[str] = ("tuning_job_name", "state_uri")

    def __init__(
        self,
        *,
        tuning_job_name: str | None = None,
        state_uri: str | None = None,
        tuning_task_id: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if tuning_job_name is None and tuning_task_id is None:
            raise ConfigError("tuning_job_name", "a tuning_job_name or a tuning_task_id must be given", None)
        self.tuning_job_name = tuning_job_name
        self.state_uri = state_uri
        self.tuning_task_id = tuning_task_id
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.deferrable = deferrable

    def condition(self) -> dict[str, Any]:
        raise NotImplementedError

    def _spec(self, context: Context) -> TuningSpec:
        ti = context["ti"]
        name = self.tuning_job_name or ti.xcom_pull(task_ids=self.tuning_task_id, key="tuning_job_name")
        uri = self.state_uri or (ti.xcom_pull(task_ids=self.tuning_task_id, key="state_uri")
                                 if self.tuning_task_id else None)
        if not name:
            raise AirflowException(f"no tuning job name: task {self.tuning_task_id!r} has not pushed one yet")
        uri = uri or local_state_uri(name)
        backend = "sagemaker" if uri.startswith("s3://") else "local"
        return TuningSpec(request={}, job_name=name, backend=backend, state_uri=uri,
                          aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def poke(self, context: Context) -> bool:
        spec = self._spec(context)
        met, payload = condition_met(run_coroutine(build_store(spec).load()), self.condition())
        self.log.info("tuning job %s: %s -> %s", spec.job_name, self.condition(), payload.get("status"))
        if met:
            self._check(payload)
        return met

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        trigger = TuningStateTrigger(self._spec(context).to_dict(), self.condition(), self.poke_interval)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=self.timeout)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not isinstance(event, dict) or "status" not in event:
            raise AirflowException(f"the state trigger sent an unexpected event: {event!r}")
        self._check(event)
        return event

    def _check(self, payload: dict[str, Any]) -> None:
        """Fail on outcomes a retry cannot change."""


class HyperbandTuningSensor(_TuningStateSensor):
    """Waits until a tuning job ends; fails when it ended ``Failed``.

    Succeeds when the job is ``Completed``; fails without a retry (``AirflowFailException``, naming
    the job and its reason) when it ended ``Failed``. It takes no argument of its own: see
    :class:`_TuningStateSensor` (``tuning_job_name``, ``state_uri``, ``tuning_task_id``,
    ``aws_conn_id``, ``region_name``, ``deferrable``). A deferred wait's event carries the
    job's ``summary`` (as :func:`hb_core.report.summary`).
    """

    def condition(self) -> dict[str, Any]:
        return {"kind": "job_done"}

    def _check(self, payload: dict[str, Any]) -> None:
        if payload.get("status") == "Failed":
            summary = payload.get("summary") or {}
            raise AirflowFailException(f"tuning job {summary.get('tuning_job_name')} failed: {summary.get('reason')}")


class TrialRungSensor(_TuningStateSensor):
    """Waits until a trial reaches resource ``rung`` (e.g. an epoch) or ends before it.

    Succeeds in both cases: a trial Hyperband stopped, a failed one, and one of a job that ended
    (or of a job that ended without launching it) end the wait too. A deferred wait's event says
    which: ``reached``, the trial's ``status``, ``resource`` and last ``value`` (or ``status``
    ``unknown_trial`` with the ``job_status``).

    :param trial_id: the trial, 4 digits in launch order (``"0007"``; templated).
    :param rung: the resource level to wait for (>= 1), e.g. an epoch count: a rung level such
        as 9 waits for the trial to survive to that rung.

    The other arguments are :class:`_TuningStateSensor`'s (``tuning_job_name``, ``state_uri``,
    ``tuning_task_id``, ``aws_conn_id``, ``region_name``, ``deferrable``).
    """

    template_fields: Sequence[str] = (*_TuningStateSensor.template_fields, "trial_id")

    def __init__(self, *, trial_id: str, rung: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if rung < 1:
            raise ConfigError("rung", "`rung >= 1` must hold", rung)
        self.trial_id = trial_id
        self.rung = rung

    def condition(self) -> dict[str, Any]:
        return {"kind": "trial_rung", "trial_id": str(self.trial_id), "rung": int(self.rung)}
