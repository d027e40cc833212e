"""dvc.yaml tells the truth: every project module a stage's command imports (transitively) is among its deps,
and every file dep exists, so editing any code a stage runs re-runs that stage."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Modules that cannot change any output, with the reason (listing them would re-run every stage for nothing)
EXEMPT = {"ch11/errors.py": "the text of error messages and the exit code of a failure: no output changes"}


def module_file(name: str, root: Path) -> Path | None:
    path = root / (name.replace(".", "/") + ".py")
    return path if path.exists() else None


def project_imports(path: Path, root: Path) -> set[Path]:
    """Project modules ``path`` imports anywhere in its body (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        found |= {f for n in names if (f := module_file(n, root))}
    return found


def closure(path: Path, root: Path) -> set[str]:
    seen, todo = set(), [path]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += project_imports(current, root)
    return {str(p.relative_to(root)) for p in seen}


def stage_groups(root: Path) -> dict[str, dict]:
    """Each stage group of dvc.yaml (foreach bodies included): name -> its definition."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: body.get("do", body) for name, body in stages.items()}


def missing_deps(root: Path) -> dict[str, list[str]]:
    """Per stage group: imported project modules absent from its deps."""
    out = {}
    for name, stage in stage_groups(root).items():
        module = re.search(r"python -m (stages\.\w+)", stage["cmd"]).group(1)
        needed = closure(module_file(module, root), root) - set(EXEMPT)
        missing = sorted(needed - set(stage.get("deps", [])))
        if missing:
            out[name] = missing
    return out


def test_every_imported_module_is_a_dependency():
    assert missing_deps(PROJECT_ROOT) == {}


def test_every_file_dependency_exists():
    absent = {name: [d for d in stage.get("deps", []) if "${" not in d and not (PROJECT_ROOT / d).exists()
                     and not d.startswith(("data/", "models/", "metrics/"))]
              for name, stage in stage_groups(PROJECT_ROOT).items()}
    assert {k: v for k, v in absent.items() if v} == {}
    for exempt in EXEMPT:
        assert (PROJECT_ROOT / exempt).exists(), f"{exempt} is exempt but no longer exists: drop it from EXEMPT"


def test_the_check_catches_a_new_import(tmp_path):
    """The check itself can fail: a stage that starts importing another module is caught."""
    for rel in ["dvc.yaml", *(str(p.relative_to(PROJECT_ROOT)) for p in PROJECT_ROOT.glob("*/*.py")
                              if p.parts[-2] in ("ch11", "stages"))]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((PROJECT_ROOT / rel).read_text(encoding="utf-8"), encoding="utf-8")
    assert missing_deps(tmp_path) == {}
    aggregate = tmp_path / "stages" / "aggregate.py"
    aggregate.write_text("from ch11 import figures\n" + aggregate.read_text(encoding="utf-8"), encoding="utf-8")
    assert missing_deps(tmp_path) == {"aggregate": ["ch11/figures.py"]}
