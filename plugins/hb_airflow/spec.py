"""What a controller needs to (re)build itself anywhere: a JSON-able :class:`TuningSpec`.

The operator builds the spec once; the trigger receives it as its only
serialized kwarg and rebuilds the backend, the store and the
:class:`~hb_core.runner.Tuner` from it in the triggerer, after every restart.
Credentials never travel in it: AWS clients come from the Airflow connection
named by ``aws_conn_id``, through the Amazon provider's ``AwsBaseHook``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from hb_core import naming
from hb_core.backends.clock import RealClock
from hb_core.backends.stores import LocalFileStore
from hb_core.config import TuningConfig
from hb_core.errors import ConfigError
from hb_core.naming import JOB_NAME_PATTERN, default_s3_state_uri
from hb_core.protocols import Backend, StateStore
from hb_core.runner import Tuner

__all__ = ["BACKENDS", "TuningSpec", "build_store", "build_tuner", "default_state_uri", "local_state_uri", "parent_state_uris"]

BACKENDS = ("sagemaker", "local")


@dataclass(frozen=True)
class TuningSpec:
    """Everything that identifies a tuning job and where it runs.

    - ``request``: the rendered ``CreateHyperParameterTuningJob`` body.
    - ``job_name``: the tuning job's name (deterministic per DAG run and task).
    - ``backend``: ``sagemaker`` or ``local``.
    - ``state_uri``: where state and decisions are kept: a local directory, or
      ``s3://bucket/prefix`` for the SageMaker backend.
    - ``base_dir``: the directory relative paths in the request resolve
      against (local backend: ``sagemaker_submit_directory``, channels).
    - ``aws_conn_id``/``region_name``: the Amazon provider's connection.
    - ``poll_interval``: seconds between decision rounds.
    - ``parent_state_uris``: the state stores of the ``WarmStartConfig`` parents, in order.
    - ``backend_options``: keyword arguments of the backend (SageMaker: ``metric_source``
      ``"logs"`` (default) or ``"cloudwatch"``, ``price_table``, ``metric_period``, ...). JSON only, no secrets.
    """

    request: dict[str, Any]
    job_name: str
    backend: str
    state_uri: str
    base_dir: str | None = None
    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None
    poll_interval: float = 30.0
    parent_state_uris: list[str] = field(default_factory=list)
    backend_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.job_name) > 32 or not JOB_NAME_PATTERN.fullmatch(self.job_name):
            raise ConfigError("job_name", "`1-32 characters matching [a-zA-Z0-9](-*[a-zA-Z0-9])*` must hold",
                              self.job_name)
        if self.backend not in BACKENDS:
            raise ConfigError("backend", f"`backend in {BACKENDS}` must hold", self.backend)
        if self.poll_interval <= 0:
            raise ConfigError("poll_interval", "`poll_interval > 0` must hold", self.poll_interval)

    def config(self) -> TuningConfig:
        return TuningConfig.from_dict(self.request)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TuningSpec:
        return cls(**data)


def local_state_uri(job_name: str) -> str:
    """``$AIRFLOW_HOME/hyperband/<job>``: where a local tuning job keeps its trials and state."""
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return str(Path(home) / "hyperband" / job_name)


def default_state_uri(backend: str, job_name: str, config: TuningConfig) -> str:
    """Local: :func:`local_state_uri`; SageMaker: ``<S3OutputPath>/<job>/hyperband``."""
    if backend == "local":
        return local_state_uri(job_name)
    return default_s3_state_uri(config, job_name)


def parent_state_uris(backend: str, state_uri: str, default: bool, config: TuningConfig) -> list[str]:
    """Where the warm-start parents keep their state: beside this job's (a custom ``state_uri``'s
    siblings), or at each parent's default location."""
    return naming.parent_state_uris(
        config, state_uri, (lambda name: default_state_uri(backend, name, config)) if default else None)


def build_store(spec: TuningSpec) -> StateStore:
    if spec.state_uri.startswith("s3://"):
        from hb_airflow.aws import s3_store

        return s3_store(spec)
    return LocalFileStore(spec.state_uri)


def build_backend(spec: TuningSpec, config: TuningConfig) -> Backend:
    if spec.backend == "local":
        from hb_core.backends.local import LocalBackend

        return LocalBackend(config, Path(spec.state_uri), job_name=spec.job_name,
                            base_dir=Path(spec.base_dir or os.getcwd()), **spec.backend_options)
    from hb_airflow.aws import sagemaker_backend

    return sagemaker_backend(spec, config, **spec.backend_options)


def build_tuner(spec: TuningSpec, *, offload: bool = True, table_every: int = 20) -> Tuner:
    """The one tuning loop, wired to this spec's backend and store on the real clock."""
    config = spec.config()
    return Tuner(
        config,
        build_backend(spec, config),
        build_store(spec),
        RealClock(),
        job_name=spec.job_name,
        poll_interval=spec.poll_interval,
        offload=offload,
        table_every=table_every,
        parents=[build_store(replace(spec, state_uri=uri)) for uri in spec.parent_state_uris],
    )
