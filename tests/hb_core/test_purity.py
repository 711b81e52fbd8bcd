"""The bottom layering rule: the core imports with airflow, boto3 and botocore made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PURE_MODULES = [
    "hb_core",
    "hb_core.config",
    "hb_core.space",
    "hb_core.state",
    "hb_core.events",
    "hb_core.rungs",
    "hb_core.strategies",
    "hb_core.strategies.base",
    "hb_core.strategies.factory",
    "hb_core.controller",
    "hb_core.report",
    "hb_core.curves",
    "hb_core.runner",
    "hb_core.simulate",
    "hb_core.cli",
    "hb_core.backends.simulated",
    "hb_core.backends.stores",
    "hb_core.backends.clock",
    "hb_core.backends.local",
    "hb_core.strategies.gp",
    "hb_core.strategies.bayesian",
    "hb_core.strategies.model_based",
    "hb_core.strategies.multi_fidelity",
    "hb_core.strategies.warm_start",
    "hb_core.pstruct",
    "hb_core.naming",
]

BLOCKED = ["airflow", "boto3", "botocore", "aiobotocore", "sagemaker"]


def test_pure_core_imports_without_airflow_or_aws_sdks() -> None:
    script = textwrap.dedent(
        f"""
        import importlib, importlib.abc, sys

        BLOCKED = {BLOCKED!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked in this test")
                return None

        sys.meta_path.insert(0, Block())
        for module in {PURE_MODULES!r}:
            importlib.import_module(module)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_blocker_really_blocks() -> None:
    """The test above would be vacuous if the finder did not block: prove it does."""
    script = textwrap.dedent(
        """
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "json":
                    raise ImportError("blocked")
        sys.modules.pop("json", None)
        sys.meta_path.insert(0, Block())
        try:
            import json
        except ImportError:
            print("blocked")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "blocked"
