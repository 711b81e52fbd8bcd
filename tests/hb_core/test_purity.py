"""The layering rules, bottom up: the pure core, its I/O adapters (``hb_core.backends``), then the packages on
top of the core's public modules (``hb_emulator``, the test and demo tool; ``hb_airflow``).

- The pure core imports with airflow, boto3, botocore and the emulator made unimportable (in a subprocess).
- The whole core, its backends and ``hb-tune`` import without ``hb_emulator`` (its extra not installed), and
  ``hb-tune emulator`` then names the extra to install.
- Read statically (every import statement, inside functions too): the core never imports airflow or the
  layers above it, boto and the SageMaker SDK only in ``hb_core.backends``, ``hb_emulator`` only in the
  ``emulator`` command of the CLI (lazily, guarded); no other package imports a private module of the core.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"hb_core": ROOT / "hb_core", "hb_emulator": ROOT / "hb_emulator",
            "hb_airflow": ROOT / "plugins" / "hb_airflow"}

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
    "hb_core.protocols",
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
    "hb_core.decision_round",
    "hb_core.variants",
    "hb_core.records",
    "hb_core.request",
    "hb_core.plan",
    "hb_core.wiring",
    "hb_core.config.keys",
    "hb_core.config.enums",
    "hb_core.config.sections",
    "hb_core.config.definition",
    "hb_core.config.tuning",
]

BLOCKED = ["airflow", "boto3", "botocore", "aiobotocore", "sagemaker", "hb_emulator", "moto"]
AWS_SDKS = {"boto3", "botocore", "aiobotocore", "sagemaker"}
#: The one import of the emulator the core may make: in this function of this module.
EMULATOR_DOOR = ("hb_core/cli.py", "_emulate")

#: Finds nothing for the blocked top-level names, as when they are not installed.
BLOCKER = """
import importlib, importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked in this test)", name=name)
        return None

sys.meta_path.insert(0, Block())
"""


def run(blocked: list[str], body: str) -> subprocess.CompletedProcess[str]:
    """``body`` in a fresh interpreter with the ``blocked`` top-level names unimportable."""
    script = f"BLOCKED = {blocked!r}\n{BLOCKER}\n{textwrap.dedent(body)}"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_pure_core_imports_without_airflow_or_aws_sdks() -> None:
    done = run(BLOCKED, f"""
        for module in {PURE_MODULES!r}:
            importlib.import_module(module)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        print("ok")
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_core_and_hb_tune_work_without_the_emulator_and_name_its_extra() -> None:
    backends = sorted(f"hb_core.backends.{p.stem}" for p in (ROOT / "hb_core" / "backends").glob("*.py"))
    done = run(["hb_emulator", "moto"], f"""
        try:
            import hb_emulator
        except ModuleNotFoundError:
            pass
        else:
            raise AssertionError("the blocker let hb_emulator through")
        for module in ["hb_core", "hb_core.cli", "hb_core.protocols", *{backends!r}]:
            importlib.import_module(module)
        from hb_core.cli import main
        assert main(["plan", "examples/mlp/tuning.json"]) == 0
        code = main(["emulator", "--port", "0"])
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        print("exit", code)
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "exit 1"
    assert done.stderr.strip() == ("error: `hb-tune emulator` needs the emulator extra, which is not installed "
                                   "(No module named 'hb_emulator' (blocked in this test)): "
                                   "pip install 'airflow-hyperband[emulator]'"), done.stderr


def test_the_blocker_really_blocks() -> None:
    """The tests above would be vacuous if the finder did not block: prove it does."""
    done = run(["json"], """
        sys.modules.pop("json", None)
        try:
            import json
        except ImportError:
            print("blocked")
        """)
    assert done.stdout.strip() == "blocked", done.stderr


def imports(path: Path) -> Iterator[tuple[str, int, str | None]]:
    """(imported module, line, enclosing function or None) for every import statement of ``path``."""
    def walk(node: ast.AST, function: str | None) -> Iterator[tuple[str, int, str | None]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                yield from ((alias.name, child.lineno, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                assert child.level == 0, f"{path}:{child.lineno}: a relative import"
                module = child.module or ""
                yield module, child.lineno, function
                yield from ((f"{module}.{alias.name}", child.lineno, function) for alias in child.names)
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            yield from walk(child, inner)

    yield from walk(ast.parse(path.read_text(encoding="utf-8")), None)


def violations() -> list[str]:
    found = []
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            # hb_core/barrier.py runs inside the training job, not the controller: it reads its verdicts from S3
            # with the boto3 the job's container has, imported lazily and optional (no boto3: no barrier)
            in_backends = where.startswith("hb_core/backends/") or where == "hb_core/barrier.py"
            for module, line, function in imports(path):
                top, parts = module.split(".")[0], module.split(".")
                if package == "hb_core" and top in ("airflow", "hb_airflow"):
                    found.append(f"{where}:{line}: the core imports {module}")
                if package == "hb_core" and top in AWS_SDKS and not in_backends:
                    found.append(f"{where}:{line}: {module} outside hb_core.backends")
                if package == "hb_core" and top == "hb_emulator" and (where, function) != EMULATOR_DOOR:
                    found.append(f"{where}:{line}: the core imports the emulator ({module}) outside "
                                 f"{EMULATOR_DOOR[0]}:{EMULATOR_DOOR[1]}")
                if package == "hb_emulator" and top in ("airflow", "hb_airflow"):
                    found.append(f"{where}:{line}: the emulator imports {module}")
                if package == "hb_airflow" and top == "hb_emulator":
                    found.append(f"{where}:{line}: the Airflow layer imports the emulator ({module})")
                if package != "hb_core" and top == "hb_core" and any(p.startswith("_") for p in parts[1:]):
                    found.append(f"{where}:{line}: a private module of the core: {module}")
    return found


def test_no_module_imports_across_a_layer() -> None:
    assert violations() == []


def test_the_layer_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The walk would be vacuous if it missed nested imports: it finds one two functions deep."""
    source = tmp_path / "m.py"
    source.write_text("import os\n\ndef f():\n    def g():\n        from hb_emulator.jobs import Faults\n")
    assert list(imports(source)) == [("os", 1, None), ("hb_emulator.jobs", 5, "g"),
                                     ("hb_emulator.jobs.Faults", 5, "g")]
