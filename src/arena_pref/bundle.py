"""A bundle: a trained run as one self-contained directory that scores new rows anywhere (arena_pref.scorer).

Layout (FORMAT_VERSION 1):
    manifest.json        {"format_version": 1, "files": {relative path: SHA-256 hex}} of every other file
    bundle.json          what the scorer needs: members, blends, text and head settings, fold lists, the
                         library and package versions that wrote it, the params and the CV figures
    backbone/            the backbone's config.json and tokenizer files (the hub is never contacted)
    siamese/fold_K.safetensors, gbdt/fold_K.skops, tfidf/fold_K.skops   one file per fold model

Reading a bundle verifies it first (`verify_bundle`): the manifest's format version, that every listed
file exists and hashes to its manifest value, that no file is unlisted, then the runtime's package
versions (`check_runtime`). Any failure is a BundleError naming the file. Nothing in a bundle is code:
weights are safetensors, scikit-learn models are skops files read with an explicit trusted-type list.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DESCRIPTION = "bundle.json"
# Written next to the bundle's files by the Kaggle kit for `kaggle datasets create`; never read.
IGNORED_FILES = ("dataset-metadata.json",)
# Packages whose versions a bundle records; `check_runtime` compares them with the runtime's.
RECORDED_PACKAGES = ("torch", "transformers", "tokenizers", "scikit-learn", "skops", "safetensors", "numpy")


class BundleError(RuntimeError):
    """A bundle that cannot be read: missing, altered, truncated, or from another format version."""

    def __init__(self, path: str | Path, message: str):
        super().__init__(f"{path}: {message}")
        self.path = str(path)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    """Versions of RECORDED_PACKAGES and of this library in the running environment."""
    return {"arena-pref": package_version("arena-pref")} | {name: package_version(name) for name in RECORDED_PACKAGES}


def _bundle_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).as_posix() not in (MANIFEST, *IGNORED_FILES))


def write_manifest(root: str | Path) -> dict:
    """Hash every file under `root` (except the manifest) into root/manifest.json; returns the manifest."""
    root = Path(root)
    manifest = {"format_version": FORMAT_VERSION,
                "files": {name: sha256_file(root / name) for name in _bundle_files(root)}}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def publish(staging: Path, target: Path) -> None:
    """Replace `target` by the finished `staging` directory, so that a reader never sees half a bundle."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def read_json_file(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(path, f"not a readable JSON file ({err})") from None
    if not isinstance(value, dict):
        raise BundleError(path, "expected a JSON object")
    return value


def verify_bundle(root: str | Path) -> dict:
    """Check the bundle at `root` against its manifest and return its description (bundle.json)."""
    root = Path(root)
    if not root.is_dir():
        raise BundleError(root, "no bundle directory here (write one with `dvc repro bundle`)")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(manifest_path, "missing: not a bundle, or an incomplete copy of one")
    manifest = read_json_file(manifest_path)
    found = manifest.get("format_version")
    if found != FORMAT_VERSION:
        raise BundleError(manifest_path, f"bundle format version {found!r}, but this arena-pref "
                          f"({package_version('arena-pref')}) reads version {FORMAT_VERSION}: score it with the "
                          "arena-pref release that wrote it, or rebuild the bundle with this one")
    files = manifest.get("files")
    if not isinstance(files, dict) or DESCRIPTION not in files:
        raise BundleError(manifest_path, f"no file list, or {DESCRIPTION} is not in it")
    for name, expected in files.items():
        path = root / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleError(manifest_path, f"lists a path outside the bundle: {name!r}")
        if not path.is_file():
            raise BundleError(path, "missing from the bundle (listed in manifest.json); copy the whole bundle "
                              "directory again")
        if sha256_file(path) != expected:
            raise BundleError(path, "SHA-256 differs from manifest.json: the file was altered or truncated; "
                              "copy the bundle again")
    unlisted = sorted(set(_bundle_files(root)) - set(files))
    if unlisted:
        raise BundleError(root / unlisted[0], f"not in manifest.json ({len(unlisted)} unlisted file(s)): the "
                          "bundle was altered; remove the file or copy the bundle again")
    description = read_json_file(root / DESCRIPTION)
    if description.get("format_version") != FORMAT_VERSION:
        raise BundleError(root / DESCRIPTION, f"format version {description.get('format_version')!r} differs "
                          f"from the manifest's {FORMAT_VERSION}")
    return description


def _major(text: str | None) -> str | None:
    return None if text is None else text.split(".")[0]


def _major_minor(text: str | None) -> str | None:
    return None if text is None else ".".join(text.split("+")[0].split(".")[:2])


def _without_sklearn(sklearn_members: list[str]) -> str:
    """The way around a scikit-learn mismatch, when there is one: the siamese member alone, unless it
    runs the scikit-learn members itself (its teacher prior)."""
    return "" if "siamese" in sklearn_members else " (or score with members=['siamese'])"


def check_runtime(root: str | Path, description: dict, sklearn_members: list[str]) -> None:
    """Stop with a clear error when the running packages cannot read this bundle.

    scikit-learn models are read only by the scikit-learn release line (major.minor) that wrote them;
    torch and transformers must share the writer's major version (weights layout, config and tokenizer
    formats). The versions a bundle was written (and tested) with are in bundle.json, `written_with`.
    """
    written = description.get("written_with", {})
    running = package_versions()
    where = Path(root) / DESCRIPTION
    for name in ("torch", "transformers"):
        if _major(written.get(name)) != _major(running[name]):
            raise BundleError(where, f"written with {name} {written.get(name)}, this runtime has {name} "
                              f"{running[name]}: install {name}=={written.get(name)}")
    if sklearn_members:
        way_around = _without_sklearn(sklearn_members)
        for name in ("scikit-learn", "skops"):
            if running[name] is None:
                raise BundleError(where, f"the {', '.join(sklearn_members)} member(s) need {name}, which is not "
                                  f"installed: pip install {name}=={written.get(name)}{way_around}")
        if _major_minor(written.get("scikit-learn")) != _major_minor(running["scikit-learn"]):
            raise BundleError(where, f"the {', '.join(sklearn_members)} fold models were written with scikit-learn "
                              f"{written.get('scikit-learn')} and this runtime has {running['scikit-learn']}: "
                              f"install scikit-learn=={written.get('scikit-learn')}{way_around}")
