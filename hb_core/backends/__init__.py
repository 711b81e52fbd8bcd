"""I/O adapters: where trials run (backends), where state lives (stores), and what time it is (clocks).

Backends may import boto3/aiobotocore; none of them imports airflow. The local
backend lives in :mod:`hb_core.backends.local`, the simulated one in
:mod:`hb_core.backends.simulated`; they are imported from there, so importing
this package stays light.
"""

from hb_core.backends.base import Backend
from hb_core.backends.clock import Clock, RealClock, VirtualClock
from hb_core.backends.stores import LocalFileStore, MemoryStore, StateStore

__all__ = ["Backend", "Clock", "LocalFileStore", "MemoryStore", "RealClock", "StateStore", "VirtualClock"]
