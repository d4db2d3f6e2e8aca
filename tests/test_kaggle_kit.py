"""The Kaggle kit, end to end in a simulated offline notebook: a fresh virtual environment that sees the
packages of the running one (as a Kaggle image has torch, transformers, scikit-learn...), but not this
project, not dvc and not the wheels the kit ships; HF_HUB_OFFLINE=1; kaggle/submit.py installs the kit's
wheels with pip --no-index and must write the pipeline's submission.csv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from arena_pref.bundle import verify_bundle
from arena_pref.kaggle_kit import BUNDLE_DATASET, WHEELS_DATASET, dataset_metadata
from arena_pref.predictions import probs_of

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def simulated_kaggle_python(root: Path) -> Path:
    """A venv whose own site-packages comes first, then (through a .pth line, whose own .pth files are not
    processed, so the editable install of this project stays invisible) the running venv's packages;
    `import dvc` fails there as on Kaggle."""
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, capture_output=True)
    python = root / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "kaggle_image.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "dvc").mkdir()
    (site / "dvc" / "__init__.py").write_text("raise ImportError('no dvc on Kaggle')\n")
    return python


def offline_env(**paths: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env | {"HF_HUB_OFFLINE": "1", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"} | paths


def test_kit_and_offline_notebook_reproduce_the_pipeline(pipeline_repo, tmp_path):
    path, _ = pipeline_repo
    kit = tmp_path / "upload"
    done = subprocess.run([sys.executable, "-m", "arena_pref.kaggle_kit", str(path / "models/bundle"), str(kit),
                           "--owner", "tester"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    wheels = sorted(p.name.split("-")[0] for p in (kit / "wheels").glob("*.whl"))
    assert wheels == ["arena_pref", "prettytable", "skops"]
    for folder, slug in (("wheels", WHEELS_DATASET), ("bundle", BUNDLE_DATASET)):
        metadata = json.loads((kit / folder / "dataset-metadata.json").read_text())
        assert metadata == dataset_metadata("tester", slug, metadata["title"]) and metadata["id"] == f"tester/{slug}"
    verify_bundle(kit / "bundle")
    assert (kit / "submit.py").read_text() == (REPO / "kaggle" / "submit.py").read_text()
    assert not (REPO / "build").exists()  # the wheel was built from a copy, not in the checkout

    python = simulated_kaggle_python(tmp_path / "kaggle-venv")
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('arena_pref'))"],
                           capture_output=True, text=True, env=offline_env())
    assert probe.stdout.strip() == "None", probe.stdout  # the project is not preinstalled
    submission = tmp_path / "working" / "submission.csv"
    run = subprocess.run([str(python), str(kit / "submit.py")], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600, env=offline_env(ARENA_PREF_WHEELS=str(kit / "wheels"),
                                                      ARENA_PREF_BUNDLE=str(kit / "bundle"),
                                                      ARENA_PREF_TEST_CSV=str(path / "data/raw/test.csv"),
                                                      ARENA_PREF_SUBMISSION=str(submission)))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    written = pd.read_csv(submission, dtype={"id": str})
    expected = pd.read_csv(path / "submission.csv", dtype={"id": str})
    assert written["id"].tolist() == expected["id"].tolist()
    np.testing.assert_allclose(probs_of(written), probs_of(expected), rtol=0, atol=1e-6)

    where = subprocess.run([str(python), "-c", "import arena_pref, skops; print(arena_pref.__file__, skops.__file__);"
                            "import dvc"], capture_output=True, text=True, env=offline_env())
    installed = where.stdout.split()
    assert len(installed) == 2 and all(p.startswith(str(tmp_path / "kaggle-venv")) for p in installed), where.stdout
    assert "no dvc on Kaggle" in where.stderr


def test_kit_refuses_a_damaged_bundle_and_writes_nothing(pipeline_repo, tmp_path):
    import shutil
    path, _ = pipeline_repo
    bundle = tmp_path / "bundle"
    shutil.copytree(path / "models/bundle", bundle)
    (bundle / "backbone" / "config.json").write_text("{}")
    done = subprocess.run([sys.executable, "-m", "arena_pref.kaggle_kit", str(bundle), str(tmp_path / "upload"),
                           "--owner", "tester"], capture_output=True, text=True)
    assert done.returncode == 1
    assert f"{bundle / 'backbone/config.json'}: SHA-256 differs from manifest.json" in done.stderr
    assert not (tmp_path / "upload").exists()
