"""Model artifacts and data on S3 for the tuning pipeline (the Amazon provider's ``S3Hook``).

- :func:`stage_data`: channels (and the training code, as ``sourcedir.tar.gz``) where
  the backend reads them.
- :func:`local_model_dir`: a model as a local directory, for an evaluation callable
  (``model.tar.gz`` downloaded and unpacked, or the local backend's model directory).
- :func:`publish_model`: a model's S3 URL for the Model Registry; a locally trained
  model is uploaded where SageMaker would have put it.
- :func:`put_json`: a small JSON report (the evaluation) on S3.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException

from hb_core.backends.package import build_sourcedir

__all__ = ["local_model_dir", "publish_model", "put_json", "stage_data"]



def _s3(aws_conn_id: str | None) -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=aws_conn_id)


def local_model_dir(model_artifacts: str, aws_conn_id: str | None, workdir: Path) -> Path:
    """A local directory holding the model: the local backend's model directory, or ``model.tar.gz`` unpacked."""
    if not model_artifacts.startswith("s3://"):
        path = Path(model_artifacts)
        if not path.is_dir():
            raise AirflowFailException(f"the model directory {path} does not exist")
        return path
    hook = _s3(aws_conn_id)
    bucket, key = hook.parse_s3_url(model_artifacts)
    workdir.mkdir(parents=True, exist_ok=True)
    archive = workdir / "model.tar.gz"
    hook.get_conn().download_file(bucket, key, str(archive))
    target = workdir / "model"
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def publish_model(model_artifacts: str, s3_output_path: str | None, training_job: str,
                  aws_conn_id: str | None) -> str:
    """The model's S3 URL; a local model directory is uploaded first, where SageMaker would have put it
    (``<S3OutputPath>/<training job>/output/model.tar.gz``)."""
    if model_artifacts.startswith("s3://"):
        return model_artifacts
    if not s3_output_path or not s3_output_path.startswith("s3://"):
        raise AirflowFailException("registering a locally trained model uploads it to <S3OutputPath>/<job>/output/: "
                                   f"TrainingJobDefinition.OutputDataConfig.S3OutputPath must be an s3:// URI, "
                                   f"but got {s3_output_path!r}")
    url = f"{s3_output_path.rstrip('/')}/{training_job}/output/model.tar.gz"
    hook = _s3(aws_conn_id)
    bucket, key = hook.parse_s3_url(url)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for item in sorted(Path(model_artifacts).iterdir()):
                tar.add(item, arcname=item.name)
        hook.load_file(str(archive), key=key, bucket_name=bucket, replace=True)
    return url


def put_json(url: str, data: Any, aws_conn_id: str | None) -> str:
    hook = _s3(aws_conn_id)
    bucket, key = hook.parse_s3_url(url)
    hook.load_string(json.dumps(data, indent=2, sort_keys=True), key=key, bucket_name=bucket, replace=True)
    return url


def stage_data(
    channels: Mapping[str, str | os.PathLike[str]],
    *,
    backend: str,
    s3_prefix: str,
    aws_conn_id: str | None = "aws_default",
    code_dir: str | os.PathLike[str] | None = None,
    code_files: tuple[str, ...] = (),
) -> dict[str, str | None]:
    """Channels (and the training code) where the backend reads them.

    Local backend: the local channel directories as they are, ``submit_directory`` None (the
    request's own stays). SageMaker: each directory uploaded to ``<s3_prefix>/<channel>/``, and
    ``code_files`` of ``code_dir`` packed as ``<s3_prefix>/code/sourcedir.tar.gz`` (what the
    SageMaker SDK does with ``source_dir``; :func:`hb_core.backends.package.build_sourcedir`, as
    ``hb-tune package`` packs it, the rung barrier's helper ``barrier.py`` included unless
    ``code_files`` names one), returned as ``submit_directory``.
    """
    if backend == "local":
        return {**{name: str(path) for name, path in channels.items()}, "submit_directory": None}
    hook = _s3(aws_conn_id)
    prefix = s3_prefix.rstrip("/")
    staged: dict[str, str | None] = {}
    for name, directory in channels.items():
        bucket, key = hook.parse_s3_url(f"{prefix}/{name}/")
        for path in sorted(Path(directory).rglob("*")):
            if path.is_file():
                relative = path.relative_to(directory).as_posix()
                hook.load_file(str(path), key=f"{key}{relative}", bucket_name=bucket, replace=True)
        staged[name] = f"{prefix}/{name}/"
    staged["submit_directory"] = None
    if code_dir is not None:
        url = f"{prefix}/code/sourcedir.tar.gz"
        bucket, key = hook.parse_s3_url(url)
        archive, _ = build_sourcedir(Path(code_dir), code_files)
        hook.load_bytes(archive, key=key, bucket_name=bucket, replace=True)
        staged["submit_directory"] = url
    return staged
