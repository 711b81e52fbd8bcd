"""AMT's own service quotas, and what of a request AMT itself would refuse.

Our controller runs any ``MaxNumberOfTrainingJobs`` and ``MaxParallelTrainingJobs``
(10,000 trials on 200 workers in ``benchmarks/scale.py``): trials are training jobs
or processes that the controller starts itself, so SageMaker AMT's limits on a
tuning job do not bind it. Users who move a request between AMT and this
controller still want to know where AMT would refuse it. This module is that one
list, in one place:

- **Quotas** (AWS, "Amazon SageMaker endpoints and quotas" and the
  ``ResourceLimits`` API reference; see ``shared/reference/sagemaker-amt-facts.md``):
  a Hyperband tuning job runs at most 750 training jobs; at most 100 run at once.
  (The account's default is 10 at once; AWS raises it to 100 on request, so
  that one is not a finding.)
- **Our extensions**: the keys under ``HyperbandStrategyConfig`` beyond
  ``MinResource``/``MaxResource``, and ``TuningJobExtensions``. AMT's API has
  none of them.

``hb-tune validate --amt FILE`` prints every finding and exits 2 when there is
one. ``TuningJobExtensions.EnforceAmtQuotas: "Enabled"`` makes the quotas part
of validation, so a request that runs here also fits AMT's limits.

Each finding is a :class:`~hb_core.errors.ConfigError` in the project's one
wording (path, rule, value found), so a caller prints or raises it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hb_core.errors import ConfigError

__all__ = [
    "AMT_HYPERBAND_MAX_TRAINING_JOBS",
    "AMT_MAX_PARALLEL_TRAINING_JOBS",
    "extension_findings",
    "quota_findings",
]

AMT_HYPERBAND_MAX_TRAINING_JOBS = 750
AMT_MAX_PARALLEL_TRAINING_JOBS = 100

AMT_HYPERBAND_KEYS = ("MinResource", "MaxResource")


def quota_findings(
    *, hyperband: bool, max_jobs: int | None, max_parallel: int, limits_path: str
) -> tuple[ConfigError, ...]:
    """Where ``ResourceLimits`` exceeds AMT's quotas (``limits_path`` locates the object)."""
    findings: list[ConfigError] = []
    if hyperband and max_jobs is not None and max_jobs > AMT_HYPERBAND_MAX_TRAINING_JOBS:
        rule = f"`MaxNumberOfTrainingJobs <= {AMT_HYPERBAND_MAX_TRAINING_JOBS} with Hyperband` (AMT's quota) must hold"
        findings.append(ConfigError(f"{limits_path}.MaxNumberOfTrainingJobs", rule, max_jobs,
                                    hint="AMT refuses the request; this controller runs it"))
    if max_parallel > AMT_MAX_PARALLEL_TRAINING_JOBS:
        rule = f"`MaxParallelTrainingJobs <= {AMT_MAX_PARALLEL_TRAINING_JOBS}` (AMT's quota) must hold"
        findings.append(ConfigError(f"{limits_path}.MaxParallelTrainingJobs", rule, max_parallel,
                                    hint="AMT refuses the request; this controller runs it"))
    return tuple(findings)


def extension_findings(request: Mapping[str, Any], hyperband_path: str, extensions_key: str) -> tuple[ConfigError, ...]:
    """The keys of an AMT-layout ``request`` that are ours, not AMT's: AMT refuses a request holding them.

    ``request`` is :meth:`hb_core.config.TuningConfig.to_dict`'s output, which writes an extension only
    when it differs from its default, so a finding is a setting AMT would not reproduce.
    """
    findings: list[ConfigError] = []
    node: Any = request
    for key in hyperband_path.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    for key in node or ():
        if key not in AMT_HYPERBAND_KEYS:
            findings.append(ConfigError(f"{hyperband_path}.{key}", "`the key is part of AMT's API` must hold",
                                        node[key], hint="our extension; remove it before sending the request to AMT"))
    for key, value in (request.get(extensions_key) or {}).items():
        findings.append(ConfigError(f"{extensions_key}.{key}", "`the key is part of AMT's API` must hold", value,
                                    hint="our extension; remove it before sending the request to AMT"))
    return tuple(findings)
