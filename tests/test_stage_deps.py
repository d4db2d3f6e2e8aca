"""dvc.yaml lists every Python file a stage runs, so that a code change reruns the stage.

DVC reruns a stage only when one of its listed deps changes. Each stage's Python deps are derived here
from its script: the src/*.py files named in its cmd, and every module of src/arena_pref they import,
transitively (module-level and function-level imports alike, via ast; the package's __init__.py too,
since Python runs it first). A missing dep means `dvc status` could call stale outputs up to date.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "arena_pref"
PACKAGE_DIR = ROOT / "src" / PACKAGE


def _module_file(name: str) -> Path | None:
    """The file of module `arena_pref.x.y` (or the package itself), None outside the package."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT / "src").with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _lazy_package_attribute(node: ast.AST, tree: ast.Module) -> bool:
    """An import inside a package's module-level __getattr__ (PEP 562) runs only when that attribute is
    asked for (`arena_pref.Scorer`), not when a stage imports a submodule."""
    return any(isinstance(top, ast.FunctionDef) and top.name == "__getattr__" and node in ast.walk(top)
               for top in tree.body)


def imported_files(path: Path) -> set[Path]:
    """The files of src/arena_pref that `path` imports directly."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package_module = path.is_relative_to(PACKAGE_DIR)
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if path.name == "__init__.py" and _lazy_package_attribute(node, tree):
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level and is_package_module:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            # `from arena_pref import gbdt` imports the submodule gbdt.
            names += [f"{module}.{alias.name}" for alias in node.names]
    files = set()
    for name in names:
        parts = name.split(".")
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        for i in range(1, len(parts) + 1):
            file = _module_file(".".join(parts[:i]))
            if file is not None:
                files.add(file)
    return files


def python_deps(script: Path) -> set[str]:
    """`script` and every src/arena_pref file it reaches, as paths relative to the repository root."""
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += imported_files(path) - seen
    return {p.relative_to(ROOT).as_posix() for p in seen}


def _stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _scripts(cmd) -> list[str]:
    cmd = " ".join(cmd) if isinstance(cmd, list) else cmd
    return re.findall(r"(?<![\w/])src/[\w/]+\.py\b", cmd)


def _dep_paths(stage: dict) -> set[str]:
    return {next(iter(d)) if isinstance(d, dict) else d for d in stage.get("deps", [])}


STAGES = _stages()


def test_every_stage_runs_a_script():
    # A stage whose cmd names no src/*.py script would escape the check below unnoticed.
    assert STAGES
    for name, stage in STAGES.items():
        assert _scripts(stage["cmd"]), f"stage {name}: no src/*.py script in its cmd"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_lists_the_python_files_it_runs(name):
    stage = STAGES[name]
    needed = set().union(*(python_deps(ROOT / script) for script in _scripts(stage["cmd"])))
    missing = sorted(needed - _dep_paths(stage))
    assert not missing, f"dvc.yaml stage {name}: add to deps: {missing}"
    # A listed module the stage no longer runs would rerun it for nothing after every change to that module.
    stale = sorted(path for path in _dep_paths(stage) if path.endswith(".py") and path not in needed)
    assert not stale, f"dvc.yaml stage {name}: remove from deps (not imported): {stale}"


def test_import_walk_follows_relative_package_and_submodule_imports(tmp_path):
    # The walk itself, on files whose imports are known: ensemble.py imports arena_pref.predictions,
    # which imports .crossfit (relative), whose own imports must be followed too.
    deps = python_deps(ROOT / "src" / "ensemble.py")
    for expected in ("src/ensemble.py", "src/arena_pref/__init__.py", "src/arena_pref/predictions.py",
                     "src/arena_pref/crossfit.py", "src/arena_pref/metrics.py", "src/arena_pref/errors.py",
                     "src/arena_pref/csvfile.py"):
        assert expected in deps, expected
    assert "src/arena_pref/scorer.py" not in python_deps(ROOT / "src" / "prepare.py")  # lazy __getattr__ import
    # `from arena_pref import gbdt` is the submodule gbdt.py
    assert "src/arena_pref/gbdt.py" in python_deps(ROOT / "src" / "train_gbdt.py")
