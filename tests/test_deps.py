"""dvc.yaml tells the truth: every project module a stage's command imports (transitively), and every file
such a module reads beside it, is among its deps, and every file dep exists, so editing any code a stage runs
re-runs that stage."""
from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import yaml

from tests.fixtures import needs_fashion_mnist
from tests.helpers import PROJECT_ROOT, dvc, git

# Modules that cannot change any output, with the reason (listing them would re-run every stage for nothing)
EXEMPT = {"ch11/errors.py": "error texts and the exit of a failure or a Ctrl-C: no output changes"}
# Files a module reads from beside itself (Path(__file__)): a stage importing the module depends on them too
READS = {"ch11/report/claims.py": ["ch11/report/claims.yaml"], "ch11/report/text.py": ["ch11/report/report.md.j2"]}


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


def code_deps(root: Path) -> dict[str, tuple[set[str], set[str]]]:
    """Per stage group: the project modules its command imports and the files they read (READS), and its code
    deps in dvc.yaml (the .py files and READS files listed)."""
    code = {f for files in READS.values() for f in files}
    out = {}
    for name, stage in stage_groups(root).items():
        module = re.search(r"python -m (stages\.\w+)", stage["cmd"]).group(1)
        modules = closure(module_file(module, root), root)
        needed = (modules | {f for m in modules for f in READS.get(m, [])}) - set(EXEMPT)
        listed = {d for d in stage.get("deps", []) if d.endswith(".py") or d in code}
        out[name] = (needed, listed)
    return out


def missing_deps(root: Path) -> dict[str, list[str]]:
    """Per stage group: imported project modules, and the files they read, absent from its deps."""
    return {name: sorted(needed - listed) for name, (needed, listed) in code_deps(root).items() if needed - listed}


def extra_deps(root: Path) -> dict[str, list[str]]:
    """Per stage group: code deps its command never imports (they would re-run it for nothing)."""
    return {name: sorted(listed - needed) for name, (needed, listed) in code_deps(root).items() if listed - needed}


def test_every_stages_code_deps_are_exactly_the_code_it_runs():
    assert missing_deps(PROJECT_ROOT) == {}
    assert extra_deps(PROJECT_ROOT) == {}


def test_every_file_dependency_exists():
    absent = {name: [d for d in stage.get("deps", []) if "${" not in d and not (PROJECT_ROOT / d).exists()
                     and not d.startswith(("data/", "models/", "metrics/"))]
              for name, stage in stage_groups(PROJECT_ROOT).items()}
    assert {k: v for k, v in absent.items() if v} == {}
    for exempt in EXEMPT:
        assert (PROJECT_ROOT / exempt).exists(), f"{exempt} is exempt but no longer exists: drop it from EXEMPT"
    readers = {str(p.relative_to(PROJECT_ROOT)) for folder in ("ch11", "stages", "flows")   # READS stays true
               for p in (PROJECT_ROOT / folder).rglob("*.py")
               if "Path(__file__).resolve().parent /" in p.read_text(encoding="utf-8")}
    assert readers == set(READS), "a module reads a file beside it: list it in READS"
    for module, files in READS.items():
        source = (PROJECT_ROOT / module).read_text(encoding="utf-8")
        assert all(Path(f).name in source for f in files), f"{module} no longer reads {files}: update READS"



def test_package_inits_hold_only_their_docstring():
    """A package's __init__.py runs whenever one of its modules is imported, yet no stage lists it in its deps:
    so it holds nothing that could change an output, only its docstring."""
    for folder in ("ch11", "stages", "flows"):
        for init in (PROJECT_ROOT / folder).rglob("__init__.py"):
            body = ast.parse(init.read_text(encoding="utf-8")).body
            assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body), init

def test_the_check_catches_a_new_import_and_a_dep_no_longer_imported(tmp_path):
    """The check itself can fail both ways: a stage that starts importing another module, a code dep it no
    longer runs."""
    for rel in ["dvc.yaml", *(str(p.relative_to(PROJECT_ROOT)) for folder in ("ch11", "stages")
                              for p in (PROJECT_ROOT / folder).rglob("*.py"))]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((PROJECT_ROOT / rel).read_text(encoding="utf-8"), encoding="utf-8")
    assert missing_deps(tmp_path) == {}
    aggregate = tmp_path / "stages" / "aggregate.py"
    aggregate.write_text("from ch11.report import inference\n" + aggregate.read_text(encoding="utf-8"),
                         encoding="utf-8")
    assert missing_deps(tmp_path) == {"aggregate": ["ch11/report/inference.py"]}
    dvc_yaml = tmp_path / "dvc.yaml"   # and a file a module reads, dropped from the deps
    dvc_yaml.write_text(dvc_yaml.read_text(encoding="utf-8").replace("        - ch11/report/report.md.j2\n", ""),
                        encoding="utf-8")
    assert missing_deps(tmp_path)["report"] == ["ch11/report/report.md.j2"]
    assert extra_deps(tmp_path) == {}   # and a code dep that no longer runs
    listed = "deps: [stages/download.py, "
    dvc_yaml.write_text(dvc_yaml.read_text(encoding="utf-8").replace(listed, listed + "ch11/report/inference.py, "),
                        encoding="utf-8")
    assert extra_deps(tmp_path) == {"download": ["ch11/report/inference.py"]}


def fresh_clone(root: Path) -> Path:
    """The tracked files, as a clone has them (no DVC cache, no data, no models)."""
    for rel in git(PROJECT_ROOT, "ls-files").split():
        if (PROJECT_ROOT / rel).is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / rel, root / rel)
    git(root, "init", "-q")
    return root


def test_a_fresh_clone_plans_no_stage_with_allow_missing(tmp_path):
    """dvc.lock records every Fashion-MNIST stage as the code and params now are: a clone without the DVC cache
    re-runs nothing (`--allow-missing` skips outputs that are only absent)."""
    done = dvc(fresh_clone(tmp_path), "repro", "--allow-missing", "--dry", "report@fashion_mnist", timeout=300)
    assert "Running stage" not in done.stdout + done.stderr, done.stdout


@needs_fashion_mnist
def test_a_one_run_edit_in_a_fresh_clone_trains_that_run_only(tmp_path):
    clone = fresh_clone(tmp_path)
    dvc(clone, "repro", "validate@fashion_mnist", timeout=300)   # what `make setup` does
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["runs"]["e04_elu"]["l2"] = 0.001     # one run's hyperparameter, whatever its entry holds today
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = dvc(clone, "repro", "--allow-missing", "--dry", "report@fashion_mnist", check=False, timeout=300)
    # (a dry run stops at evaluate@e04_elu, whose model it did not train: only what it planned matters)
    planned = set(re.findall(r"Running stage '([^']+)'", done.stdout))
    assert "train@e04_elu" in planned and not {s for s in planned if s.startswith("train@") and s != "train@e04_elu"}


def test_cifar10_stages_exist_only_when_opted_in(tmp_path):
    for rel in ("dvc.yaml", "params.yaml", ".dvc/config"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / rel, tmp_path / rel)
    git(tmp_path, "init", "-q")

    def stages() -> set[str]:
        return set(dvc(tmp_path, "stage", "list", "--name-only", timeout=120).stdout.split())

    assert not {s for s in stages() if "cifar" in s or "cx08" in s or "e14" in s}
    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    raw["datasets"] = ["fashion_mnist", "cifar10"]
    raw["cifar_runs"] = raw["templates"]["cifar10_runs"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert {"download@cifar10", "validate@cifar10", "train_cifar@e14_cifar_mlp", "report@cifar10"} <= stages()
