"""What a controller needs to (re)build itself anywhere: a JSON-able :class:`TuningSpec`.

The operator builds the spec once; the trigger receives it as its only
serialized kwarg and rebuilds the backend, the store and the
:class:`~hb_core.runner.Tuner` from it in the triggerer, after every restart,
through the core's one builder (:mod:`hb_core.wiring`, which ``hb-tune run``
uses too). Credentials never travel in it: AWS clients come from the Airflow
connection named by ``aws_conn_id``, through the Amazon provider's
``AwsBaseHook`` (:class:`hb_airflow.aws.HookClients`): the one thing this
layer adds to the core's wiring.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hb_core import naming, wiring
from hb_core.config import TuningConfig
from hb_core.errors import ConfigError
from hb_core.naming import JOB_NAME_PATTERN, default_s3_state_uri
from hb_core.protocols import Backend, StateStore
from hb_core.runner import Tuner
from hb_core.wiring import BACKENDS

if TYPE_CHECKING:
    from hb_core.backends.aws import AwsClients

__all__ = [
    "BACKENDS", "TuningSpec", "build_backend", "build_store", "build_tuner", "default_state_uri", "local_state_uri",
    "parent_state_uris",
]


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
      ``"live"`` (default), ``"logs"`` or ``"cloudwatch"``, ``price_table``, ``metric_period``, ...). JSON only, no secrets.
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


def _clients(spec: TuningSpec) -> Callable[[], AwsClients]:
    """AWS clients on the spec's Airflow connection (:class:`hb_airflow.aws.HookClients`), made when needed."""
    def make() -> AwsClients:
        from hb_airflow.aws import HookClients

        return HookClients(spec.aws_conn_id, spec.region_name)

    return make


def build_store(spec: TuningSpec) -> StateStore:
    """The spec's state store (:func:`hb_core.wiring.build_store`), on its connection for ``s3://``."""
    return wiring.build_store(spec.state_uri, _clients(spec))


def build_backend(spec: TuningSpec, config: TuningConfig) -> Backend:
    """The spec's backend (:func:`hb_core.wiring.build_backend`), on its connection for SageMaker."""
    return wiring.build_backend(spec.backend, config, job_name=spec.job_name, state_uri=spec.state_uri,
                                base_dir=spec.base_dir, clients=_clients(spec), **spec.backend_options)


def build_tuner(spec: TuningSpec, *, offload: bool = True, table_every: int = 20) -> Tuner:
    """The one tuning loop (:func:`hb_core.wiring.build_tuner`), wired to this spec's backend and stores."""
    return wiring.build_tuner(
        spec.config(), spec.backend, job_name=spec.job_name, state_uri=spec.state_uri,
        parent_state_uris=spec.parent_state_uris, base_dir=spec.base_dir, clients=_clients(spec),
        poll_interval=spec.poll_interval, offload=offload, table_every=table_every,
        backend_options=spec.backend_options)
