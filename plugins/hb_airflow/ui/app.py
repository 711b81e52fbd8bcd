"""The dashboard's FastAPI app, mounted by the API server at :data:`~hb_airflow.links.DASHBOARD_PREFIX`.

Airflow does not authenticate plugin apps, so this one does it itself: every
route depends on the API server's own
``requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)``
(``airflow.api_fastapi.core_api.security``). That dependency resolves the user
with ``get_user`` from the ``Authorization: Bearer`` JWT or the UI's ``_token``
cookie (no credential: 401, a bad one: 403) and asks the auth manager whether
they may read task instances (of the ``dag_id`` in the path, if any: 403 when
not). A tuning job started by an Airflow task is linked to its DAG through the
task's ``tuning_job_name`` XCom; a user who may not read that DAG's task
instances does not see the job (it is left out of the list, and 404 on its own).

Routes (relative to the prefix): ``/`` (job list), ``/jobs/{job}`` (one job),
``/ti/{dag_id}/{run_id}/{task_id}/{map_index}`` (the task-instance tab:
redirects to the job that task started), ``/static/{name}``, and the JSON API
under ``/api`` (see README, "The dashboard").
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.configuration import AIRFLOW_HOME, conf
from airflow.models.dag import DagModel
from airflow.models.xcom import XComModel
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from hb_airflow.links import TuningDashboardLink
from hb_airflow.ui import charts, views
from hb_airflow.ui.jobs import (
    BadJobName,
    JobSource,
    LoadedJob,
    StateRoot,
    StateRootUnavailable,
    UnknownJob,
    check_job_name,
)
from hb_airflow.ui.views import TaskLink, json_safe

__all__ = ["create_app", "state_root_setting"]

HERE = Path(__file__).parent
STATIC = {"dashboard.css": "text/css", "dashboard.js": "text/javascript", "icon.svg": "image/svg+xml"}
#: Seconds between two refreshes of a page (the job list always; a job's page while it runs).
REFRESH_SECONDS = 5
PARTIAL_HEADER = "X-Hyperband-Partial"
XCOM_KEY = TuningDashboardLink.key

#: Every route: an authenticated user who may read task instances (of the path's ``dag_id``, when there is one).
READ_TASK_INSTANCES = Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))


def state_root_setting() -> str:
    """``[hyperband] state_root`` (env ``AIRFLOW__HYPERBAND__STATE_ROOT``), default ``$AIRFLOW_HOME/hyperband``.

    A local directory, or ``s3://bucket/prefix`` (read with ``[hyperband] aws_conn_id``, default
    ``aws_default``, and ``[hyperband] region_name``; see :mod:`hb_airflow.ui.s3_jobs`).
    """
    return conf.get("hyperband", "state_root", fallback="") or str(Path(AIRFLOW_HOME) / "hyperband")


@functools.cache
def _state_root(setting: str, aws_conn_id: str, region_name: str) -> JobSource:
    if setting.startswith("s3://"):
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        from hb_airflow.aws import HookClients
        from hb_airflow.ui.s3_jobs import S3StateRoot

        try:
            client = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="s3", region_name=region_name or None).get_conn()
        except Exception as exc:  # a missing or broken connection: say which, as a 502 like any S3 failure
            raise StateRootUnavailable(f"cannot make an S3 client for {setting} from [hyperband] aws_conn_id "
                                       f"{aws_conn_id!r}: {type(exc).__name__}: {exc}") from exc
        # the same connection's aiobotocore clients finish a job left Stopping (hb_airflow.ui.s3_jobs)
        return S3StateRoot(setting, client, clients=HookClients(aws_conn_id, region_name or None))
    if "://" in setting:
        raise HTTPException(501, f"`[hyperband] state_root is a local directory or s3://bucket/prefix` must hold, "
                                 f"but got {setting!r}")
    return StateRoot(setting)


def _root() -> JobSource:
    return _state_root(state_root_setting(), conf.get("hyperband", "aws_conn_id", fallback="aws_default"),
                       conf.get("hyperband", "region_name", fallback=""))


def create_app() -> FastAPI:
    app = FastAPI(title="Hyperband dashboard", dependencies=[READ_TASK_INSTANCES], docs_url=None, redoc_url=None,
                  openapi_url=None)
    templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    templates.filters["when"] = _when
    templates.filters["num"] = _num
    templates.filters["duration"] = _duration

    def page(request: Request, name: str, code: int = 200, **context: Any) -> Response:
        context |= {"base": request.scope.get("root_path", "").rstrip("/"), "refresh": REFRESH_SECONDS,
                    "partial": request.headers.get(PARTIAL_HEADER) == "1", "state_root": state_root_setting()}
        return HTMLResponse(templates.get_template(name).render(**context), status_code=code,
                            headers={"Cache-Control": "no-store"})

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        root = request.scope.get("root_path", "")
        if request.url.path.startswith(f"{root}/api/") or request.url.path.startswith(f"{root}/static/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        login = None
        if exc.status_code in (401, 403):
            login = get_auth_manager().get_url_login(next_url=str(request.url))
        return page(request, "error.html", exc.status_code, status=exc.status_code, detail=exc.detail, login=login,
                    title=f"{exc.status_code}", inline_css=Markup((HERE / "static" / "dashboard.css").read_text()))

    @app.exception_handler(StateRootUnavailable)
    def unavailable(request: Request, exc: StateRootUnavailable) -> Response:
        return http_error(request, StarletteHTTPException(502, str(exc)))

    # ---- HTML pages -------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def job_list(request: Request, user: GetUserDep, session: SessionDep) -> Response:
        rows = _visible_rows(user, session)
        return page(request, "jobs.html", jobs=rows, title="Hyperband tuning jobs")

    @app.get("/jobs/{job}", response_class=HTMLResponse)
    def job_page(
        request: Request, job: str, user: GetUserDep, session: SessionDep,
        offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 50,
        toffset: Annotated[int, Query(ge=0)] = 0, tlimit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        loaded, link = _visible_job(job, user, session)
        detail = views.job_detail(loaded, link)
        context: dict[str, Any] = {"job": detail, "title": f"Tuning job {job}"}
        state = loaded.state
        if state is not None:
            trials = views.trial_rows(state, as_of=loaded.updated_time)
            until = (time.time() if views.is_running(state) else loaded.updated_time) - state.created_time
            context |= {
                "trials": trials[toffset:toffset + tlimit], "trials_total": len(trials),
                "toffset": toffset, "tlimit": tlimit,
                "decisions": views.decision_page(_root().decisions(job, offset=offset, limit=limit)),
                "curves": Markup(charts.learning_curves_chart(state)),
                "best_chart": Markup(charts.best_so_far_chart(views.best_so_far(state),
                                                              state.config.objective.metric_name, until=until)),
                "hp_names": [p.name for p in state.config.space.parameters],
            }
        return page(request, "job.html", **context)

    @app.get("/ti/{dag_id}/{run_id}/{task_id}/{map_index}", response_class=HTMLResponse)
    def task_instance_tab(request: Request, dag_id: str, run_id: str, task_id: str, map_index: str,
                          session: SessionDep) -> Response:
        # The UI leaves "{MAP_INDEX}" as is for a task that is not mapped.
        index = int(map_index) if map_index.lstrip("-").isdigit() else -1
        stmt = select(XComModel.value).where(XComModel.key == XCOM_KEY, XComModel.dag_id == dag_id,
                                             XComModel.run_id == run_id, XComModel.task_id == task_id,
                                             XComModel.map_index == index)
        row = session.execute(stmt).first()
        name = XComModel.deserialize_value(row) if row else None
        if not isinstance(name, str):
            raise HTTPException(404, f"task {task_id} of run {run_id} has not started a Hyperband tuning job")
        base = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(f"{base}/jobs/{check_job_name(name)}", status_code=307)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, "no such file")
        return FileResponse(HERE / "static" / name, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    # ---- JSON API ---------------------------------------------------------------------------------

    @app.get("/api/jobs")
    def api_jobs(user: GetUserDep, session: SessionDep) -> JSONResponse:
        rows = _visible_rows(user, session)
        return _json({"jobs": rows, "total_entries": len(rows), "state_root": state_root_setting()})

    @app.get("/api/jobs/{job}")
    def api_job(job: str, user: GetUserDep, session: SessionDep) -> JSONResponse:
        loaded, link = _visible_job(job, user, session)
        detail = views.job_detail(loaded, link)
        if loaded.state is not None:
            detail["config"] = loaded.state.config.to_dict()
        return _json(detail)

    @app.get("/api/jobs/{job}/trials")
    def api_trials(
        job: str, user: GetUserDep, session: SessionDep,
        offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        order: Annotated[str, Query(pattern="^(best|id)$")] = "id",
    ) -> JSONResponse:
        loaded, _ = _visible_job(job, user, session)
        trials = views.trial_rows(_readable(loaded), order=order, as_of=loaded.updated_time)
        return _json({"trials": trials[offset:offset + limit], "total_entries": len(trials),
                      "offset": offset, "limit": limit})

    @app.get("/api/jobs/{job}/decisions")
    def api_decisions(
        job: str, user: GetUserDep, session: SessionDep,
        offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        _visible_job(job, user, session)
        return _json(views.decision_page(_root().decisions(job, offset=offset, limit=limit)))

    return app


# ---- helpers --------------------------------------------------------------------------------------


def _json(body: Any) -> JSONResponse:
    return JSONResponse(json_safe(body), headers={"Cache-Control": "no-store"})


def _task_links(session: Session, names: set[str] | None = None) -> dict[str, TaskLink]:
    """Tuning job name -> the task instance that pushed it as its ``tuning_job_name`` XCom (the latest one)."""
    stmt = select(XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.map_index,
                  XComModel.value).where(XComModel.key == XCOM_KEY).order_by(XComModel.timestamp)
    links: dict[str, TaskLink] = {}
    for row in session.execute(stmt):
        name = XComModel.deserialize_value(row)
        if isinstance(name, str) and (names is None or name in names):
            links[name] = TaskLink(row.dag_id, row.run_id, row.task_id, row.map_index)
    return links


def _may_read(user: Any, dag_ids: set[str], session: Session) -> set[str]:
    """The DAGs among ``dag_ids`` whose task instances ``user`` may read."""
    manager = get_auth_manager()
    return {
        dag_id for dag_id in dag_ids
        if manager.is_authorized_dag(method="GET", access_entity=DagAccessEntity.TASK_INSTANCE, user=user,
                                     details=DagDetails(id=dag_id,
                                                        team_name=DagModel.get_team_name(dag_id, session=session)))
    }


def _visible_rows(user: Any, session: Session) -> list[dict[str, Any]]:
    jobs = _root().jobs()
    links = _task_links(session, {j.name for j in jobs})
    allowed = _may_read(user, {link.dag_id for link in links.values()}, session)
    return [views.job_row(j, links.get(j.name)) for j in jobs
            if j.name not in links or links[j.name].dag_id in allowed]


def _visible_job(job: str, user: Any, session: Session) -> tuple[LoadedJob, TaskLink | None]:
    """Job ``job`` and its task; 404 when it is not a tuning-job name, is absent, or its DAG is not readable by
    ``user`` (a hostile name gets the 404 a path outside any route gets: ``%2F`` splits the path before routing)."""
    try:
        loaded = _root().load(job)
    except BadJobName as exc:
        raise HTTPException(404, f"no tuning job of that name: {exc}") from None
    except UnknownJob as exc:
        raise HTTPException(404, str(exc)) from None
    link = _task_links(session, {job}).get(job)
    if link is not None and not _may_read(user, {link.dag_id}, session):
        raise HTTPException(404, f"no tuning job {job!r} under the state root")
    return loaded, link


def _readable(loaded: LoadedJob) -> Any:
    if loaded.state is None:
        raise HTTPException(500, f"the state of tuning job {loaded.name!r} cannot be read: {loaded.error}")
    return loaded.state


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.5g}"
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"
