"""Build what an offline Kaggle notebook needs to score with a bundle: two dataset folders to upload and
the notebook script.

    python -m arena_pref.kaggle_kit bundle kaggle_upload --owner YOUR_KAGGLE_NAME
    kaggle datasets create -p kaggle_upload/wheels
    kaggle datasets create -p kaggle_upload/bundle --dir-mode zip
Then attach both datasets and the competition data to a notebook and run kaggle_upload/submit.py in it.

OUT_DIR/wheels: this project's wheel, built from the source checkout, and the wheels of EXTRA_PACKAGES
(the ones the Kaggle image lacks), at the versions installed here; plus dataset-metadata.json.
OUT_DIR/bundle: a verified copy of the bundle, plus dataset-metadata.json. OUT_DIR/submit.py: kaggle/submit.py.
The bundle reads on Kaggle only where check_runtime (arena_pref.bundle) accepts the image's torch,
transformers and scikit-learn; add wheels of the versions in requirements.txt with --also otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .bundle import package_version, verify_bundle

# Packages the scorer needs that the Kaggle Python image does not have (skops and its table printer).
EXTRA_PACKAGES = ("skops", "prettytable")
WHEELS_DATASET, BUNDLE_DATASET = "arena-pref-wheels", "arena-pref-bundle"
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout holding pyproject.toml and kaggle/


class KitError(RuntimeError):
    pass


def dataset_metadata(owner: str, slug: str, title: str) -> dict:
    """What `kaggle datasets create` reads from dataset-metadata.json."""
    return {"title": title, "id": f"{owner}/{slug}", "licenses": [{"name": "other"}]}


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if done.returncode:
        raise KitError(f"pip {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def pinned_extras(also: list[str]) -> list[str]:
    """EXTRA_PACKAGES at the versions installed here, then the --also requirements as given."""
    pins = []
    for name in EXTRA_PACKAGES:
        installed = package_version(name)
        if installed is None:
            raise KitError(f"{name} is not installed here; pip install -r requirements.txt first")
        pins.append(f"{name}=={installed}")
    return pins + list(also)


def build_wheels(out: Path, source_root: Path, requirements: list[str], find_links: list[str]) -> list[Path]:
    """The project's wheel (built offline from `source_root`) and downloaded wheels of `requirements`."""
    if not (source_root / "pyproject.toml").is_file():
        raise KitError(f"{source_root}: no pyproject.toml; run the kit from a source checkout (--source-root)")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Built from a copy: an in-tree build would leave build/ and egg-info folders in the checkout.
        copy = Path(tmp) / "src_copy"
        shutil.copytree(source_root / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        shutil.copyfile(source_root / "pyproject.toml", copy / "pyproject.toml")
        # Offline with the setuptools installed here; an environment without it (Python >= 3.12 venvs)
        # lets pip fetch the build backend pyproject.toml names.
        isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
        _pip("wheel", "--quiet", "--no-deps", *isolation, "--wheel-dir", str(out), str(copy))
    links = [arg for link in find_links for arg in ("--find-links", link)]
    _pip("download", "--quiet", "--no-deps", "--only-binary", ":all:", "--dest", str(out), *links, *requirements)
    return sorted(out.glob("*.whl"))


def build_kit(bundle: Path, out_dir: Path, owner: str, also: list[str] = (), find_links: list[str] = (),
              source_root: Path = SOURCE_ROOT) -> dict:
    """Write OUT_DIR/wheels, OUT_DIR/bundle and OUT_DIR/submit.py (module docstring); returns a summary."""
    description = verify_bundle(bundle)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise KitError(f"{out_dir}: not empty; choose a new folder")
    staging = out_dir / ".building"
    wheels = build_wheels(staging / "wheels", source_root, pinned_extras(list(also)), list(find_links))
    (staging / "wheels" / "dataset-metadata.json").write_text(
        json.dumps(dataset_metadata(owner, WHEELS_DATASET, "arena-pref wheels"), indent=2) + "\n")
    shutil.copytree(bundle, staging / "bundle")
    (staging / "bundle" / "dataset-metadata.json").write_text(
        json.dumps(dataset_metadata(owner, BUNDLE_DATASET, "arena-pref bundle"), indent=2) + "\n")
    verify_bundle(staging / "bundle")  # the copy, metadata included, still reads
    shutil.copyfile(source_root / "kaggle" / "submit.py", staging / "submit.py")
    for child in staging.iterdir():
        child.rename(out_dir / child.name)
    staging.rmdir()
    return {"wheels": [w.name for w in wheels], "members": description["members"],
            "tested_with": {k: description["written_with"].get(k) for k in ("torch", "transformers", "scikit-learn")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, help="bundle directory (dvc repro bundle)")
    parser.add_argument("out_dir", type=Path, help="new folder for wheels/, bundle/ and submit.py")
    parser.add_argument("--owner", required=True, help="your Kaggle user name (the datasets' owner)")
    parser.add_argument("--also", action="append", default=[], metavar="REQ",
                        help="one more wheel to ship, e.g. scikit-learn==1.9.1 (repeatable)")
    parser.add_argument("--find-links", action="append", default=[], metavar="DIR",
                        help="a folder or URL of wheels to take them from before PyPI (repeatable)")
    parser.add_argument("--source-root", type=Path, default=SOURCE_ROOT, help="checkout with pyproject.toml")
    args = parser.parse_args(argv)
    try:
        summary = build_kit(args.bundle, args.out_dir, args.owner, args.also, args.find_links, args.source_root)
    except (KitError, OSError, RuntimeError) as err:
        print(f"kaggle_kit: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out_dir}: wheels {summary['wheels']}, bundle of {summary['members']}, submit.py\n"
          f"the bundle was written and tested with {summary['tested_with']}\n"
          f"upload: kaggle datasets create -p {args.out_dir / 'wheels'}\n"
          f"        kaggle datasets create -p {args.out_dir / 'bundle'} --dir-mode zip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
