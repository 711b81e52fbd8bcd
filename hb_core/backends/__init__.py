"""I/O adapters: where trials run (backends), where state lives (stores), and what time it is (clocks).

They implement the protocols of :mod:`hb_core.protocols`. Two modules are
shared with the packages above: :mod:`hb_core.backends.aws` (AWS clients,
retries, paging; used by the Airflow layer, the dashboard and the CLI) and
:mod:`hb_core.backends.process` (supervised processes that outlive their
controller; used by the ``hb_emulator`` package).

Backends may import boto3/aiobotocore; none of them imports airflow. The local
backend lives in :mod:`hb_core.backends.local`, the simulated one in
:mod:`hb_core.backends.simulated`; they are imported from there, so importing
this package stays light.
"""

from hb_core.backends.clock import RealClock, VirtualClock
from hb_core.backends.stores import LocalFileStore, MemoryStore

__all__ = ["LocalFileStore", "MemoryStore", "RealClock", "VirtualClock"]
