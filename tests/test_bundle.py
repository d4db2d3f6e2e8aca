"""A bundle is read only when every file matches its manifest, its format version is this library's, and
the runtime's packages can read it; otherwise one clear error names the file and nothing is written.
Fast tests on hand-made bundle directories; slow ones on copies of the pipeline's bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.preprocessing import FunctionTransformer

from arena_pref.bundle import (FORMAT_VERSION, BundleError, check_runtime, package_versions, sha256_file,
                               verify_bundle, write_manifest)
from arena_pref.sklearn_files import load_state, save_state


def small_bundle(root: Path) -> Path:
    (root / "backbone").mkdir(parents=True)
    (root / "bundle.json").write_text(json.dumps({"format_version": FORMAT_VERSION, "members": ["siamese"]}))
    (root / "backbone" / "tokenizer.json").write_text('{"vocab": [1, 2, 3]}')
    write_manifest(root)
    return root


def test_manifest_round_trip_hashes_every_file(tmp_path):
    root = small_bundle(tmp_path / "b")
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["files"] == {"backbone/tokenizer.json": sha256_file(root / "backbone/tokenizer.json"),
                                 "bundle.json": sha256_file(root / "bundle.json")}
    assert verify_bundle(root) == {"format_version": FORMAT_VERSION, "members": ["siamese"]}
    # the Kaggle kit's dataset-metadata.json is allowed beside the files
    (root / "dataset-metadata.json").write_text("{}")
    verify_bundle(root)


def test_altered_and_truncated_files_are_named(tmp_path):
    root = small_bundle(tmp_path / "b")
    tokenizer = root / "backbone" / "tokenizer.json"
    tokenizer.write_text('{"vocab": [1, 2, 4]}')  # same length, one byte changed
    with pytest.raises(BundleError, match=rf"^{tokenizer}: SHA-256 differs from manifest.json"):
        verify_bundle(root)
    tokenizer.write_text('{"vocab": [1, ')
    with pytest.raises(BundleError, match=rf"^{tokenizer}: SHA-256 differs"):
        verify_bundle(root)


def test_missing_unlisted_and_escaping_files_are_named(tmp_path):
    root = small_bundle(tmp_path / "b")
    (root / "backbone" / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=rf"^{root / 'backbone/tokenizer.json'}: missing from the bundle"):
        verify_bundle(root)
    root = small_bundle(tmp_path / "c")
    (root / "backbone" / "added_tokens.json").write_text("{}")
    with pytest.raises(BundleError, match=rf"^{root / 'backbone/added_tokens.json'}: not in manifest.json"):
        verify_bundle(root)
    root = small_bundle(tmp_path / "d")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"]["../outside.json"] = "0" * 64
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"manifest.json: lists a path outside the bundle: '../outside.json'"):
        verify_bundle(root)
    with pytest.raises(BundleError, match=rf"^{tmp_path / 'nowhere'}: no bundle directory here"):
        verify_bundle(tmp_path / "nowhere")
    (tmp_path / "e").mkdir()
    with pytest.raises(BundleError, match=rf"^{tmp_path / 'e' / 'manifest.json'}: missing: not a bundle"):
        verify_bundle(tmp_path / "e")


def test_another_format_version_is_refused(tmp_path):
    root = small_bundle(tmp_path / "b")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=rf"^{root / 'manifest.json'}: bundle format version {FORMAT_VERSION + 1}, "
                                          rf"but this arena-pref .* reads version {FORMAT_VERSION}"):
        verify_bundle(root)


def test_runtime_versions_that_cannot_read_the_bundle_are_refused(tmp_path):
    written = package_versions()
    check_runtime(tmp_path, {"written_with": written}, ["gbdt"])  # the writer's own versions read it
    old_sklearn = {"written_with": written | {"scikit-learn": "0.24.2"}}
    with pytest.raises(BundleError, match=rf"^{tmp_path / 'bundle.json'}: the gbdt, tfidf fold models were written "
                                          r"with scikit-learn 0.24.2 and this runtime has .*install scikit-learn==0.24.2"):
        check_runtime(tmp_path, old_sklearn, ["gbdt", "tfidf"])
    with pytest.raises(BundleError) as err:
        check_runtime(tmp_path, old_sklearn, ["gbdt", "tfidf"])
    assert str(err.value).endswith("(or score with members=['siamese'])")
    with pytest.raises(BundleError) as err:  # a siamese member with the teacher prior runs gbdt and tfidf itself
        check_runtime(tmp_path, old_sklearn, ["siamese", "gbdt", "tfidf"])
    assert str(err.value).endswith("install scikit-learn==0.24.2")
    check_runtime(tmp_path, old_sklearn, [])  # siamese alone does not read scikit-learn files
    with pytest.raises(BundleError, match=r"written with transformers 4.46.0, this runtime has transformers .*"):
        check_runtime(tmp_path, {"written_with": written | {"transformers": "4.46.0"}}, [])


def test_skops_files_with_untrusted_types_are_refused(tmp_path):
    import os as os_module
    path = tmp_path / "fold_0.skops"
    save_state({"estimator": FunctionTransformer(os_module.system)}, path)
    with pytest.raises(BundleError, match=rf"^{path}: holds types outside the trusted list, refused: \['posix.system'\]"):
        load_state(path)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(BundleError, match=rf"^{path}: not a readable skops file"):
        load_state(path)


def test_importing_the_package_or_scorer_does_not_load_torch():
    code = ("import sys, arena_pref, arena_pref.bundle; from arena_pref import Scorer; "
            "print(Scorer.__name__, 'torch' in sys.modules, 'transformers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["Scorer", "False", "False"], done.stderr[-2000:]


# ---------------------------------------------------------------- the pipeline's bundle, altered copies

def cli_score(bundle: Path, test_csv: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "arena_pref.cli", "score", str(bundle), str(test_csv), "-o",
                           str(out), "--device", "cpu"], capture_output=True, text=True)


def altered_copy(pipeline_repo, tmp_path: Path) -> tuple[Path, Path]:
    path, _ = pipeline_repo
    bundle = tmp_path / "bundle"
    shutil.copytree(path / "models/bundle", bundle)
    return bundle, path / "data/raw/test.csv"


@pytest.mark.slow
def test_pipeline_bundle_holds_every_part(pipeline_repo):
    path, _ = pipeline_repo
    description = verify_bundle(path / "models/bundle")
    files = set(json.loads((path / "models/bundle/manifest.json").read_text())["files"])
    for fold in range(3):
        assert {f"siamese/fold_{fold}.safetensors", f"gbdt/fold_{fold}.skops", f"tfidf/fold_{fold}.skops"} <= files
    assert {"backbone/config.json", "backbone/tokenizer_config.json", "bundle.json"} <= files
    assert not any(name.endswith((".pt", ".pkl", ".pickle")) for name in files)
    assert description["members"] == ["siamese", "gbdt", "tfidf"]
    ensemble = json.loads((path / "metrics/ensemble/metrics.json").read_text())
    full = description["blends"][0]
    assert full["weights"] == list(ensemble["blend"]["weights"].values())
    assert full["temperature"] == ensemble["blend"]["temperature"]
    assert len(description["blends"]) == 7  # every non-empty subset of three members
    assert description["member_settings"]["siamese"]["text"] == {"max_tokens_per_side": 48, "prompt_share": 0.25,
                                                                 "head_share": 0.5}
    assert description["params"]["featurize"]["max_tokens_per_side"] == 48
    assert description["cv"]["ensemble"]["ensemble"]["log_loss"] == ensemble["ensemble"]["log_loss"]
    assert description["written_with"]["scikit-learn"] == package_versions()["scikit-learn"]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["tamper", "truncate", "missing_tokenizer", "format_version"])
def test_damaged_bundle_stops_with_the_file_named_and_writes_nothing(pipeline_repo, tmp_path, damage):
    bundle, test_csv = altered_copy(pipeline_repo, tmp_path)
    if damage == "tamper":
        target = bundle / "siamese/fold_1.safetensors"
        data = bytearray(target.read_bytes())
        data[-1] ^= 1
        target.write_bytes(bytes(data))
        expected = f"{target}: SHA-256 differs from manifest.json"
    elif damage == "truncate":
        target = bundle / "gbdt/fold_0.skops"
        target.write_bytes(target.read_bytes()[: os.path.getsize(target) // 2])
        expected = f"{target}: SHA-256 differs from manifest.json"
    elif damage == "missing_tokenizer":
        target = bundle / "backbone/tokenizer_config.json"
        target.unlink()
        expected = f"{target}: missing from the bundle"
    else:
        target = bundle / "manifest.json"
        manifest = json.loads(target.read_text())
        manifest["format_version"] = 0
        target.write_text(json.dumps(manifest))
        expected = f"{target}: bundle format version 0, but this arena-pref"
    out = tmp_path / "out" / "submission.csv"
    done = cli_score(bundle, test_csv, out)
    assert done.returncode == 1
    assert expected in done.stderr, done.stderr[-2000:]
    assert not out.parent.exists()


@pytest.mark.slow
def test_existing_submission_survives_a_failed_run(pipeline_repo, tmp_path):
    bundle, test_csv = altered_copy(pipeline_repo, tmp_path)
    (bundle / "tfidf/fold_2.skops").unlink()
    out = tmp_path / "submission.csv"
    out.write_text("previous\n")
    done = cli_score(bundle, test_csv, out)
    assert done.returncode == 1 and f"{bundle / 'tfidf/fold_2.skops'}: missing from the bundle" in done.stderr
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "submission.csv"]
