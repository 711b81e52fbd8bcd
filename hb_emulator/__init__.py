"""A SageMaker training-job emulator for tests and demos without AWS: real processes, moto for S3 and CloudWatch.

``Emulator(moto_endpoint, work_dir)`` serves the SageMaker JSON API
(CreateTrainingJob, DescribeTrainingJob, StopTrainingJob, ListTrainingJobs,
ListTags, AddTags) over HTTP on 127.0.0.1 and runs each training job's
script-mode entry point as a local process, with the lifecycle, CloudWatch
metrics and logs, checkpoints and model artifacts of SageMaker, all on a
moto server. Every other request sent to it is proxied to moto, so one
endpoint serves a whole AWS client setup, with fault injection
(:class:`Faults`) on every call type. ``python -m hb_emulator`` (or
``hb-tune emulator``) runs it as a process.

A test and demo tool, so a package of its own beside the product: it needs
the ``emulator`` extra (``pip install 'airflow-hyperband[emulator]'``, moto's
server), the core never imports it (``hb-tune emulator`` reaches it lazily),
and it uses only the core's public :mod:`hb_core.backends.process` (the local
backend's supervised processes). It never imports airflow.
"""

from hb_emulator.faults import Faults
from hb_emulator.server import Emulator

__all__ = ["Emulator", "Faults"]
