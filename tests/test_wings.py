"""ch11's wings import one way (ch11/__init__.py): the shared modules import no wing, data imports neither
training nor report, and training and report never import each other. Every module's imports, function-level
and relative ones included, read with ``ast``. And the stages stay thin: the library does the work, so bench/
and tests/ import it, never a stage (a test may still run one as a command)."""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

from tests.helpers import PROJECT_ROOT

# wing -> the wings it must never import ("" is the shared modules at ch11/'s top)
FORBIDDEN = {"": {"data", "training", "report"}, "data": {"training", "report"}, "training": {"report"},
             "report": {"training"}}


def imported(path: Path, package: str) -> set[str]:
    """The dotted names ``path`` (module of ``package``) imports anywhere in its body, ``from a import b``
    as both ``a`` and ``a.b``, relative imports resolved."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found |= {module, *(f"{module}.{a.name}" for a in node.names)}
    return found


def wing_of(dotted: str) -> str | None:
    """The wing of a dotted module name under ch11 ("" for the shared modules), None outside ch11."""
    parts = dotted.split(".")
    if parts[0] != "ch11":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in FORBIDDEN else ""


def wrong_way(root: Path) -> list[str]:
    """Every import across wings in a forbidden direction under ``root``/ch11, as 'module -> import'."""
    found = []
    for path in sorted((root / "ch11").rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        package = ".".join(rel.parts[:-1])   # the package the module lives in (for relative imports)
        wing = wing_of(".".join(rel.parts))
        found += [f"{'.'.join(rel.parts)} -> {name}" for name in sorted(imported(path, package))
                  if wing_of(name) in FORBIDDEN[wing]]
    return found


def test_every_subpackage_of_ch11_is_a_wing_the_rules_name():
    packages = {p.parent.name for p in (PROJECT_ROOT / "ch11").glob("*/__init__.py")}
    assert packages == set(FORBIDDEN) - {""}


def test_no_import_crosses_the_wings_the_wrong_way():
    assert wrong_way(PROJECT_ROOT) == []


def test_the_check_catches_each_wrong_direction(tmp_path):
    shutil.copytree(PROJECT_ROOT / "ch11", tmp_path / "ch11", ignore=shutil.ignore_patterns("__pycache__"))
    assert wrong_way(tmp_path) == []
    injected = {"report/stats.py": "from ch11.training import model\n",        # report -> training
                "training/probes.py": "def f():\n    from ..report import figures\n",   # relative, in a function
                "data/splits.py": "import ch11.report.verdicts\n",           # data -> report
                "paths.py": "from ch11 import data\n"}                       # shared -> a wing
    for rel, line in injected.items():
        path = tmp_path / "ch11" / rel
        path.write_text(path.read_text(encoding="utf-8") + line, encoding="utf-8")
    assert wrong_way(tmp_path) == ["ch11.data.splits -> ch11.report.verdicts", "ch11.paths -> ch11.data",
                                   "ch11.report.stats -> ch11.training",
                                   "ch11.report.stats -> ch11.training.model",
                                   "ch11.training.probes -> ch11.report", "ch11.training.probes -> ch11.report.figures"]


def test_stage_scripts_are_thin_and_nothing_imports_one():
    long = {p.name: n for p in (PROJECT_ROOT / "stages").glob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 120}
    assert long == {}, "a stage reads params, calls the library and writes outputs: move the work to ch11/"
    importers = [f"{path.relative_to(PROJECT_ROOT)} -> {name}" for folder in ("bench", "tests")
                 for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
                 for name in sorted(imported(path, folder)) if name.split(".")[0] == "stages"]
    assert importers == []
