"""One builder of a tuning job's backend, state store and :class:`~hb_core.runner.Tuner` on the real clock.

``hb-tune run`` and the Airflow layer (:mod:`hb_airflow.spec`, for the operator
and the controller trigger) both build through :func:`build_tuner`. They name
the same things: the backend (``local`` or ``sagemaker``), the tuning job,
where its state lives (a directory, or ``s3://bucket/prefix``), where its
warm-start parents' states live, and the backend's options. They differ only
in where AWS clients come from, which they pass in as a factory: boto's
credential chain for ``hb-tune``
(:class:`~hb_core.backends.aws.AioSessionClients`), an Airflow connection for
the Airflow layer (:class:`hb_airflow.aws.HookClients`). The factory is
called only when something needs AWS (the SageMaker backend, an S3 store),
once, so a local job never touches an AWS SDK; the SageMaker and S3 modules
are imported only then too, which keeps this module importable in the pure
core.

The tuner built is an async context manager: ``async with build_tuner(...) as
tuner:`` closes its backend and stores on the way out.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hb_core.backends.clock import RealClock
from hb_core.backends.stores import LocalFileStore
from hb_core.config import TuningConfig
from hb_core.errors import ConfigError
from hb_core.protocols import Backend, StateStore
from hb_core.runner import Tuner

if TYPE_CHECKING:
    from hb_core.backends.aws import AwsClients

__all__ = ["BACKENDS", "ClientsFactory", "build_backend", "build_store", "build_tuner"]

#: The backends a tuning job runs on: SageMaker training jobs, or local processes (SageMaker script mode).
BACKENDS = ("sagemaker", "local")
#: Makes the AWS clients (called at most once per build, and only when something needs AWS).
ClientsFactory = Callable[[], "AwsClients"]


def _need(clients: ClientsFactory | None, field: str, value: str) -> AwsClients:
    if clients is None:
        raise ConfigError(field, "`AWS clients are given for an AWS backend or an s3:// state` must hold", value)
    return clients()


def build_store(uri: str, clients: ClientsFactory | None = None, *, field: str = "state_uri") -> StateStore:
    """The state store at ``uri``: :class:`~hb_core.backends.s3_store.S3Store` for ``s3://bucket[/prefix]``
    (a bad URI is a ConfigError naming ``field``), else a :class:`LocalFileStore` directory."""
    if uri.startswith("s3://"):
        from hb_core.backends.s3_store import S3Store

        return S3Store.from_uri(uri, _need(clients, field, uri), field=field)
    return LocalFileStore(uri)


def build_backend(kind: str, config: TuningConfig, *, job_name: str, state_uri: str,
                  base_dir: str | os.PathLike[str] | None = None, clients: ClientsFactory | None = None,
                  **options: Any) -> Backend:
    """The backend ``kind`` (one of :data:`BACKENDS`) of the tuning job ``job_name``; ``options`` go to its class.

    Local: :class:`~hb_core.backends.local.LocalBackend` in the job directory ``state_uri``, relative paths of
    the request resolving against ``base_dir`` (default: the working directory). SageMaker:
    :class:`~hb_core.backends.sagemaker.SageMakerBackend` on ``clients()``.
    """
    if kind == "local":
        from hb_core.backends.local import LocalBackend

        return LocalBackend(config, Path(state_uri), job_name=job_name, base_dir=Path(base_dir or os.getcwd()),
                            **options)
    if kind == "sagemaker":
        from hb_core.backends.sagemaker import SageMakerBackend

        return SageMakerBackend(config, job_name=job_name, clients=_need(clients, "backend", kind), **options)
    raise ConfigError("backend", f"`backend in {BACKENDS}` must hold", kind)


def build_tuner(
    config: TuningConfig,
    kind: str,
    *,
    job_name: str,
    state_uri: str,
    parent_state_uris: Sequence[str] = (),
    base_dir: str | os.PathLike[str] | None = None,
    clients: ClientsFactory | None = None,
    poll_interval: float = 30.0,
    offload: bool = False,
    table_every: int = 20,
    state_field: str = "state_uri",
    backend_options: dict[str, Any] | None = None,
) -> Tuner:
    """The one tuning loop of ``job_name``, on the real clock, wired to its backend (:func:`build_backend`),
    its store at ``state_uri`` and its parents' stores (:func:`build_store`; ``state_field`` is the name a bad
    URI's error gives). ``poll_interval``, ``offload`` and ``table_every`` are the :class:`Tuner`'s."""
    once = functools.cache(clients) if clients is not None else None
    store = build_store(state_uri, once, field=state_field)  # the URIs first: a bad one is the first error
    parents = [build_store(uri, once, field=state_field) for uri in parent_state_uris]
    backend = build_backend(kind, config, job_name=job_name, state_uri=state_uri, base_dir=base_dir, clients=once,
                            **(backend_options or {}))
    return Tuner(config, backend, store, RealClock(), job_name=job_name, poll_interval=poll_interval,
                 offload=offload, table_every=table_every, parents=parents)
