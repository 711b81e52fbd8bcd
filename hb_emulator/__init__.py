"""A SageMaker training-job emulator for tests and demos without AWS: real processes, moto for S3 and CloudWatch.

``Emulator(moto_endpoint, work_dir)`` serves the SageMaker JSON API
(CreateTrainingJob, DescribeTrainingJob, StopTrainingJob, ListTrainingJobs,
ListTags, AddTags) over HTTP on 127.0.0.1 and runs each training job's
script-mode entry point as a local process, with the lifecycle, CloudWatch
metrics and logs, checkpoints and model artifacts of SageMaker, all on a
moto server. Every other request sent to it is proxied to moto, so one
endpoint serves a whole AWS client setup, with fault injection
(:class:`Faults`) on every call type. ``python -m hb_core.emulator`` runs it
as a process. It never imports airflow.
"""

from hb_core.emulator.faults import Faults
from hb_core.emulator.server import Emulator

__all__ = ["Emulator", "Faults"]
