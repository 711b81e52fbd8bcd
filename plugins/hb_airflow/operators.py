"""``HyperbandTuningOperator``: one task that runs a whole Hyperband tuning job.

The flow follows the Amazon provider's deferrable operators: ``execute``
validates the request, creates (or, on a retry, reattaches to) the tuning job,
launches the first trials and checkpoints, then defers to
:class:`~hb_airflow.triggers.HyperbandControllerTrigger`, which runs the
controller in the triggerer. ``execute_complete`` validates the event and
pushes the results. With ``deferrable=False`` the same loop runs on the worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseOperatorLink, conf

from hb_airflow.links import SageMakerBestTrainingJobLink, TuningDashboardLink
from hb_airflow.spec import BACKENDS, TuningSpec, build_store, build_tuner, default_state_uri, parent_state_uris
from hb_airflow.triggers import KILL_REASON, HyperbandControllerTrigger
from hb_core.config import TuningConfig
from hb_core.errors import ConfigError
from hb_core.naming import derived_tuning_job_name, training_job_name
from hb_core.report import rung_table, summary, summary_text
from hb_core.request import load_request, request_path
from hb_core.runner import Tuner
from hb_core.state import Trial, TuningState, TuningStatus

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["HyperbandTuningOperator"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


def run_coroutine(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to the end from sync code, even when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="hyperband-runner")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


#: Times a killed controller's task is cancelled (a second apart) before the abort goes on without it.
CANCEL_TRIES = 30


async def _cancelled(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it to end, cancelling again while it goes on.

    Once is not always enough on Python 3.11: ``asyncio.wait_for`` swallows a cancellation
    that arrives as its inner future completes (python/cpython#86296). The backends' own waits
    avoid it (:func:`hb_core.backends.clock.wait_event`), the libraries under them may not. A
    task still running after :data:`CANCEL_TRIES` is left to the abort, whose checkpoints win
    over it (compare-and-set).
    """
    for _ in range(CANCEL_TRIES):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1.0)
        if done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("the killed controller ended with an error", exc_info=task.exception())
            return
    log.warning("the killed controller did not stop after %d cancellations; aborting beside it", CANCEL_TRIES)


def _is_templated(value: object) -> bool:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return "{{" in text or "{%" in text


class HyperbandTuningOperator(AwsBaseOperator[SageMakerHook]):
    """Tune hyperparameters with Hyperband (ASHA): one task runs a whole tuning job, on SageMaker or locally.

    ``execute`` validates the request, pushes the job's name and state location, creates the tuning
    job (or, on a retry, reattaches to it: the name is deterministic) and launches the first trials;
    then it defers to :class:`~hb_airflow.triggers.HyperbandControllerTrigger` (``deferrable=True``)
    or runs the same controller loop on the worker, until the job ends. The task fails without a
    retry (``AirflowFailException``) when the request is invalid or the tuning job ended ``Failed``;
    the XComs are pushed first.

    .. seealso::
        The DAG author's guide, ``docs/dag-authors.md``: this operator in DAGs that a test loads and runs.

    :param tuning_request: the body of a SageMaker ``CreateHyperParameterTuningJob``
        request: a dict, a JSON string (starting with ``{``), or the path of a JSON file
        (relative paths resolve against the DAG file's folder). Templated; the templates
        of a dict or a JSON string are rendered, a file's content is read as it is. A
        request without templates is validated when the DAG is parsed.
    :param backend: ``sagemaker`` (trials are SageMaker training jobs) or ``local``
        (trials are local processes, SageMaker script mode). Templated.
    :param tuning_job_name: the tuning job's name (templated). Default: derived from
        the request's name (or the task id) and a hash of (DAG id, run id, task id,
        map index), so a retry reattaches to the same job and each run gets its own.
    :param state_uri: where the controller keeps its state and decision log (templated):
        a directory, or ``s3://bucket/prefix``. Default: ``$AIRFLOW_HOME/hyperband/<job>``
        (local) or ``<S3OutputPath>/<job>/hyperband`` (SageMaker).
    :param base_dir: the directory that relative paths in the request
        (``sagemaker_submit_directory``, local channels) resolve against (local backend).
        Default: the request file's folder, else the DAG file's.
    :param poll_interval: seconds between two decision rounds (default 30, > 0).
    :param backend_options: keyword arguments of the backend, JSON only (they travel to
        the triggerer). SageMaker: ``metric_source`` (``"live"``, the
        default: the values the jobs printed, pushed by a CloudWatch Logs Live Tail
        stream; ``"logs"``: the same lines, polled; ``"cloudwatch"``: CloudWatch metrics), ``price_table`` (USD per instance-hour),
        ``metric_period``, ``metric_dimension``, ``metric_delay_seconds``,
        ``describe_concurrency``. Local: ``stop_grace_seconds``, ``tail_interval``, ``env``,
        ``python``.
    :param deferrable: run the controller in the triggerer (default: ``[operators]
        default_deferrable``); when False the same loop runs on the worker.
    :param aws_conn_id: The Airflow connection used for AWS credentials, region and
        endpoints (SageMaker backend, and an ``s3://`` state). If this is ``None`` or
        empty then the default boto3 behaviour is used. Templated.
    :param region_name: AWS region_name. If not specified then the connection's, else
        the default boto3 behaviour is used. Templated.
    :param verify: accepted as by every ``AwsBaseOperator``, but not used: TLS
        verification comes from the connection's extra.
    :param botocore_config: accepted, but not used: the connection's botocore config is
        (with retries turned off, as the backend retries on its own).

    XComs, pushed when the task starts:

    - ``tuning_job_name``: the tuning job's name (the dashboard links this task by it);
    - ``state_uri``: where its state is.

    and when the tuning job has ended (Completed or Failed):

    - ``best_hyperparameters``: ``{name: value}`` of the best trial (None without one);
    - ``best_objective``: its last objective value;
    - ``best_training_job``: its training job's name;
    - ``model_artifacts``: that training job's model: ``<S3OutputPath>/<training job>/output/model.tar.gz``
      (SageMaker) or its local ``SM_MODEL_DIR`` directory;
    - ``summary``: :func:`hb_core.report.summary` (status, reason, best trial, trial counts,
      resource trained (billed) and judged, saved, billable seconds with warm pools, cost, decisions),
      also the return value.

    ``on_kill`` (a user marked the running task failed or succeeded, or cleared it) stops every
    running training job and records the tuning job as ``Failed``, "the Airflow task was killed
    by a user"; while the task is deferred, the trigger's ``on_kill`` does the same. A retry, a
    worker crash or a triggerer restart stops nothing: the next controller adopts the running jobs.

    Extra links: **Hyperband dashboard** (the job's page in the Airflow UI) and **Best training
    job (SageMaker)** (the AWS console).
    """

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = aws_template_fields("tuning_request", "tuning_job_name", "state_uri", "backend")
    template_fields_renderers = {"tuning_request": "json"}
    operator_extra_links: tuple[BaseOperatorLink, ...] = (TuningDashboardLink(), SageMakerBestTrainingJobLink())
    ui_color = "#f0e4ff"

    def __init__(
        self,
        *,
        tuning_request: dict[str, Any] | str,
        backend: str = "sagemaker",
        tuning_job_name: str | None = None,
        state_uri: str | None = None,
        base_dir: str | None = None,
        poll_interval: float = 30.0,
        backend_options: dict[str, Any] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tuning_request = tuning_request
        self.backend = backend
        self.tuning_job_name = tuning_job_name
        self.state_uri = state_uri
        self.base_dir = base_dir
        self.poll_interval = poll_interval
        self.backend_options = dict(backend_options or {})
        self.deferrable = deferrable
        self._running_spec: TuningSpec | None = None  # the tuning job this task runs, for on_kill
        self._controlling: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None  # on_kill sets the event
        self._aborts: set[concurrent.futures.Future[TuningState | None]] = set()  # on_kill's, kept referenced
        if not _is_templated(backend) and backend not in BACKENDS:
            raise ConfigError("backend", f"`backend in {BACKENDS}` must hold", backend)
        if not _is_templated(tuning_request):
            self._load_config()  # a bad request fails when the DAG is parsed, not hours later

    # ------------------------------------------------------------ request and spec

    def _dag_folder(self) -> Path:
        fileloc = getattr(self.get_dag(), "fileloc", None)
        return Path(fileloc).parent if fileloc else Path.cwd()

    def _request_path(self) -> Path | None:
        return request_path(self.tuning_request, self._dag_folder())

    def _load_request(self) -> dict[str, Any]:
        return load_request(self.tuning_request, base_dir=self._dag_folder())

    def _load_config(self) -> tuple[dict[str, Any], TuningConfig]:
        request = self._load_request()
        return request, TuningConfig.from_dict(request)

    def _spec(self, context: Context) -> TuningSpec:
        try:
            request, config = self._load_config()
            ti = context["ti"]
            name = self.tuning_job_name or derived_tuning_job_name(
                config.name or self.task_id, ti.dag_id, ti.run_id, ti.task_id, str(getattr(ti, "map_index", -1))
            )
            request["HyperParameterTuningJobName"] = name
            path = self._request_path()
            base_dir = self.base_dir or str(path.parent if path is not None else self._dag_folder())
            state_uri = self.state_uri or default_state_uri(self.backend, name, config)
            return TuningSpec(
                request=request,
                job_name=name,
                backend=self.backend,
                state_uri=state_uri,
                parent_state_uris=parent_state_uris(self.backend, state_uri, not self.state_uri, config),
                base_dir=base_dir,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                poll_interval=self.poll_interval,
                backend_options=self.backend_options,
            )
        except ConfigError as exc:
            raise AirflowFailException(f"invalid tuning request: {exc}") from exc

    # ------------------------------------------------------------ execution

    def execute(self, context: Context) -> dict[str, Any]:
        spec = self._spec(context)
        context["ti"].xcom_push(key="tuning_job_name", value=spec.job_name)
        context["ti"].xcom_push(key="state_uri", value=spec.state_uri)
        tuner = self._tuner(spec)
        if self.deferrable:
            state = run_coroutine(self._control(spec, tuner, tuner.start))
            if not state.done:
                self.log.info("tuning job %s: %d trials launched; deferring to the controller trigger",
                              spec.job_name, len(state.trials))
                self.defer(trigger=HyperbandControllerTrigger(spec.to_dict()), method_name="execute_complete")
        else:
            state = run_coroutine(self._control(spec, tuner, tuner.run))
        return self._finish(context, spec, state)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not isinstance(event, dict) or "status" not in event or "spec" not in event:
            raise AirflowException(f"the controller trigger sent an unexpected event: {event!r}")
        spec = TuningSpec.from_dict(event["spec"])
        if event["status"] == "error":
            raise AirflowException(f"tuning job {spec.job_name}: {event.get('message')}")  # a retry reattaches
        state = run_coroutine(build_store(spec).load())
        if state is None:
            raise AirflowException(f"tuning job {spec.job_name}: no state found at {spec.state_uri}")
        return self._finish(context, spec, state)

    def on_kill(self) -> None:
        """Abort the tuning job: a user ended the running task (Airflow's task runner calls this on SIGTERM).

        It runs in the task runner's SIGTERM handler, on the thread whose event loop runs the
        controller, and that thread may have been interrupted inside a lock the abort also needs
        (a log handler's, stdout's). So while the controller runs, this only sets its kill event and
        returns; :meth:`_control` then stops the controller and aborts the job on the loop, once
        the handler has returned. Waiting here for an abort on another thread could wait forever.
        When another loop runs on this thread (``dag.test()`` runs a deferred task's trigger in
        line, and the signal reaches the task's handler), the abort is started on that loop.
        """
        spec = self._running_spec
        if spec is None:
            return
        if self._controlling is not None:
            loop, killed = self._controlling
            loop.call_soon_threadsafe(killed.set)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called from plain code (after an execution timeout ended the controller)
            run_coroutine(self._abort(spec))
            return
        # another loop runs on this thread (dag.test() runs the trigger in line): abort on it, never wait here
        self._aborts.add(asyncio.run_coroutine_threadsafe(self._abort(spec), loop))

    def _tuner(self, spec: TuningSpec) -> Tuner:
        self._running_spec = spec
        try:
            return build_tuner(spec, offload=False)
        except ConfigError as exc:
            raise AirflowFailException(f"invalid tuning request for the {spec.backend} backend: {exc}") from exc

    async def _control(self, spec: TuningSpec, tuner: Tuner,
                       work: Callable[[], Coroutine[Any, Any, TuningState]]) -> TuningState:
        """Run ``work`` of ``tuner`` until it ends or :meth:`on_kill` fires; when killed, abort the job instead.

        The abort runs with a tuner of its own on top of the last checkpoint, as the trigger's
        does, so a round cut short by the cancellation is reconciled, not resumed.
        """
        async with tuner:
            task = asyncio.ensure_future(work())
            killed = asyncio.Event()
            self._controlling = (asyncio.get_running_loop(), killed)
            watch = asyncio.ensure_future(killed.wait())
            try:
                await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
                if killed.is_set():
                    await _cancelled(task)
            finally:
                self._controlling = None
                watch.cancel()
                if not task.done():  # this coroutine itself was cancelled or interrupted: take the work down too
                    task.cancel()
            if not killed.is_set():
                return task.result()
        aborted = await self._abort(spec)
        if aborted is None:
            raise AirflowFailException(f"tuning job {spec.job_name}: {KILL_REASON} before it started")
        return aborted

    async def _abort(self, spec: TuningSpec) -> TuningState | None:
        async with self._tuner(spec) as tuner:
            return await tuner.abort(KILL_REASON)

    def _finish(self, context: Context, spec: TuningSpec, state: TuningState) -> dict[str, Any]:
        """Push the results; fail the task (no retry) when the tuning job failed."""
        result = summary(state)
        best_id = result["best_trial_id"]
        best = state.trial(best_id) if best_id else None
        best_job = training_job_name(spec.job_name, best.trial_id, best.attempt) if best else None
        ti = context["ti"]
        ti.xcom_push(key="best_hyperparameters", value=result["best_hyperparameters"])
        ti.xcom_push(key="best_training_job", value=best_job)
        ti.xcom_push(key="best_objective", value=result["best_objective"])
        ti.xcom_push(key="model_artifacts", value=self._model_artifacts(spec, state, best))
        ti.xcom_push(key="summary", value=result)
        if best_job and spec.backend == "sagemaker":
            SageMakerBestTrainingJobLink.persist(context=context, operator=self, region_name=self.region_name or "",
                                                 aws_partition="aws", job_name=best_job)
        if state.rungs:
            self.log.info("rungs of %s:\n%s", spec.job_name, rung_table(state))
        self.log.info("\n%s", summary_text(state))
        if state.status is TuningStatus.FAILED:
            raise AirflowFailException(f"tuning job {spec.job_name} failed: {result['reason']}")
        return result

    @staticmethod
    def _model_artifacts(spec: TuningSpec, state: TuningState, trial: Trial | None) -> str | None:
        """Where the trial's last training job saved its model, as the backend says (None without a trial)."""
        if trial is None:
            return None
        return run_coroutine(_model_uri(spec, trial))


async def _model_uri(spec: TuningSpec, trial: Trial) -> str | None:
    async with build_tuner(spec, offload=False) as tuner:
        return await tuner.backend.model_uri(trial.trial_id, trial.attempt)
