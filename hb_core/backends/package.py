"""``hb-tune package``: a script-mode source directory and its data channels, uploaded where training jobs read them.

Terms:

- *sourcedir*: ``sourcedir.tar.gz``, the archive of a source directory that
  SageMaker's script mode downloads (the ``sagemaker_submit_directory``
  hyperparameter names it; ``sagemaker_program`` the entry point inside),
  as the SageMaker Python SDK builds it from ``source_dir``. Hidden files and
  directories, ``__pycache__`` and ``*.pyc`` are left out; entries are sorted
  and stamped with time 0, so the same directory gives the same bytes.
  Unless the directory has its own, the archive also holds the rung barrier's
  helper as ``barrier.py`` (``hb_core/barrier.py``, dependency-free): the
  training container has no ``hb_core``, and a script that falls back to
  ``import barrier`` would otherwise train without the barrier its request
  asks for (``RungBarrierTimeoutSeconds``). It is not counted as a file.
- *layout* under ``s3://bucket/prefix``: ``sourcedir.tar.gz``, and each
  channel's files under ``data/<channel>/`` (what the request's
  ``InputDataConfig`` names as ``S3Prefix`` data sources). The example
  request ``examples/mlp/sagemaker.json`` uses this layout.

It uses boto3 (blocking; the command line has nothing else to do meanwhile),
with boto's credential chain, ``region`` and ``endpoint_url``.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hb_core import barrier
from hb_core.errors import BackendError, ConfigError

__all__ = ["BARRIER_HELPER", "SOURCEDIR", "Uploaded", "build_sourcedir", "package", "split_s3_uri"]

SOURCEDIR = "sourcedir.tar.gz"
#: The rung barrier helper's name in a sourcedir (module docstring).
BARRIER_HELPER = "barrier.py"


@dataclass(frozen=True)
class Uploaded:
    """What went where: ``uri`` holds ``files`` files, ``size`` bytes; ``role`` says what the request calls it."""

    uri: str
    files: int
    size: int
    role: str


def split_s3_uri(uri: str, field: str) -> tuple[str, str]:
    """``s3://bucket[/prefix]`` as (bucket, prefix without a trailing slash)."""
    if not uri.startswith("s3://") or not uri[len("s3://"):].split("/", 1)[0]:
        raise ConfigError(field, f"`{field} is an s3://bucket[/prefix] URI` must hold", uri)
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    return bucket, prefix.strip("/")


def _files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        parts = path.relative_to(directory).parts
        if any(p.startswith(".") or p == "__pycache__" for p in parts) or path.suffix == ".pyc":
            continue
        if path.is_file():
            yield path


def build_sourcedir(directory: Path, files: Sequence[str] | None = None) -> tuple[bytes, int]:
    """``sourcedir.tar.gz`` of ``directory`` (module docstring) and its number of files: every file, or only
    ``files`` (paths relative to ``directory``, in that order), and the barrier helper unless one is there."""
    if not directory.is_dir():
        raise ConfigError("DIR", "`DIR is a directory (the training script's source directory)` must hold",
                          str(directory))
    chosen = list(_files(directory)) if files is None else [directory / name for name in files]
    entries = [(path.relative_to(directory).as_posix(), path) for path in chosen]
    if chosen and BARRIER_HELPER not in {name for name, _ in entries}:
        entries.append((BARRIER_HELPER, Path(barrier.__file__)))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for name, path in entries:
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o755 if path.stat().st_mode & 0o111 else 0o644
            archive.addfile(info, io.BytesIO(data))
    if files is None and not chosen:
        raise ConfigError("DIR", "`DIR holds at least one file` must hold", str(directory))
    return buffer.getvalue(), len(chosen)


def package(
    directory: Path, s3_uri: str, channels: Mapping[str, Path], *, create_bucket: bool = False,
    region: str | None = None, endpoint_url: str | None = None, client: Any = None,
) -> list[Uploaded]:
    """Upload ``directory`` as ``<s3_uri>/sourcedir.tar.gz`` and each channel's directory under
    ``<s3_uri>/data/<channel>/``; with ``create_bucket``, create the bucket when it does not exist.

    An AWS error (no credentials, no bucket, access denied) raises :class:`~hb_core.errors.BackendError`
    naming ``s3_uri`` and the error.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3_uri(s3_uri, "--s3")
    for name, path in channels.items():
        if not path.is_dir() or not any(_files(path)):
            raise ConfigError(f"--channel {name}", "`the channel's directory holds at least one file` must hold",
                              str(path))
    archive, count = build_sourcedir(directory)
    try:
        if client is None:
            import boto3

            client = boto3.session.Session().client("s3", region_name=region, endpoint_url=endpoint_url)
        return _upload(client, bucket, prefix, archive, count, channels, create_bucket)
    except (BotoCoreError, ClientError) as exc:
        raise BackendError(f"uploading to {s3_uri}: {exc}") from exc


def _upload(client: Any, bucket: str, prefix: str, archive: bytes, count: int, channels: Mapping[str, Path],
            create_bucket: bool) -> list[Uploaded]:
    if create_bucket and not _bucket_exists(client, bucket):
        options: dict[str, Any] = {}
        if client.meta.region_name not in (None, "us-east-1"):
            options["CreateBucketConfiguration"] = {"LocationConstraint": client.meta.region_name}
        client.create_bucket(Bucket=bucket, **options)
    base = f"{prefix}/" if prefix else ""
    client.put_object(Bucket=bucket, Key=base + SOURCEDIR, Body=archive)
    done = [Uploaded(f"s3://{bucket}/{base}{SOURCEDIR}", count, len(archive), "sagemaker_submit_directory")]
    for name, path in sorted(channels.items()):
        files = list(_files(path))
        size = 0
        for file in files:
            data = file.read_bytes()
            client.put_object(Bucket=bucket, Key=f"{base}data/{name}/{file.relative_to(path).as_posix()}", Body=data)
            size += len(data)
        done.append(Uploaded(f"s3://{bucket}/{base}data/{name}/", len(files), size, f"channel {name}"))
    return done


def _bucket_exists(client: Any, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True
