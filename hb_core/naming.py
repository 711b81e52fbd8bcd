"""Deterministic names: the same trial attempt gets the same training-job name in every process.

That is what makes a launch idempotent: a controller that relaunches after a
crash asks for a job that already exists, and adopts it instead of doubling it.

Where a SageMaker tuning job's things live in S3 is derived the same way, from
the request's ``OutputDataConfig.S3OutputPath``: the controller's state at
``<S3OutputPath>/<tuning job>/hyperband`` and each training job's model at
``<S3OutputPath>/<training job>/output/model.tar.gz`` (SageMaker's own layout).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from hb_core.config import JOB_NAME, TuningConfig
from hb_core.errors import ConfigError

__all__ = ["JOB_NAME_PATTERN", "default_s3_state_uri", "derived_tuning_job_name", "model_artifacts_uri",
           "parent_state_uris", "training_job_name"]

#: SageMaker's name pattern for tuning jobs (1-32 characters) and training jobs (1-63): the request
#: validator's own (``hb_core.config.JOB_NAME``); match names with ``fullmatch``.
JOB_NAME_PATTERN = JOB_NAME


def training_job_name(tuning_job_name: str, trial_id: str, attempt: int) -> str:
    """``<tuning job>-<trial id>-<attempt>``, e.g. ``mlp-hyperband-0007-1`` (at most 63 characters)."""
    name = f"{tuning_job_name}-{trial_id}-{attempt}"
    if len(name) > 63 or not JOB_NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            "TrainingJobName", "`a 1-63 character name matching [a-zA-Z0-9](-*[a-zA-Z0-9])*` must hold", name
        )
    return name


def derived_tuning_job_name(base: str, *identity: str) -> str:
    """A tuning-job name unique to ``identity`` (e.g. DAG id, run id, task id): ``<base>-<8 hex>``, <= 32 chars.

    ``base`` is cleaned to the allowed characters and shortened to fit.
    """
    digest = hashlib.sha256("\x1f".join(identity).encode()).hexdigest()[:8]
    cleaned = re.sub(r"[^a-zA-Z0-9]+", "-", base).strip("-") or "hb"
    return f"{cleaned[: 32 - 9].rstrip('-')}-{digest}"


def _s3_output_path(config: TuningConfig) -> str:
    definition = config.training_job_definition
    output = definition.raw.get("OutputDataConfig", {}).get("S3OutputPath") if definition else None
    return str(output or "").rstrip("/")


def default_s3_state_uri(config: TuningConfig, tuning_job_name: str) -> str:
    """``<S3OutputPath>/<tuning job>/hyperband``: where the SageMaker backend keeps state unless told otherwise."""
    output = _s3_output_path(config)
    if not output:
        raise ConfigError(
            "TrainingJobDefinition.OutputDataConfig.S3OutputPath",
            "an S3 output path is needed for the SageMaker backend's default state_uri (or pass state_uri)",
            output or None,
        )
    return f"{output}/{tuning_job_name}/hyperband"


def model_artifacts_uri(config: TuningConfig, tuning_job_name: str, trial_id: str, attempt: int) -> str:
    """Where SageMaker saves the model of the trial's training job: ``<S3OutputPath>/<job>/output/model.tar.gz``."""
    job = training_job_name(tuning_job_name, trial_id, attempt)
    return f"{_s3_output_path(config)}/{job}/output/model.tar.gz"


def parent_state_uris(config: TuningConfig, state_uri: str, default: Callable[[str], str] | None) -> list[str]:
    """Where the ``WarmStartConfig`` parents keep their state, in order: ``default(parent)`` for each (this
    job is at its default place too), or else the siblings of ``state_uri`` (a local path or an S3 URI)."""
    names = config.warm_start.parent_tuning_job_names if config.warm_start else ()
    if default is not None:
        return [default(name) for name in names]
    base = state_uri.rstrip("/").rsplit("/", 1)[0]
    return [f"{base}/{name}" for name in names]
