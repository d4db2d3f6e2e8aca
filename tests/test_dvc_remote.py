"""The default DVC remote: the committed .dvc/config names a local remote outside the repository, and
`dvc push` from one clone then `dvc pull` in a fresh clone brings back every cached output byte for
byte, in a tiny pipeline repo of its own (conftest's private_pipeline_repo, one per module)."""

from __future__ import annotations

import configparser
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT as ROOT
from conftest import dvc_args as _dvc
from conftest import run_checked as _run

# Where the committed `url = ../../arena-pref-dvc-storage` points: DVC resolves a relative url in
# .dvc/config against the .dvc/ directory, so this is a sibling of the repository root.
STORAGE_NAME = "arena-pref-dvc-storage"


def _cached_outputs(root: Path) -> list[str]:
    """The outs of every stage in dvc.lock: what `dvc push` sends and `dvc pull` brings back."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return sorted({out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])})


def _digests(root: Path, outputs: list[str]) -> dict[str, str]:
    """sha256 of every file under `outputs`, keyed by path relative to `root`."""
    found = {}
    for name in outputs:
        target = root / name
        if not target.exists():
            found[name] = "missing"
            continue
        files = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
        for path in files:
            found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _remote_list(path: Path, env: dict) -> list[str]:
    """`dvc remote list` as [name, resolved url, "(default)"] (it wraps long lines: split on any space)."""
    return _run(_dvc("remote", "list"), path, env).split()


@pytest.fixture(scope="module")
def round_trip(private_pipeline_repo):
    """Commit the reproduced pipeline with the repository's own .dvc/config, `dvc push` to its default
    remote, `git clone` the temp repo next to it and `dvc pull` there."""
    path, env = private_pipeline_repo
    shutil.copy(ROOT / ".dvc" / "config", path / ".dvc" / "config")
    _run(["git", "add", "-A"], path, env)  # dvc.lock, .gitignore files, uncached metrics and plots
    _run(["git", "commit", "-qm", "reproduced, default remote"], path, env)
    storage = path.parent / STORAGE_NAME
    assert not storage.exists()
    _run(_dvc("push"), path, env)

    clone = path.parent / "clone"
    _run(["git", "clone", "-q", str(path), str(clone)], path.parent, env)
    _run(_dvc("pull"), clone, env)
    return path, clone, storage, env


def test_committed_config_declares_a_default_local_remote():
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    default = config.get("core", "remote", fallback=None)
    assert default, ".dvc/config has no default remote ([core] remote = ...)"
    url = config.get(f"'remote \"{default}\"'", "url")
    # Relative, resolved against .dvc/: the storage lies next to the repository, outside its tree.
    resolved = ((ROOT / ".dvc") / url).resolve()
    assert resolved == ROOT.parent / STORAGE_NAME


@pytest.mark.slow
def test_default_remote_resolves_outside_the_repository(round_trip):
    path, clone, storage, env = round_trip
    # Same committed url, two checkouts side by side: both resolve to the one sibling folder.
    assert _remote_list(path, env) == ["local", str(storage), "(default)"]
    assert _remote_list(clone, env) == ["local", str(storage), "(default)"]
    assert storage.is_dir() and any(p.is_file() for p in (storage / "files" / "md5").rglob("*"))
    assert not storage.is_relative_to(path)


@pytest.mark.slow
def test_pull_in_a_fresh_clone_restores_identical_outputs(round_trip):
    path, clone, _, env = round_trip
    outputs = _cached_outputs(path)
    pushed = _digests(path, outputs)
    pulled = _digests(clone, outputs)
    assert any(name.startswith("data/prepared/") for name in pushed)
    assert any(name.startswith("data/token_ids/") for name in pushed)
    assert any(name.startswith("models/") and name.endswith(".pt") for name in pushed)
    assert pulled == pushed
    # Nothing to rerun in the clone but prepare, which is always_changed (it re-reads its input files,
    # which DVC does not track: a URL dependency would stop DVC offline); its cache matches the remote.
    assert json.loads(_run(_dvc("status", "--json"), clone, env)) == {"prepare": ["always changed"]}
    assert json.loads(_run(_dvc("status", "--cloud", "--json"), clone, env)) == {}
    # Rerunning prepare rewrites identical outputs, so no later stage runs and nothing changes.
    repro = _run(_dvc("repro"), clone, env)
    assert "Running stage 'prepare'" in repro
    assert [line for line in repro.splitlines() if line.startswith("Running stage")] == ["Running stage 'prepare':"]
    assert _digests(clone, outputs) == pushed
